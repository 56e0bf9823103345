"""An account's derived figures, computed from the ledger rows. Pure."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class InvoiceFacts:
    total_minor: int
    settled_minor: int
    due_on: date


@dataclass(frozen=True)
class Figures:
    balance_minor: int
    overdue_minor: int
    pending_minor: int
    scheduled_minor: int
    credit_minor: int


def compute_figures(
    invoices: list[InvoiceFacts], pending_minor: int, scheduled_minor: int, credit_minor: int, today: date
) -> Figures:
    """Balance is what is still owed; overdue is the part owed on invoices past their due date."""
    owed = [(max(i.total_minor - i.settled_minor, 0), i.due_on) for i in invoices]
    return Figures(
        balance_minor=sum(amount for amount, _ in owed),
        overdue_minor=sum(amount for amount, due in owed if due < today),
        pending_minor=pending_minor,
        scheduled_minor=scheduled_minor,
        credit_minor=credit_minor,
    )


def drift_between(stored: Figures, ledger: Figures) -> dict[str, tuple[int, int]]:
    """The figures that differ, as {name: (stored, ledger)}; empty when the stored ones are right."""
    return {
        name: (value, getattr(ledger, name))
        for name, value in vars(stored).items()
        if value != getattr(ledger, name)
    }


@dataclass(frozen=True)
class Aging:
    """What is owed by days past due at the seller's today, and what falls due from today to the end of this
    calendar week (Monday to Sunday) and of this calendar month. The five buckets add up to the balance."""

    current_minor: int
    days_1_30_minor: int
    days_31_60_minor: int
    days_61_90_minor: int
    over_90_minor: int
    due_this_week_minor: int
    due_this_month_minor: int


# The upper day of each past-due bucket, as statements and dunning letters count them; past the last: over 90.
AGING_LIMITS_DAYS = (0, 30, 60, 90)


def compute_aging(invoices: list[InvoiceFacts], today: date) -> Aging:
    """An invoice due today is current; due yesterday, 1 day past due; 90 days is the last of 61-90."""
    buckets = [0] * (len(AGING_LIMITS_DAYS) + 1)
    week_end = today + timedelta(days=6 - today.weekday())
    month_end = today.replace(day=calendar.monthrange(today.year, today.month)[1])
    this_week = this_month = 0
    for invoice in invoices:
        owed = max(invoice.total_minor - invoice.settled_minor, 0)
        late = (today - invoice.due_on).days
        buckets[sum(late > limit for limit in AGING_LIMITS_DAYS)] += owed
        this_week += owed if today <= invoice.due_on <= week_end else 0
        this_month += owed if today <= invoice.due_on <= month_end else 0
    return Aging(*buckets, due_this_week_minor=this_week, due_this_month_minor=this_month)
