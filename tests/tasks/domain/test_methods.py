"""Pure rules of saved methods: what a save or a verification may contain, and what Stripe's answers mean."""

from datetime import UTC, datetime, timedelta

import pytest

from tasks.domain import methods as rules
from tasks.domain.errors import RemitError
from tasks.domain.states import EmailKind
from tasks.domain.states import MethodStatus as S

NOW = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)
MANDATE = {
    "accepted_at": NOW - timedelta(minutes=1),
    "ip_address": "203.0.113.9",
    "user_agent": "Mozilla/5.0",
    "text_version": "2026-01",
}
CARD = dict(kind="card", last4="4242", brand="visa", exp_month=12, exp_year=2030)
BANK = dict(kind="us_bank_account", last4="6789", bank_name="STRIPE TEST BANK")


def _code(fn, *args, **kwargs):
    with pytest.raises(RemitError) as caught:
        fn(*args, **kwargs)
    return caught.value.code


@pytest.mark.parametrize(
    "value,ok",
    [
        ("pm_card_visa", True),
        ("pm_1Abc", True),
        ("pm_usBankAccount_success", True),
        (None, False),
        ("", False),
        ("card_123", False),
        ("pm_", False),
        ("pm_a b", False),
        (42, False),
        ("pm_" + "a" * 253, False),
    ],
)
def test_stripe_method_ids(value, ok):
    if ok:
        assert rules.check_stripe_method_id(value) == value
    else:
        assert _code(rules.check_stripe_method_id, value) == "invalid_payment_method"


@pytest.mark.parametrize(
    "changes,code",
    [
        ({}, None),
        ({"kind": "paypal"}, "invalid_method_kind"),
        ({"kind": None}, "invalid_method_kind"),
        ({"last4": "424"}, "invalid_method_details"),
        ({"last4": 4242}, "invalid_method_details"),
        ({"last4": "42a2"}, "invalid_method_details"),
        ({"brand": None}, "invalid_method_details"),
        ({"brand": " "}, "invalid_method_details"),
        ({"exp_month": 0}, "invalid_method_details"),
        ({"exp_month": 13}, "invalid_method_details"),
        ({"exp_month": True}, "invalid_method_details"),
        ({"exp_year": 30}, "invalid_method_details"),
        ({"exp_year": "2030"}, "invalid_method_details"),
    ],
)
def test_card_display_data(changes, code):
    values = {**CARD, **changes}
    if code is None:
        display = rules.check_display(**values)
        assert (display.kind, display.last4, display.brand, display.bank_name) == (
            "card",
            "4242",
            "visa",
            None,
        )
    else:
        assert _code(rules.check_display, **values) == code


@pytest.mark.parametrize(
    "changes,code",
    [
        ({}, None),
        ({"bank_name": None}, None),
        ({"bank_name": "x" * 201}, "invalid_method_details"),
        ({"last4": None}, "invalid_method_details"),
    ],
)
def test_bank_display_data(changes, code):
    values = {**BANK, **changes}
    if code is None:
        display = rules.check_display(**values)
        assert (display.kind, display.exp_month, display.brand) == ("us_bank_account", None, None)
    else:
        assert _code(rules.check_display, **values) == code


@pytest.mark.parametrize(
    "mandate,code",
    [
        (MANDATE, None),
        ({**MANDATE, "ip_address": "2001:db8::1"}, None),
        ({**MANDATE, "accepted_at": NOW + timedelta(minutes=4)}, None),
        (None, "mandate_required"),
        ("yes", "invalid_mandate"),
        ({**MANDATE, "accepted_at": NOW + timedelta(hours=1)}, "invalid_mandate"),
        ({**MANDATE, "accepted_at": datetime(2026, 11, 22)}, "invalid_mandate"),
        ({**MANDATE, "accepted_at": "2026-11-22T18:00:00Z"}, "invalid_mandate"),
        ({**MANDATE, "ip_address": "not an ip"}, "invalid_mandate"),
        ({**MANDATE, "ip_address": None}, "invalid_mandate"),
        ({**MANDATE, "user_agent": ""}, "invalid_mandate"),
        ({**MANDATE, "text_version": "v" * 33}, "invalid_mandate"),
        ({k: v for k, v in MANDATE.items() if k != "text_version"}, "invalid_mandate"),
    ],
)
def test_mandates(mandate, code):
    if code is None:
        assert rules.check_mandate(mandate, NOW).text_version == "2026-01"
    else:
        assert _code(rules.check_mandate, mandate, NOW) == code


