"""Saved cards and bank accounts, pure rules.

What a save or a verification may contain, what Stripe's answers mean.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from tasks.domain.errors import RemitError
from tasks.domain.requests import check_text, quoted
from tasks.domain.states import EmailKind, MethodKind, MethodStatus
from tasks.domain.transitions import RESERVING_STATUSES

S = MethodStatus
# Stripe's PaymentMethod ids are "pm_..." and at most 255 characters, like every Stripe id.
_STRIPE_METHOD_ID = re.compile(r"^pm_[A-Za-z0-9_]{1,252}$")
_LAST4 = re.compile(r"^[0-9]{4}$")
# Stripe's descriptor codes are six characters starting with SM (STRIPE.md: SM11AA).
_DESCRIPTOR_CODE = re.compile(r"^SM[A-Z0-9]{4}$")
# Microdeposits are each less than one dollar.
MAX_MICRODEPOSIT_CENTS = 99
# Stripe fails a bank account for good after 10 wrong microdeposit attempts. Remit hands it at most this
# many attempts per method per seller's day, counted on the method row before the attempt is sent, so a
# script guessing amounts is stopped long before it can spend the customer's budget in one go.
MAX_MICRODEPOSIT_ATTEMPTS_PER_DAY = 5
# Column limits of payment_methods (mandate_text_version, brand, bank_name); a browser UA rarely passes 500.
MAX_TEXT_VERSION_LENGTH = 32
MAX_BRAND_LENGTH = 32
MAX_BANK_NAME_LENGTH = 200
MAX_USER_AGENT_LENGTH = 1000
MAX_IP_LENGTH = 64
# The portal's clock and ours may differ a little; an acceptance further in the future is a bug.
MANDATE_CLOCK_SKEW = timedelta(minutes=5)
# A card that expired before 2000 or expires after 2100 is a typo, not a card.
EXP_YEARS = range(2000, 2101)
# A payment in one of these states still needs its method: removing it would strand the payment.
IN_USE_STATUSES = RESERVING_STATUSES
AMOUNTS_MISMATCH = "payment_method_microdeposit_verification_amounts_mismatch"
DESCRIPTOR_MISMATCH = "payment_method_microdeposit_verification_descriptor_code_mismatch"
# Stripe's final verdicts on microdeposits (STRIPE.md): the account can never be verified this way.
VERIFICATION_FINAL = frozenset(
    {
        "payment_method_microdeposit_verification_attempts_exceeded",
        "payment_method_microdeposit_verification_timeout",
        "payment_method_microdeposit_failed",
    }
)


@dataclass(frozen=True)
class Display:
    """What the portal shows for a method; Stripe.js hands the portal these with the PaymentMethod id."""

    kind: MethodKind
    last4: str
    brand: str | None = None
    exp_month: int | None = None
    exp_year: int | None = None
    bank_name: str | None = None


@dataclass(frozen=True)
class MandateAcceptance:
    accepted_at: datetime
    ip_address: str
    user_agent: str
    text_version: str


@dataclass(frozen=True)
class Verification:
    """One microdeposit verification attempt: two amounts in cents, or a descriptor code."""

    amounts: tuple[int, int] | None
    descriptor_code: str | None

    @property
    def fingerprint(self) -> str:
        value = (
            f"amounts:{self.amounts[0]},{self.amounts[1]}" if self.amounts else f"code:{self.descriptor_code}"
        )
        return hashlib.sha256(value.encode()).hexdigest()[:16]


def check_stripe_method_id(value: Any) -> str:
    if not isinstance(value, str) or not _STRIPE_METHOD_ID.fullmatch(value):
        raise RemitError("invalid_payment_method", "A Stripe PaymentMethod id (pm_...) is required.")
    return value


def check_display(
    kind: Any,
    last4: Any,
    brand: Any = None,
    exp_month: Any = None,
    exp_year: Any = None,
    bank_name: Any = None,
) -> Display:
    """The display data the portal sent, checked against the kind of method it claims."""
    if kind not in tuple(MethodKind):
        raise RemitError(
            "invalid_method_kind",
            f"The method kind must be 'card' or 'us_bank_account', not {quoted(kind)}.",
        )
    if not isinstance(last4, str) or not _LAST4.fullmatch(last4):
        raise RemitError(
            "invalid_method_details", "last4 must be the last four digits of the card or account."
        )
    if kind == MethodKind.US_BANK_ACCOUNT:
        _check_text(bank_name, "bank_name", MAX_BANK_NAME_LENGTH, required=False)
        return Display(MethodKind.US_BANK_ACCOUNT, last4, bank_name=bank_name)
    _check_text(brand, "brand", MAX_BRAND_LENGTH, required=True)
    if not _is_int(exp_month) or not 1 <= exp_month <= 12:
        raise RemitError("invalid_method_details", "exp_month must be a month number from 1 to 12.")
    if not _is_int(exp_year) or exp_year not in EXP_YEARS:
        raise RemitError("invalid_method_details", "exp_year must be a four-digit year.")
    return Display(MethodKind.CARD, last4, brand=brand, exp_month=exp_month, exp_year=exp_year)


def check_mandate(mandate: Any, now: datetime) -> MandateAcceptance:
    """The customer's acceptance of the ACH debit terms, which Stripe needs before the first debit."""
    if mandate is None:
        raise RemitError(
            "mandate_required",
            "A bank account needs the customer's acceptance of the debit "
            "agreement (accepted_at, ip_address, user_agent, text_version).",
        )
    if not isinstance(mandate, dict):
        raise RemitError(
            "invalid_mandate",
            "The mandate must be a mapping of accepted_at, ip_address, user_agent and text_version.",
        )
    accepted_at = mandate.get("accepted_at")
    if not isinstance(accepted_at, datetime) or accepted_at.tzinfo is None:
        raise RemitError("invalid_mandate", "The mandate's accepted_at must be a datetime with a time zone.")
    if accepted_at > now + MANDATE_CLOCK_SKEW:
        raise RemitError("invalid_mandate", "The mandate's accepted_at is in the future.")
    ip = _check_ip(mandate.get("ip_address"))
    _check_text(
        mandate.get("user_agent"), "user_agent", MAX_USER_AGENT_LENGTH, required=True, code="invalid_mandate"
    )
    _check_text(
        mandate.get("text_version"),
        "text_version",
        MAX_TEXT_VERSION_LENGTH,
        required=True,
        code="invalid_mandate",
    )
    return MandateAcceptance(accepted_at, ip, mandate["user_agent"], mandate["text_version"])


