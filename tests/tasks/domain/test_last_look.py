import pytest

from tasks.domain.last_look import HeldLine, Refusal, Terms, review

UNAVAILABLE = Refusal("method_unavailable", "The payment method can no longer be used.")


def held(
    number="INV-1",
    approved=10_000,
    *,
    discount=0,
    credit=0,
    total=None,
    settled=0,
    voided=False,
    visible=True,
):
    return HeldLine(
        allocation_id=int(number[-1]),
        invoice_id=int(number[-1]) * 10,
        number=number,
        approved_minor=approved,
        discount_minor=discount,
        credit_minor=credit,
        voided=voided,
        visible=visible,
        total_minor=approved + discount if total is None else total,
        settled_minor=settled,
    )


FULL = Terms(in_full=True, charge_minor=20_000, deposits_enabled=True, method_status="active")
CUSTOM = Terms(in_full=False, charge_minor=20_000, deposits_enabled=True, method_status="active")
NO_DEPOSITS = Terms(in_full=False, charge_minor=20_000, deposits_enabled=False, method_status="active")


@pytest.mark.parametrize(
    ("lines", "terms", "expected"),
    [
        # nothing changed: the payment goes ahead as approved
        ([held("INV-1"), held("INV-2")], FULL, (None, {}, (), 20_000, 0, 0)),
        # an invoice lowered from 10,000 to 2,500 is charged what it owes now
        ([held("INV-1", total=2_500), held("INV-2")], FULL, (None, {1: (2_500, 0)}, (), 12_500, 0, 1)),
        # a raised invoice is never charged more than the customer approved
        ([held("INV-1", total=50_000), held("INV-2")], FULL, (None, {}, (), 20_000, 0, 0)),
        # ...and a raised invoice it no longer pays in full keeps no discount (same charge, the rest owed)
        (
            [held("INV-1", 9_800, discount=200, total=12_000), held("INV-2")],
            FULL,
            (None, {1: (9_800, 0)}, (), 20_000, 0, 1),
        ),
        # void, hidden or already paid (by anything else) drops out; the rest is charged
        ([held("INV-1", voided=True), held("INV-2")], FULL, (None, {}, (1,), 10_000, 0, 1)),
        ([held("INV-1", visible=False), held("INV-2")], FULL, (None, {}, (1,), 10_000, 0, 1)),
        ([held("INV-1", settled=10_000), held("INV-2")], FULL, (None, {}, (1,), 10_000, 0, 1)),
        # paid in part by a check meanwhile: the rest of it is charged
        ([held("INV-1", settled=4_000), held("INV-2")], FULL, (None, {1: (6_000, 0)}, (), 16_000, 0, 1)),
        # an approved discount is still granted on an untouched invoice...
        ([held("INV-1", 9_800, discount=200), held("INV-2")], FULL, (None, {}, (), 20_000, 0, 0)),
        # ...and one paid in part meanwhile (no discount any more) is charged what it still owes
        (
            [held("INV-1", 9_800, discount=200, settled=500), held("INV-2")],
            FULL,
            (None, {1: (9_500, 0)}, (), 19_700, 0, 1),
        ),
        # a custom amount is capped too, and the difference becomes credit where the seller takes deposits
        ([held("INV-1", total=2_500), held("INV-2")], CUSTOM, (None, {1: (2_500, 0)}, (), 20_000, 7_500, 2)),
        ([held("INV-1", voided=True), held("INV-2")], CUSTOM, (None, {}, (1,), 20_000, 10_000, 2)),
        # ...else the payment fails before Stripe
        ([held("INV-1", total=2_500), held("INV-2")], NO_DEPOSITS, ("amount_above_owed", {}, (), 0, 0, 1)),
        # nothing left: the payment fails, whatever its kind
        (
            [held("INV-1", voided=True), held("INV-2", settled=10_000)],
            FULL,
            ("nothing_owed", {}, (), 0, 0, 2),
        ),
        ([held("INV-1", visible=False)], CUSTOM, ("nothing_owed", {}, (), 0, 0, 1)),
        # credit spent on a lowered invoice: the card part goes first, then credit comes back
        (
            [held("INV-1", credit=4_000, total=5_000), held("INV-2")],
            FULL,
            (None, {1: (5_000, 0)}, (), 15_000, 0, 1),
        ),
        (
            [held("INV-1", credit=4_000, total=1_000), held("INV-2")],
            FULL,
            (None, {1: (1_000, 0)}, (), 14_000, 0, 1),
        ),
        # a deposit holds no invoice: only its method is looked at
        ([], CUSTOM, (None, {}, (), 20_000, 0, 0)),
    ],
)
def test_review(lines, terms, expected):
    decided = review(lines, terms)
    code, amounts, dropped, charge, credit, changes = expected
    assert (decided.refusal.code if decided.refusal else None) == code
    assert len(decided.changes) == changes
    if code is None:
        assert (decided.amounts, decided.dropped, decided.charge_minor, decided.new_credit_minor) == (
            amounts,
            dropped,
            charge,
            credit,
        )


def test_review_gives_back_the_credit_no_invoice_needs_now():
    decided = review([held("INV-1", credit=4_000, total=1_000)], FULL)
    assert decided.credit_back == {10: 3_000}


@pytest.mark.parametrize("status", ["removed", "verification_failed", "verification_pending"])
@pytest.mark.parametrize("lines", [[], [1]], ids=["deposit", "invoices"])
def test_review_refuses_a_method_that_can_no_longer_be_used(status, lines):
    terms = Terms(in_full=True, charge_minor=1, deposits_enabled=True, method_status=status)
    assert review([held() for _ in lines], terms).refusal == UNAVAILABLE


def test_review_of_a_payment_credit_pays_in_full_needs_no_method():
    terms = Terms(in_full=True, charge_minor=0, deposits_enabled=False, method_status=None)
    assert review([held(credit=10_000)], terms).refusal is None


@pytest.mark.parametrize(
    ("method_status", "expected"),
    [
        # a card Stripe has not attached yet: this payment attaches it (setup_future_usage)
        ("verification_pending", None),
        ("active", None),
        # removed or failed meanwhile: still refused
        ("removed", UNAVAILABLE),
        ("verification_failed", UNAVAILABLE),
    ],
)
def test_review_of_a_payment_that_saves_its_card(method_status, expected):
    terms = Terms(
        in_full=True, charge_minor=1, deposits_enabled=True, method_status=method_status, saves_method=True
    )
    assert review([held()], terms).refusal == expected
