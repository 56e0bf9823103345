"""What a record keeps once its personal data is past retention: ids, kinds, amounts, states, nothing else."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

# Text kept as it is: Stripe's and our own identifiers, kinds and states. Everything else that is text
# (names, emails, addresses, bank details, comments, user agents, messages) is dropped.
KEPT_TEXT_KEYS = frozenset(
    {
        "id", "object", "type", "kind", "status", "currency", "livemode", "api_version", "failure_code",
        "decline_code", "code", "reason", "number", "network_status", "brand", "dedupe_key",
    }
)  # fmt: skip
# Keys whose text value is a reference to another Stripe object, not about a person.
STRIPE_REFERENCE_KEYS = frozenset(
    {
        "customer", "payment_intent", "charge", "latest_charge", "payment_method", "setup_intent", "mandate",
        "balance_transaction", "refund", "dispute", "source", "transfer", "invoice", "account", "payment",
    }
)  # fmt: skip
# Marks a redacted record, so it is never taken for a live one (and never redacted twice).
REDACTED_KEY = "redacted"


def redacted(record: dict[str, Any]) -> dict[str, Any]:
    """The record's skeleton: its numbers, flags, ids, kinds and states, marked as redacted."""
    return {**_keep(record), REDACTED_KEY: True}


def retention_cutoff(now: datetime, days: int) -> datetime:
    """Records older than this are past a retention of `days` days."""
    return now - timedelta(days=days)


def _keep(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        kept = {name: _keep(item, name) for name, item in value.items()}
        return {name: item for name, item in kept.items() if item is not _DROPPED}
    if isinstance(value, list):
        return [item for item in (_keep(item, key) for item in value) if item is not _DROPPED]
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str) and _is_kept_text(key):
        return value
    return _DROPPED


def _is_kept_text(key: str) -> bool:
    return key in KEPT_TEXT_KEYS or key in STRIPE_REFERENCE_KEYS or key.endswith(("_id", "_kind", "_status"))


_DROPPED = object()