def check_verification(amounts: Any, descriptor_code: Any) -> Verification:
    """Exactly one of two microdeposit amounts (cents) or a descriptor code."""
    if (amounts is None) == (descriptor_code is None):
        raise RemitError(
            "verification_values_required",
            "Give either the two microdeposit amounts or the descriptor code, not both or neither.",
        )
    if descriptor_code is not None:
        code = descriptor_code.strip().upper() if isinstance(descriptor_code, str) else None
        if not code or not _DESCRIPTOR_CODE.fullmatch(code):
            raise RemitError(
                "invalid_descriptor_code", "The descriptor code is six characters starting with SM."
            )
        return Verification(None, code)
    if not isinstance(amounts, (list, tuple)) or len(amounts) != 2:
        raise RemitError("invalid_microdeposit_amounts", "Give exactly two microdeposit amounts.")
    if not all(_is_int(a) and 0 < a <= MAX_MICRODEPOSIT_CENTS for a in amounts):
        raise RemitError(
            "invalid_microdeposit_amounts",
            f"Each microdeposit amount is a whole number of cents from 1 to {MAX_MICRODEPOSIT_CENTS}.",
        )
    return Verification((amounts[0], amounts[1]), None)


def count_verification_attempt(last_day: date | None, attempts: int, today: date) -> int:
    """The method's attempts on today with this one, or a refusal once today's are used up."""
    used = attempts if last_day == today else 0
    if used >= MAX_MICRODEPOSIT_ATTEMPTS_PER_DAY:
        raise RemitError(
            "too_many_verification_attempts",
            f"This bank account had {MAX_MICRODEPOSIT_ATTEMPTS_PER_DAY} verification attempts today; "
            "check the amounts on the bank statement and try again tomorrow.",
        )
    return used + 1


def check_verifiable(kind: str, status: str, setup_intent_id: str | None) -> None:
    """Refuse a verification for anything but a bank account waiting for its microdeposits."""
    if kind != MethodKind.US_BANK_ACCOUNT:
        raise RemitError("not_a_bank_account", "Only bank accounts are verified with microdeposits.")
    if status == S.ACTIVE:
        raise RemitError("already_verified", "This bank account is already verified.")
    if status != S.VERIFICATION_PENDING:
        raise RemitError(
            "not_verifiable", f"This bank account is {status.replace('_', ' ')} and cannot be verified."
        )
    if setup_intent_id is None:
        raise RemitError(
            "verification_not_started", "The microdeposits have not been sent yet; try again shortly."
        )


