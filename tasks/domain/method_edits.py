"""What a customer may change on a saved method: a nickname (ours), billing details and a card's expiry
(Stripe's, sent to it). Pure rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from tasks.domain.addresses import InvalidAddress, email_address
from tasks.domain.errors import RemitError
from tasks.domain.requests import check_text, quoted
from tasks.domain.states import MethodKind, MethodStatus

# What the portal shows beside the card; short enough for a drop-down.
MAX_NICKNAME_LENGTH = 60
# Stripe's limits on billing_details strings are not documented; these hold any real name or address line.
MAX_BILLING_TEXT_LENGTH = 200
# Stripe refuses a card expiry further out than this; cards are issued for at most about ten years.
MAX_EXPIRY_YEARS_AHEAD = 20
ADDRESS_FIELDS = ("line1", "line2", "city", "state", "postal_code", "country")
BILLING_FIELDS = ("name", "email", "phone", "address")
EDITABLE_STATUSES = (MethodStatus.ACTIVE,)


@dataclass(frozen=True)
class Edit:
    """A checked edit; a field left None is not changed (nickname "" clears the nickname)."""

    nickname: str | None = None
    billing_details: dict[str, Any] | None = None
    exp_month: int | None = None
    exp_year: int | None = None

    @property
    def for_stripe(self) -> bool:
        """Whether Stripe holds something this edit changes."""
        return self.billing_details is not None or self.exp_month is not None


def check_edit(
    nickname: Any, billing_details: Any, exp_month: Any, exp_year: Any, kind: str, today: date
) -> Edit:
    """The edit the portal asked for, or a refusal naming the first thing wrong; at least one change."""
    if nickname is None and billing_details is None and exp_month is None and exp_year is None:
        raise RemitError(
            "nothing_to_change", "Give a nickname, billing details or a card's expiry to change."
        )
    name = _check_nickname(nickname)
    billing = None if billing_details is None else check_billing_details(billing_details)
    month, year = _check_expiry(exp_month, exp_year, kind, today)
    return Edit(name, billing, month, year)


def check_editable(status: str, saved: bool) -> None:
    if not saved or status not in EDITABLE_STATUSES:
        raise RemitError(
            "method_not_editable",
            f"Only a saved, ready payment method can be edited; this one is {status.replace('_', ' ')}.",
        )


def check_billing_details(value: Any) -> dict[str, Any]:
    """Stripe's billing_details shape: name, email, phone and an address; "" clears a field at Stripe."""
    if not isinstance(value, dict) or not value or set(value) - set(BILLING_FIELDS):
        raise RemitError(
            "invalid_billing_details",
            f"billing_details takes {', '.join(BILLING_FIELDS)}, not {quoted(value)}.",
        )
    checked: dict[str, Any] = {}
    for field in ("name", "phone"):
        if field in value:
            checked[field] = _billing_text(value[field], field)
    if "email" in value:
        checked["email"] = _billing_email(value["email"])
    if "address" in value:
        checked["address"] = _check_address(value["address"])
    return checked


def merged_billing(current: dict[str, Any] | None, change: dict[str, Any]) -> dict[str, Any]:
    """The billing details after the change: fields given replace, an address merges field by field."""
    merged = {**(current or {}), **change}
    if "address" in change:
        merged["address"] = {**((current or {}).get("address") or {}), **change["address"]}
    return merged


def stripe_update(kind: str, billing_details: dict[str, Any] | None, exp_month: Any, exp_year: Any) -> dict:
    """The whole editable state as Stripe's update takes it: a later edit always sends everything."""
    params: dict[str, Any] = {}
    if billing_details:
        params["billing_details"] = billing_details
    if kind == MethodKind.CARD and exp_month and exp_year:
        params["card"] = {"exp_month": exp_month, "exp_year": exp_year}
    return params


def update_key(method_id: int, version: int) -> str:
    """The Stripe idempotency key of one edit of one method."""
    return f"remit-method-{method_id}-update-{version}"


def _check_nickname(value: Any) -> str | None:
    if value is None or value == "":
        return value
    return check_text(value, "nickname", "invalid_nickname", MAX_NICKNAME_LENGTH).strip()


def _billing_text(value: Any, field: str) -> str:
    if value == "":
        return ""
    return check_text(value, f"billing {field}", "invalid_billing_details", MAX_BILLING_TEXT_LENGTH).strip()


def _billing_email(value: Any) -> str:
    if value == "":
        return ""
    try:
        return email_address(value, "billing email")
    except InvalidAddress as wrong:
        raise RemitError("invalid_billing_details", str(wrong)) from None


def _check_address(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not value or set(value) - set(ADDRESS_FIELDS):
        raise RemitError(
            "invalid_billing_details", f"The address takes {', '.join(ADDRESS_FIELDS)}, not {quoted(value)}."
        )
    address = {field: _billing_text(text, f"address {field}") for field, text in value.items()}
    country = address.get("country")
    if country and not (len(country) == 2 and country.isascii() and country.isalpha()):
        raise RemitError("invalid_billing_details", "The country must be a two-letter code such as US.")
    if country:
        address["country"] = country.upper()
    return address


def _check_expiry(month: Any, year: Any, kind: str, today: date) -> tuple[int | None, int | None]:
    if month is None and year is None:
        return None, None
    if kind != MethodKind.CARD:
        raise RemitError("invalid_expiry", "Only a card has an expiry date.")
    if not _is_int(month) or not 1 <= month <= 12 or not _is_int(year):
        raise RemitError("invalid_expiry", "Give both exp_month (1 to 12) and exp_year (four digits).")
    if (year, month) < (today.year, today.month):
        raise RemitError("invalid_expiry", f"The card would have expired already ({month:02d}/{year}).")
    if year > today.year + MAX_EXPIRY_YEARS_AHEAD:
        raise RemitError("invalid_expiry", f"The expiry year {year} is too far ahead.")
    return month, year


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
