"""Stripe's test payment methods and what each one does, as data."""

_GENERIC = ("card_declined", "generic_decline", "Your card was declined.")


def _card(brand, last4, outcome="succeed", decline=None, funding="credit"):
    behaviour = {"type": "card", "brand": brand, "last4": last4, "outcome": outcome, "funding": funding}
    if decline:
        behaviour.update(code=decline[0], decline_code=decline[1], message=decline[2])
    return behaviour


# Token -> behaviour.  Outcomes: succeed, decline, decline_after_attach (sets up fine, every
# charge fails), refund_fails (refunds fail later), dispute, inquiry (a dispute inquiry, no funds
# taken), auth_always (off-session needs authentication), auth_on_setup (off-session needs
# authentication until a SetupIntent set the card up), auth_on_session (only on-session payments
# ask for authentication).
CARD_TOKENS = {
    "pm_card_visa": _card("visa", "4242"),
    "pm_card_visa_debit": _card("visa", "5556", funding="debit"),
    "pm_card_mastercard": _card("mastercard", "4444"),
    "pm_card_amex": _card("amex", "8431"),
    "pm_card_visa_chargeDeclined": _card("visa", "0002", "decline", _GENERIC),
    "pm_card_chargeDeclined": _card("visa", "0002", "decline", _GENERIC),
    "pm_card_visa_chargeDeclinedInsufficientFunds": _card(
        "visa",
        "9995",
        "decline",
        ("card_declined", "insufficient_funds", "Your card has insufficient funds."),
    ),
    "pm_card_chargeDeclinedInsufficientFunds": _card(
        "visa",
        "9995",
        "decline",
        ("card_declined", "insufficient_funds", "Your card has insufficient funds."),
    ),
    "pm_card_visa_chargeDeclinedLostCard": _card(
        "visa", "9987", "decline", ("card_declined", "lost_card", "Your card has been declined.")
    ),
    "pm_card_chargeDeclinedLostCard": _card(
        "visa", "9987", "decline", ("card_declined", "lost_card", "Your card has been declined.")
    ),
    "pm_card_visa_chargeDeclinedStolenCard": _card(
        "visa", "9979", "decline", ("card_declined", "stolen_card", "Your card has been declined.")
    ),
    "pm_card_chargeDeclinedExpiredCard": _card(
        "visa", "0069", "decline", ("expired_card", "expired_card", "Your card has expired.")
    ),
    "pm_card_chargeDeclinedIncorrectCvc": _card(
        "visa",
        "0127",
        "decline",
        ("incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect."),
    ),
    "pm_card_chargeDeclinedProcessingError": _card(
        "visa",
        "0119",
        "decline",
        (
            "processing_error",
            "processing_error",
            "An error occurred while processing your card. Try again in a little bit.",
        ),
    ),
    "pm_card_chargeCustomerFail": _card("visa", "0341", "decline_after_attach", _GENERIC),
    "pm_card_refundFail": _card("visa", "5126", "refund_fails"),
    "pm_card_createDispute": _card("visa", "0259", "dispute"),
    "pm_card_createDisputeInquiry": _card("visa", "1976", "inquiry"),
    "pm_card_authenticationRequired": _card("visa", "3184", "auth_always"),
    "pm_card_authenticationRequiredOnSetup": _card("visa", "3155", "auth_on_setup"),
    "pm_card_authenticationRequiredSetupForOffSession": _card("visa", "0446", "auth_on_session"),
}

# Card tokens (`tok_...`, as in `card[token]`) map onto the payment method tokens above.
TOK_TO_PM = {
    "tok_visa": "pm_card_visa",
    "tok_mastercard": "pm_card_mastercard",
    "tok_amex": "pm_card_amex",
    "tok_chargeDeclined": "pm_card_chargeDeclined",
    "tok_chargeDeclinedInsufficientFunds": "pm_card_chargeDeclinedInsufficientFunds",
    "tok_chargeDeclinedExpiredCard": "pm_card_chargeDeclinedExpiredCard",
    "tok_chargeCustomerFail": "pm_card_chargeCustomerFail",
    "tok_createDispute": "pm_card_createDispute",
    "tok_createDisputeInquiry": "pm_card_createDisputeInquiry",
}


def _bank(account, outcome="succeed", failure=None):
    behaviour = {
        "type": "us_bank_account",
        "account_number": account,
        "last4": account[-4:],
        "outcome": outcome,
    }
    if failure:
        behaviour.update(code=failure[0], message=failure[1])
    return behaviour


# Account number -> behaviour.  Outcomes: succeed, fail (when it settles), dispute (after it
# succeeds), processing (never settles), fail_microdeposits (verification never arrives).
BANK_ACCOUNTS = {
    "000123456789": _bank("000123456789"),
    "000111111113": _bank(
        "000111111113", "fail", ("account_closed", "The customer's bank account has been closed.")
    ),
    "000111111116": _bank(
        "000111111116", "fail", ("no_account", "The customer's bank account could not be located.")
    ),
    "000222222227": _bank(
        "000222222227",
        "fail",
        ("insufficient_funds", "The customer's account has insufficient funds to cover this payment."),
    ),
    "000333333335": _bank(
        "000333333335",
        "fail",
        ("debit_not_authorized", "The customer has notified their bank that this payment was unauthorized."),
    ),
    "000444444440": _bank(
        "000444444440",
        "fail",
        ("invalid_currency", "The bank was unable to process this payment because of its currency."),
    ),
    "000666666661": _bank("000666666661", "fail_microdeposits"),
    "000555555559": _bank("000555555559", "dispute"),
    "000000000009": _bank("000000000009", "processing"),
    "000777777771": _bank(
        "000777777771",
        "fail",
        ("weekly_limit_exceeded", "The payment exceeds the account's weekly payment volume limit."),
    ),
}

BANK_TOKENS = {
    "pm_usBankAccount_success": "000123456789",
    "pm_usBankAccount_accountClosed": "000111111113",
    "pm_usBankAccount_noAccount": "000111111116",
    "pm_usBankAccount_insufficientFunds": "000222222227",
    "pm_usBankAccount_debitNotAuthorized": "000333333335",
    "pm_usBankAccount_invalidCurrency": "000444444440",
    "pm_usBankAccount_failMicrodeposits": "000666666661",
    "pm_usBankAccount_dispute": "000555555559",
    "pm_usBankAccount_processing": "000000000009",
    "pm_usBankAccount_weeklyLimitExceeded": "000777777771",
}

# Stripe's test routing number; the only one the emulator accepts.
TEST_ROUTING_NUMBER = "110000000"


def token_behaviour(token):
    """The behaviour of a test payment method token, or None when it is not one."""
    if token in CARD_TOKENS:
        return dict(CARD_TOKENS[token])
    if token in BANK_TOKENS:
        # Test tokens stand for accounts that were already verified instantly.
        return dict(BANK_ACCOUNTS[BANK_TOKENS[token]], verified=True)
    return None


def bank_behaviour(account_number):
    """The behaviour of a raw account number; unknown numbers behave like the success account."""
    base = BANK_ACCOUNTS.get(account_number) or _bank(account_number)
    return dict(base, verified=False)