def check_default_allowed(status: str) -> None:
    if status == S.REMOVED:
        raise RemitError("method_removed", "This payment method was removed; choose another one.")
    if status == S.VERIFICATION_FAILED:
        raise RemitError(
            "method_unverified", "This bank account could not be verified and cannot be the default."
        )


def check_removable(is_default: bool, other_methods: int, in_use_by: int) -> None:
    """Refuse removing a method a payment still needs, or the default while another could take its place.

    The default may go when it is the account's last method: there is nothing to choose instead.
    """
    if in_use_by:
        raise RemitError(
            "method_in_use",
            "This payment method is used by a payment that is pending, in progress "
            "or scheduled; wait for it to finish or cancel it first.",
        )
    if is_default and other_methods:
        raise RemitError(
            "method_is_default", "This is the default payment method; choose another default first."
        )


class SyncStep(StrEnum):
    ATTACH = "attach"
    SET_UP = "set_up"
    NOTHING = "nothing"


def sync_step(kind: str, status: str, setup_intent_id: str | None) -> SyncStep:
    """What a newly saved method still needs at Stripe: a card is attached, a bank account set up once."""
    if status != S.VERIFICATION_PENDING:
        return SyncStep.NOTHING
    if kind == MethodKind.CARD:
        return SyncStep.ATTACH
    return SyncStep.NOTHING if setup_intent_id else SyncStep.SET_UP


def status_for_setup(setup_status: str, next_action: str | None) -> MethodStatus | None:
    """A bank account's status after its SetupIntent was confirmed; None for a state we never expect."""
    if setup_status == "succeeded":
        return S.ACTIVE
    if setup_status == "requires_action" and next_action == "verify_with_microdeposits":
        return S.VERIFICATION_PENDING
    if setup_status in ("requires_payment_method", "canceled"):
        return S.VERIFICATION_FAILED
    return None


def status_for_refused_verification(error_code: str) -> MethodStatus | None:
    """Wrong values keep the account waiting; Stripe's final verdicts fail it; None for anything else."""
    if error_code in (AMOUNTS_MISMATCH, DESCRIPTOR_MISMATCH):
        return S.VERIFICATION_PENDING
    if error_code in VERIFICATION_FINAL:
        return S.VERIFICATION_FAILED
    return None


def email_for_method(kind: str, before: str, after: str, awaiting_microdeposits: bool) -> EmailKind | None:
    """The email owed when a saved method changes status; only bank accounts have any."""
    if kind != MethodKind.US_BANK_ACCOUNT or before != S.VERIFICATION_PENDING:
        return None
    if after == S.ACTIVE:
        return EmailKind.BANK_VERIFIED
    if after == S.VERIFICATION_FAILED:
        return EmailKind.BANK_VERIFICATION_FAILED
    return EmailKind.BANK_VERIFICATION_NEEDED if awaiting_microdeposits else None


def attach_key(method_id: int) -> str:
    return f"remit-attach-{method_id}"


def setup_key(method_id: int) -> str:
    return f"remit-setup-{method_id}"


def verify_key(method_id: int, verification: Verification) -> str:
    """One key per method and values: a double-submitted attempt reaches Stripe once and is counted once."""
    return f"remit-verify-{method_id}-{verification.fingerprint}"


def detach_key(method_id: int, stripe_payment_method_id: str) -> str:
    """Per method and PaymentMethod: a token's id is replaced by the one Stripe made from it."""
    digest = hashlib.sha256(stripe_payment_method_id.encode()).hexdigest()[:12]
    return f"remit-detach-{method_id}-{digest}"


def _check_text(
    value: Any, name: str, limit: int, required: bool, code: str = "invalid_method_details"
) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise RemitError(code, f"{name} must be text of 1 to {limit} characters.")
    check_text(value, name, code, limit)


def _check_ip(value: Any) -> str:
    """An IP address written as text: the standard parser would read a bare integer as one."""
    if not isinstance(value, str):
        raise RemitError("invalid_mandate", "The mandate's ip_address must be an IP address written as text.")
    try:
        ip = str(ipaddress.ip_address(value)) if len(value) <= MAX_IP_LENGTH else None
    except ValueError:
        ip = None
    if ip is None:
        raise RemitError("invalid_mandate", "The mandate's ip_address is not an IP address.")
    return ip


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
