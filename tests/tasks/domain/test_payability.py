from datetime import date

import pytest

from tasks.domain.errors import RemitError
from tasks.domain.payability import InvoiceFacts, Leaves, choose_leaves, open_for_custom_amount, open_leaves
from tasks.domain.states import PaymentStatus

ACCOUNT = 1
DUE = date(2026, 11, 30)


def inv(id, parent=None, account=ACCOUNT, visible=True, voided=False, currency="usd", total=1_000):
    return InvoiceFacts(id, f"INV-{id}", currency, DUE, total, account, parent, visible, voided)


@pytest.mark.parametrize(
    ("ids", "rows", "leaf_ids"),
    [
        # plain invoices are their own leaves, in the order asked
        ([2, 1], [inv(1), inv(2)], [2, 1]),
        # a parent is paid through its children
        ([1], [inv(1), inv(2, parent=1), inv(3, parent=1)], [2, 3]),
        # a voided child is left out of its parent's leaves
        ([1], [inv(1), inv(2, parent=1, voided=True), inv(3, parent=1)], [3]),
        # a child hidden from the customer is left out of its parent's leaves
        ([1], [inv(1), inv(2, parent=1, visible=False), inv(3, parent=1)], [3]),
        # a child on another account is left out of its parent's leaves
        ([1], [inv(1), inv(2, parent=1, account=9), inv(3, parent=1)], [3]),
        # a child asked beside its parent is paid once, where it was asked
        ([2, 1], [inv(1), inv(2, parent=1), inv(3, parent=1)], [2, 3]),
        # a parent's children come after the plain invoices asked before and after it
        ([4, 1, 5], [inv(1), inv(2, parent=1), inv(4), inv(5)], [4, 5, 2]),
        # exactly the most invoices a seller allows in one payment
        ([1], [inv(1), inv(2, parent=1), inv(3, parent=1), inv(4, parent=1)], [2, 3, 4]),
    ],
)
def test_a_selection_is_paid_through_its_leaves(ids, rows, leaf_ids):
    leaves = choose_leaves(ids, rows, ACCOUNT, max_invoices=3)
    assert [i.id for i in leaves.invoices] == leaf_ids
    assert leaves.currency == "usd"
    assert leaves.first_number == f"INV-{ids[0]}"


@pytest.mark.parametrize(
    ("ids", "rows", "code", "message"),
    [
        # an id with no row at all
        ([1, 7], [inv(1)], "invoice_not_found", "Invoice 7 was not found on this account."),
        # an invoice of another account is not found, not refused as someone else's
        ([1], [inv(1, account=9)], "invoice_not_found", "Invoice 1 was not found on this account."),
        # an invoice hidden from the customer is not found
        ([1], [inv(1, visible=False)], "invoice_not_found", "Invoice 1 was not found on this account."),
        # the first missing id is named, before any voided one
        ([1, 5, 6], [inv(1, voided=True)], "invoice_not_found", "Invoice 5 was not found on this account."),
        # an asked invoice that was voided
        (
            [1, 2],
            [inv(1), inv(2, voided=True)],
            "invoice_void",
            "Invoice INV-2 was voided and cannot be paid.",
        ),
        # a voided parent is refused even though it has open children
        (
            [1],
            [inv(1, voided=True), inv(2, parent=1)],
            "invoice_void",
            "Invoice INV-1 was voided and cannot be paid.",
        ),
        # a parent whose children exceed the most invoices in one payment
        (
            [1],
            [inv(1), *(inv(i, parent=1) for i in (2, 3, 4, 5))],
            "too_many_invoices",
            "At most 3 invoices can be paid at once; this selection covers 4.",
        ),
        # invoices in two currencies
        (
            [1, 2],
            [inv(1), inv(2, currency="eur")],
            "mixed_currencies",
            "The selected invoices are in different currencies: ['eur', 'usd'].",
        ),
        # a parent's children in two currencies
        (
            [1],
            [inv(1), inv(2, parent=1, currency="cad"), inv(3, parent=1)],
            "mixed_currencies",
            "The selected invoices are in different currencies: ['cad', 'usd'].",
        ),
    ],
)
def test_a_selection_that_cannot_be_paid_is_refused(ids, rows, code, message):
    with pytest.raises(RemitError) as refused:
        choose_leaves(ids, rows, ACCOUNT, max_invoices=3)
    assert (refused.value.code, refused.value.message) == (code, message)


