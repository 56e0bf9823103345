"""Stripe list objects: newest first, `created` filters, cursor pagination and `expand[]`."""

import copy

from .errors import invalid
from .forms import as_int, as_list

# Stripe's documented default and ceiling for `limit`.
DEFAULT_LIMIT = 10
MAX_LIMIT = 100


def created_matches(created, condition):
    """Whether a timestamp passes a `created` filter given as an int or a gt/gte/lt/lte dict."""
    if condition in (None, ""):
        return True
    if not isinstance(condition, dict):
        return created == int(condition)
    tests = {
        "gt": created.__gt__,
        "gte": created.__ge__,
        "lt": created.__lt__,
        "le": created.__le__,
        "lte": created.__le__,
    }
    return all(tests[op](int(value)) for op, value in condition.items() if op in tests)


def page(objects, params, url, store=None):
    """One page of `objects` (given oldest first) as a list object."""
    limit = _limit(params)
    newest = [o for o in reversed(objects) if created_matches(o.get("created", 0), params.get("created"))]
    before, after = params.get("ending_before"), params.get("starting_after")
    if after:
        newest = newest[_position(newest, after, "starting_after") + 1 :]
        chosen = newest[:limit]
    elif before:
        newest = newest[: _position(newest, before, "ending_before")]
        chosen = newest[-limit:]
    else:
        chosen = newest[:limit]
    data = [expand(o, _list_expansions(params), store) for o in chosen]
    return {"object": "list", "data": data, "has_more": len(newest) > len(chosen), "url": url}


def _limit(params):
    limit = as_int(params, "limit", DEFAULT_LIMIT)
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid(f"This value must be between 1 and 100 (it currently is {limit:d}).", "limit")
    return limit


def _position(objects, object_id, param):
    for index, obj in enumerate(objects):
        if obj["id"] == object_id:
            return index
    raise invalid(f"No such object: '{object_id}'", param, "resource_missing", status=404)


def _list_expansions(params):
    return [p[len("data.") :] for p in as_list(params, "expand") if p.startswith("data.")]


def expand(obj, paths, store):
    """A copy of `obj` with the id fields named by dotted `paths` replaced by their objects."""
    if not paths or store is None:
        return obj
    result = copy.deepcopy(obj)
    for path in paths:
        _expand_path(result, path.split("."), store)
    return result


def _expand_path(obj, parts, store):
    field = parts[0]
    value = obj.get(field) if isinstance(obj, dict) else None
    if isinstance(value, str):
        found = store.find(value)
        if found is None:
            return
        value = obj[field] = copy.deepcopy(found)
    if len(parts) > 1 and isinstance(value, dict):
        _expand_path(value, parts[1:], store)


def expansions(params):
    """The `expand[]` paths of a request."""
    return as_list(params, "expand")
