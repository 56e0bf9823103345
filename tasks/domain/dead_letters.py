"""Which dead letters an operator means: a filter from form fields, or from a search line such as
`actor:send error:timeout`."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, fields, replace
from datetime import datetime

# The field prefixes a search line understands; anything else is matched against every field.
SEARCH_FIELDS = ("queue", "actor", "status", "error", "args")


@dataclass(frozen=True)
class DeadLetterFilter:
    """Substring matches (case-insensitive) on each field given; status is exact; text matches any field;
    since keeps jobs that failed at or after it."""

    queue: str = ""
    actor: str = ""
    status: str = ""
    error: str = ""
    args: str = ""
    text: str = ""
    since: datetime | None = None

    def is_empty(self) -> bool:
        return not any(getattr(self, f.name) for f in fields(self))

    def as_dict(self) -> dict[str, str]:
        """Every field as text (since in ISO form, "" when unset), as an audit record stores it."""
        found = {f.name: getattr(self, f.name) for f in fields(self)}
        return {**found, "since": self.since.isoformat() if self.since else ""}


def parse_search(line: str, base: DeadLetterFilter | None = None) -> DeadLetterFilter:
    """A filter from `field:value` tokens (quotes group words); the rest is free text. base's fields stay
    unless the line names them."""
    try:
        tokens = shlex.split(line)
    except ValueError:  # an unbalanced quote: take the words as they are
        tokens = line.split()
    named, free = {}, []
    for token in tokens:
        name, sep, value = token.partition(":")
        if sep and name.lower() in SEARCH_FIELDS and value:
            named[name.lower()] = value
        else:
            free.append(token)
    if free:
        named["text"] = " ".join(free)
    return replace(base or DeadLetterFilter(), **named)