@pytest.mark.parametrize(
    "amounts,descriptor,expected",
    [
        ([32, 45], None, ((32, 45), None)),
        ((1, 99), None, ((1, 99), None)),
        (None, "SM11AA", (None, "SM11AA")),
        (None, " sm11aa ", (None, "SM11AA")),
        (None, None, "verification_values_required"),
        ([32, 45], "SM11AA", "verification_values_required"),
        ([32], None, "invalid_microdeposit_amounts"),
        ([32, 45, 1], None, "invalid_microdeposit_amounts"),
        ([0, 45], None, "invalid_microdeposit_amounts"),
        ([-32, 45], None, "invalid_microdeposit_amounts"),
        ([32, 100], None, "invalid_microdeposit_amounts"),
        ([0.32, 0.45], None, "invalid_microdeposit_amounts"),
        ([True, 45], None, "invalid_microdeposit_amounts"),
        ("32,45", None, "invalid_microdeposit_amounts"),
        (None, "XX11AA", "invalid_descriptor_code"),
        (None, "SM11A", "invalid_descriptor_code"),
        (None, 123456, "invalid_descriptor_code"),
    ],
)
def test_verification_values(amounts, descriptor, expected):
    if isinstance(expected, str):
        assert _code(rules.check_verification, amounts, descriptor) == expected
    else:
        found = rules.check_verification(amounts, descriptor)
        assert (found.amounts, found.descriptor_code) == expected


@pytest.mark.parametrize(
    "kind,status,setup,code",
    [
        ("us_bank_account", S.VERIFICATION_PENDING, "seti_1", None),
        ("card", S.VERIFICATION_PENDING, None, "not_a_bank_account"),
        ("us_bank_account", S.ACTIVE, "seti_1", "already_verified"),
        ("us_bank_account", S.VERIFICATION_FAILED, "seti_1", "not_verifiable"),
        ("us_bank_account", S.REMOVED, "seti_1", "not_verifiable"),
        ("us_bank_account", S.VERIFICATION_PENDING, None, "verification_not_started"),
    ],
)
def test_which_methods_can_be_verified(kind, status, setup, code):
    if code is None:
        rules.check_verifiable(kind, status, setup)
    else:
        assert _code(rules.check_verifiable, kind, status, setup) == code


@pytest.mark.parametrize(
    "status,code",
    [
        (S.ACTIVE, None),
        (S.VERIFICATION_PENDING, None),
        (S.VERIFICATION_FAILED, "method_unverified"),
        (S.REMOVED, "method_removed"),
    ],
)
def test_which_methods_can_be_the_default(status, code):
    if code is None:
        rules.check_default_allowed(status)
    else:
        assert _code(rules.check_default_allowed, status) == code


@pytest.mark.parametrize(
    "is_default,others,in_use,code",
    [
        (False, 0, 0, None),
        (False, 3, 0, None),
        (True, 0, 0, None),
        (True, 1, 0, "method_is_default"),
        (False, 1, 1, "method_in_use"),
        (True, 1, 2, "method_in_use"),
    ],
)
def test_which_methods_can_be_removed(is_default, others, in_use, code):
    if code is None:
        rules.check_removable(is_default, others, in_use)
    else:
        assert _code(rules.check_removable, is_default, others, in_use) == code


