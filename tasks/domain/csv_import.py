"""The CSV formats of `remit import`: a row's cells as the record tasks.api.sync and external take.

Cells are text; a column's type turns its cell into the record's value (an empty cell leaves the field out,
so the API's default applies). A cell that is not of its column's type makes the row malformed: it is
reported with its line number, and the rows after it still go.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}


class MalformedRow(ValueError):
    """A row whose cell is not of its column's type; the message names the column."""


class MalformedFile(ValueError):
    """A header this format cannot read: an unknown or a missing column."""


def _text(value: str) -> str:
    return value


def _whole(value: str) -> int:
    if not value.strip().lstrip("-").isdigit():
        raise ValueError("a whole number")
    return int(value.strip())


def _flag(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("true or false")


@dataclass(frozen=True)
class Format:
    columns: dict[str, Callable[[str], object]]
    required: frozenset[str]


_INVOICE_COLUMNS = dict(
    external_id=_text,
    version=_whole,
    account_external_id=_text,
    number=_text,
    currency=_text,
    total_minor=_whole,
    issued_on=_text,
    due_on=_text,
    discount_minor=_whole,
    discount_until=_text,
    customer_visible=_flag,
    voided=_flag,
    parent_external_id=_text,
    site_name=_text,
)
FORMATS = {
    "accounts": Format(
        dict(
            external_id=_text,
            version=_whole,
            number=_text,
            name=_text,
            billing_email=_text,
            currency=_text,
            portal_enabled=_flag,
        ),
        frozenset({"external_id", "version", "number", "name", "billing_email"}),
    ),
    "invoices": Format(
        _INVOICE_COLUMNS,
        frozenset(
            {"external_id", "version", "account_external_id", "number", "total_minor", "issued_on", "due_on"}
        ),
    ),
    # One row per invoice a payment settles; rows sharing a reference are one payment.
    "payments": Format(
        dict(
            reference=_text,
            account_external_id=_text,
            kind=_text,
            invoice_external_id=_text,
            amount_minor=_whole,
        ),
        frozenset({"reference", "account_external_id", "kind", "invoice_external_id", "amount_minor"}),
    ),
}


def check_header(kind: str, header: Iterable[str] | None) -> None:
    """Refuse a header with a column this format does not know, or without one it needs."""
    known = FORMATS[kind]
    names = [name.strip() for name in header or []]
    unknown = [name for name in names if name not in known.columns]
    missing = sorted(known.required - set(names))
    if unknown or missing:
        parts = ([f"unknown column(s) {', '.join(unknown)}"] if unknown else []) + (
            [f"missing column(s) {', '.join(missing)}"] if missing else []
        )
        raise MalformedFile(f"{kind} CSV header: {'; '.join(parts)}")


def record_of(kind: str, row: dict[str | None, object]) -> dict[str, object]:
    """The record a row describes; MalformedRow naming the first cell that is not of its column's type."""
    if None in row:
        raise MalformedRow("more cells than the header has columns")
    columns = FORMATS[kind].columns
    record: dict[str, object] = {}
    for name, cell in row.items():
        if cell is None:
            raise MalformedRow("fewer cells than the header has columns")
        if not str(cell).strip():
            continue
        try:
            record[str(name).strip()] = columns[str(name).strip()](str(cell))
        except ValueError as wrong:
            raise MalformedRow(f"{name} must be {wrong}, not {str(cell)[:40]!r}") from None
    return record


@dataclass
class ExternalPaymentRows:
    """The rows of one reference: one external payment and its lines."""

    reference: str
    account_external_id: str
    kind: str
    lines: list[tuple[str, object]] = field(default_factory=list)  # record_external_payment checks them
    line_numbers: list[int] = field(default_factory=list)
    problem: str | None = None


def group_payments(rows: Iterable[tuple[int, dict[str, object]]]) -> list[ExternalPaymentRows]:
    """Rows grouped by reference in first-seen order; rows of one reference that disagree on account or kind
    mark the payment as a problem (it is refused whole, never recorded in part)."""
    groups: dict[str, ExternalPaymentRows] = {}
    for line, record in rows:
        reference = str(record.get("reference", ""))
        group = groups.setdefault(
            reference,
            ExternalPaymentRows(
                reference, str(record.get("account_external_id", "")), str(record.get("kind", ""))
            ),
        )
        if (group.account_external_id, group.kind) != (record.get("account_external_id"), record.get("kind")):
            group.problem = f"line {line} names another account or kind than line {group.line_numbers[0]}"
        group.lines.append((str(record.get("invoice_external_id", "")), record.get("amount_minor")))
        group.line_numbers.append(line)
    return list(groups.values())
