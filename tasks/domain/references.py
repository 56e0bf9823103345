"""Customer-facing payment references: "<seller prefix>-<number>", the number counted per seller."""

from __future__ import annotations

import re

# Long enough to tell sellers apart on a statement, short enough to read out on the phone.
DEFAULT_PREFIX_CHARS = 8
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")


def reference_prefix(slug: str, chosen: str | None) -> str:
    """The seller's chosen prefix, else its slug's letters and digits in capitals (acme-supply: ACMESUPP)."""
    if chosen:
        return chosen
    return _NOT_ALNUM.sub("", slug).upper()[:DEFAULT_PREFIX_CHARS] or "PAY"


def payment_reference(prefix: str, number: int) -> str:
    """The reference a customer sees for the seller's number-th payment."""
    return f"{prefix}-{number}"
