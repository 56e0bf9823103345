"""What the `remit` subcommands share: the refusal they raise, time filters, confirmation, short text."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class CommandError(Exception):
    """A command cannot go on; the message says why and what to do."""


def parse_since(raw: str, now: datetime | None = None) -> datetime:
    """A moment: a duration back from now (90s, 30m, 2h, 7d) or an ISO date or date-time (UTC if naive)."""
    found = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", raw)
    if found:
        amount, unit = found.groups()
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: int(amount)})
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise CommandError(
            f"--since {raw!r} is neither a duration (90s, 30m, 2h, 7d) "
            "nor a date (2026-12-01 or 2026-12-01T08:00)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def ask(question: str) -> bool:
    """Ask yes/no on the terminal; without one, refuse with how to say yes up front."""
    if not sys.stdin.isatty():
        raise CommandError(f"{question} Not asked: no terminal to answer on; add --yes to go ahead")
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def short(text: str | None, width: int) -> str:
    """The first line of text, cut to width with an ellipsis."""
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"
