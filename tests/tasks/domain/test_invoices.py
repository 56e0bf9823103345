from datetime import date

import pytest

from tasks.domain.invoices import InvoiceStatus, combine_holds, invoice_state

TODAY = date(2026, 11, 22)
PAST, FUTURE = date(2026, 11, 1), date(2026, 12, 1)


@pytest.mark.parametrize(
    ("voided", "settled", "held_by", "due", "status", "overdue", "owed"),
    [
        (False, 0, None, FUTURE, InvoiceStatus.OPEN, False, 10_000),
        (False, 0, None, PAST, InvoiceStatus.OPEN, True, 10_000),
        (False, 0, None, TODAY, InvoiceStatus.OPEN, False, 10_000),
        (False, 4_000, None, PAST, InvoiceStatus.PARTIALLY_PAID, True, 6_000),
        (False, 10_000, None, PAST, InvoiceStatus.PAID, False, 0),
        (False, 0, "pending", PAST, InvoiceStatus.PENDING, True, 10_000),
        (False, 0, "submitting", FUTURE, InvoiceStatus.PENDING, False, 10_000),
        # ACH still processing: the invoice is pending, not paid
        (False, 0, "processing", FUTURE, InvoiceStatus.PENDING, False, 10_000),
        (False, 0, "requires_action", FUTURE, InvoiceStatus.PENDING, False, 10_000),
        (False, 0, "scheduled", FUTURE, InvoiceStatus.SCHEDULED, False, 10_000),
        (False, 4_000, "scheduled", PAST, InvoiceStatus.SCHEDULED, True, 6_000),
        (True, 0, None, PAST, InvoiceStatus.VOID, False, 0),
    ],
)
def test_invoice_status_is_derived(voided, settled, held_by, due, status, overdue, owed):
    state = invoice_state(
        voided=voided, total_minor=10_000, settled_minor=settled, held_by=held_by, due_on=due, today=TODAY
    )
    assert (state.status, state.overdue, state.owed_minor) == (status, overdue, owed)


@pytest.mark.parametrize(
    ("holds", "expected"),
    [
        ([None, None], None),
        ([None, "scheduled"], "scheduled"),
        (["scheduled", "processing"], "processing"),
        (["pending"], "pending"),
    ],
)
def test_a_parent_shows_the_strongest_hold_of_its_children(holds, expected):
    assert combine_holds(holds) == expected
