"""`/v1/payment_intents/search` for Remit's query forms: `metadata['k']:'v'`, `status:'x'`, `customer:'x'`."""

import re

from .errors import invalid
from .forms import as_int

_CLAUSE = re.compile(
    r"""^\s*(metadata\[(['"])(?P<key>[^'"]+)\2\]|(?P<field>[a-z_]+))\s*:\s*(['"])(?P<value>.*)\5\s*$"""
)


def parse(query):
    """(field path, value) pairs joined by AND; the emulator does not support OR or ranges."""
    if not query:
        raise invalid("Missing required param: query.", "query", "parameter_missing")
    clauses = []
    for part in re.split(r"\s+AND\s+", query.strip()):
        match = _CLAUSE.match(part)
        if not match:
            raise invalid(f"Query '{query}' is not supported by the emulator.", "query")
        path = ("metadata", match["key"]) if match["key"] else (match["field"],)
        clauses.append((path, match["value"]))
    return clauses


def _matches(obj, clauses):
    for path, value in clauses:
        found = obj
        for step in path:
            found = found.get(step) if isinstance(found, dict) else None
        if str(found) != value:
            return False
    return True


def search_intents(state, call):
    """GET /v1/payment_intents/search, newest first, paged by `page`."""
    clauses = parse(call.params.get("query"))
    hits = [i for i in reversed(state.store.all("payment_intent")) if _matches(i, clauses)]
    start = int(call.params.get("page") or 0)
    limit = as_int(call.params, "limit", 10)
    chosen = hits[start : start + limit]
    more = start + limit < len(hits)
    return {
        "object": "search_result",
        "data": chosen,
        "has_more": more,
        "url": "/v1/payment_intents/search",
        "next_page": str(start + limit) if more else None,
    }