@pytest.mark.parametrize(
    "kind,status,setup,step",
    [
        ("card", S.VERIFICATION_PENDING, None, rules.SyncStep.ATTACH),
        ("us_bank_account", S.VERIFICATION_PENDING, None, rules.SyncStep.SET_UP),
        ("us_bank_account", S.VERIFICATION_PENDING, "seti_1", rules.SyncStep.NOTHING),
        ("card", S.ACTIVE, None, rules.SyncStep.NOTHING),
        ("us_bank_account", S.ACTIVE, "seti_1", rules.SyncStep.NOTHING),
        ("us_bank_account", S.REMOVED, None, rules.SyncStep.NOTHING),
        ("card", S.VERIFICATION_FAILED, None, rules.SyncStep.NOTHING),
    ],
)
def test_what_a_saved_method_still_needs_at_stripe(kind, status, setup, step):
    assert rules.sync_step(kind, status, setup) == step


@pytest.mark.parametrize(
    "status,action,expected",
    [
        ("succeeded", None, S.ACTIVE),
        ("requires_action", "verify_with_microdeposits", S.VERIFICATION_PENDING),
        ("requires_payment_method", None, S.VERIFICATION_FAILED),
        ("canceled", None, S.VERIFICATION_FAILED),
        ("requires_action", "use_stripe_sdk", None),
        ("processing", None, None),
    ],
)
def test_setup_intent_outcomes(status, action, expected):
    assert rules.status_for_setup(status, action) == expected


@pytest.mark.parametrize(
    "code,expected",
    [
        ("payment_method_microdeposit_verification_amounts_mismatch", S.VERIFICATION_PENDING),
        ("payment_method_microdeposit_verification_descriptor_code_mismatch", S.VERIFICATION_PENDING),
        ("payment_method_microdeposit_verification_attempts_exceeded", S.VERIFICATION_FAILED),
        ("payment_method_microdeposit_verification_timeout", S.VERIFICATION_FAILED),
        ("payment_method_microdeposit_failed", S.VERIFICATION_FAILED),
        ("setup_intent_unexpected_state", None),
        ("parameter_missing", None),
    ],
)
def test_refused_verification_outcomes(code, expected):
    assert rules.status_for_refused_verification(code) == expected


P, A, F = S.VERIFICATION_PENDING, S.ACTIVE, S.VERIFICATION_FAILED


@pytest.mark.parametrize(
    "kind,before,after,awaiting,email",
    [
        ("us_bank_account", P, A, False, EmailKind.BANK_VERIFIED),
        ("us_bank_account", P, F, False, EmailKind.BANK_VERIFICATION_FAILED),
        ("us_bank_account", P, P, True, EmailKind.BANK_VERIFICATION_NEEDED),
        ("us_bank_account", P, P, False, None),
        ("us_bank_account", A, A, False, None),
        ("us_bank_account", A, F, False, None),
        ("card", P, A, False, None),
        ("card", P, F, False, None),
    ],
)
def test_emails_owed_for_a_method(kind, before, after, awaiting, email):
    assert rules.email_for_method(kind, before, after, awaiting) == email


def test_keys_derive_from_our_row_and_the_values():
    first = rules.Verification((32, 45), None)
    assert rules.verify_key(7, first) == rules.verify_key(7, rules.Verification((32, 45), None))
    assert rules.verify_key(7, first) != rules.verify_key(7, rules.Verification((45, 32), None))
    assert rules.verify_key(7, first) != rules.verify_key(8, first)
    assert rules.verify_key(7, first).startswith("remit-verify-7-")
    assert (rules.attach_key(7), rules.setup_key(7)) == ("remit-attach-7", "remit-setup-7")
    assert rules.detach_key(7, "pm_a") != rules.detach_key(7, "pm_b")
    assert len(rules.detach_key(7, "pm_" + "a" * 250)) < 255
