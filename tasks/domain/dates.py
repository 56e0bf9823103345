"""Calendar rules: what day it is at a seller, which is what due and discount dates mean."""

from __future__ import annotations

from datetime import date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo


class HasTimezone(Protocol):
    timezone: str


def seller_today(seller: HasTimezone, now: datetime) -> date:
    """The calendar date at the seller, which is what due and discount dates mean."""
    return now.astimezone(ZoneInfo(seller.timezone)).date()