S, PENDING, PROCESSING = PaymentStatus.SCHEDULED, PaymentStatus.PENDING, PaymentStatus.PROCESSING


@pytest.mark.parametrize(
    ("leaf_ids", "asked", "standing", "expected"),
    [
        # untouched invoices owe their total
        ([1, 2], [1, 2], {}, [(1, 0), (2, 0)]),
        # a partly paid invoice owes the rest
        ([1], [1], {1: (400, None)}, [(1, 400)]),
        # a child already paid is skipped, its siblings paid
        ([2, 3], [1], {2: (1_000, None)}, [(3, 0)]),
        # a child overpaid (a discount taken) is skipped too
        ([2, 3], [1], {2: (1_200, None)}, [(3, 0)]),
        # money one short of the total leaves the invoice open
        ([1], [1], {1: (999, None)}, [(1, 999)]),
    ],
)
def test_what_is_still_open_on_the_leaves(leaf_ids, asked, standing, expected):
    leaves = Leaves(tuple(inv(i) for i in leaf_ids), "usd", f"INV-{asked[0]}")
    opened = open_leaves(leaves, standing, asked)
    assert [(i.id, i.settled_minor) for i in opened] == expected


@pytest.mark.parametrize(
    ("leaf_ids", "asked", "standing", "code", "message"),
    [
        # a scheduled payment holds the invoice
        ([1], [1], {1: (0, S)}, "invoice_unavailable", "Invoice INV-1 already has a scheduled payment."),
        # a payment being made holds the invoice
        ([1], [1], {1: (0, PENDING)}, "invoice_unavailable", "Invoice INV-1 already has a pending payment."),
        # an ACH payment still processing shows as pending too
        (
            [1],
            [1],
            {1: (0, PROCESSING)},
            "invoice_unavailable",
            "Invoice INV-1 already has a pending payment.",
        ),
        # a hold is refused even on a child paid otherwise
        (
            [2, 3],
            [1],
            {3: (1_000, S)},
            "invoice_unavailable",
            "Invoice INV-3 already has a scheduled payment.",
        ),
        # an asked invoice paid in full
        ([1, 2], [1, 2], {2: (1_000, None)}, "invoice_paid", "Invoice INV-2 is already paid."),
        # every child of the asked parent paid: the parent is named
        ([2, 3], [1], {2: (1_000, None), 3: (1_000, None)}, "invoice_paid", "Invoice INV-1 is already paid."),
    ],
)
def test_leaves_held_or_paid_are_refused(leaf_ids, asked, standing, code, message):
    leaves = Leaves(tuple(inv(i) for i in leaf_ids), "usd", f"INV-{asked[0]}")
    with pytest.raises(RemitError) as refused:
        open_leaves(leaves, standing, asked)
    assert (refused.value.code, refused.value.message) == (code, message)


@pytest.mark.parametrize(
    ("standing", "expected"),
    [
        # untouched invoices in the account's currency are all open
        ({}, [(1, 0), (2, 0)]),
        # a partly paid invoice is open for the rest
        ({1: (300, None)}, [(1, 300), (2, 0)]),
        # a paid invoice is left out
        ({1: (1_000, None)}, [(2, 0)]),
        # an invoice a scheduled payment holds is left out, not refused
        ({2: (0, S)}, [(1, 0)]),
        # an invoice a payment in flight holds is left out
        ({2: (500, PENDING)}, [(1, 0)]),
    ],
)
def test_what_a_custom_amount_may_pay(standing, expected):
    rows = [inv(1), inv(2), inv(3, currency="eur")]  # the eur invoice never counts on a usd account
    opened = open_for_custom_amount(rows, standing, "usd")
    assert [(i.id, i.settled_minor) for i in opened] == expected


def test_a_custom_amount_with_nothing_open_pays_nothing():
    assert open_for_custom_amount([inv(1)], {1: (1_000, None)}, "usd") == []


def test_open_invoices_keep_their_discount_terms():
    row = InvoiceFacts(1, "INV-1", "usd", DUE, 1_000, discount_minor=20, discount_until=date(2026, 11, 10))
    selected = open_leaves(Leaves((row,), "usd", "INV-1"), {}, [1])
    assert selected == open_for_custom_amount([row], {}, "usd")
    assert (selected[0].discount_minor, selected[0].discount_until) == (20, date(2026, 11, 10))
