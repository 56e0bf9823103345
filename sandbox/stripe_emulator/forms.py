"""Decoding of Stripe's bracketed form bodies and query strings into nested dicts."""

import re
from urllib.parse import parse_qsl

from .errors import invalid

_TOKEN = re.compile(r"\[([^\]]*)\]")


def parse_form(text):
    """Nested dicts and lists from `a[b][0]=x&c[]=y` style pairs."""
    root = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        _insert(root, _split_key(key), value)
    return _listify(root)


def _split_key(key):
    head = key.split("[", 1)[0]
    return [head] + _TOKEN.findall(key[len(head) :])


def _insert(node, parts, value):
    for part in parts[:-1]:
        if part == "":
            part = str(len(node))
        if part not in node or not isinstance(node[part], dict):
            node[part] = {}
        node = node[part]
    last = parts[-1]
    node[str(len(node)) if last == "" else last] = value


def _listify(value):
    if not isinstance(value, dict):
        return value
    converted = {k: _listify(v) for k, v in value.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def as_bool(params, name, default=False):
    """A boolean parameter in either spelling the SDKs have used."""
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    lowered = str(value).lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise invalid(f"Invalid boolean: {value}", name, "parameter_invalid_boolean")


def as_int(params, name, default=None, required=False):
    """An integer parameter, validated the way Stripe does."""
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise invalid(f"Missing required param: {name}.", name, "parameter_missing")
        return default
    try:
        return int(str(value))
    except ValueError:
        raise invalid(f"Invalid integer: {value}", name, "parameter_invalid_integer") from None


def as_list(params, name):
    """A list parameter; a lone value counts as a list of one."""
    value = params.get(name)
    if value is None or value == "":
        return []
    if isinstance(value, dict):
        return list(value.values())
    return value if isinstance(value, list) else [value]


def merge_metadata(current, update):
    """Metadata after an update; an empty string removes the key, as in Stripe."""
    if update == "":
        return {}
    merged = dict(current or {})
    for key, value in (update or {}).items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged
