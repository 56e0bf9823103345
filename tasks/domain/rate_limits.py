"""Stripe's rate limits as rules: what an endpoint is, and the limits for the account and each endpoint.

Stripe limits requests per second once for the whole account and once per endpoint, where an endpoint is
one named API operation: `POST /v1/payment_intents` and `GET /v1/payment_intents/{id}` are two, and every
PaymentIntent id counts against the second (docs.stripe.com/rate-limits).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

# Stripe's documented defaults (docs.stripe.com/rate-limits): an endpoint allows 25 requests a second
# unless Stripe raised it for the account; search allows 20 reads a second.
DEFAULT_ENDPOINT_REQUESTS_PER_SECOND = 25.0
DEFAULT_SEARCH_REQUESTS_PER_SECOND = 20.0

# An id in a path: a segment after a resource name ("pi_3Mt..." in /v1/payment_intents/pi_3Mt.../confirm).
_ACTIONS_IN_ID_POSITION = frozenset({"search"})
_ENDPOINT_NAME = re.compile(r"^(GET|POST|DELETE) /v1(/[a-z_]+(/\{id\})?)+$")


def endpoint_name(method: str, path: str) -> str:
    """Stripe's endpoint for a request: the method and the path with each object id as `{id}`."""
    parts = path.split("?", 1)[0].strip("/").split("/")
    named = [
        "{id}" if index % 2 == 0 and index > 0 and part not in _ACTIONS_IN_ID_POSITION else part
        for index, part in enumerate(parts)
    ]
    return f"{method.upper()} /" + "/".join(named)


@dataclass(frozen=True)
class StripeLimits:
    """Requests per second for the account and for each endpoint (Stripe's shape)."""

    global_rps: float
    endpoint_rps: float = DEFAULT_ENDPOINT_REQUESTS_PER_SECOND
    search_rps: float = DEFAULT_SEARCH_REQUESTS_PER_SECOND
    # Per-endpoint exceptions, e.g. {"POST /v1/payment_intents": 100.0} where Stripe raised a limit.
    endpoints: Mapping[str, float] = field(default_factory=dict)

    def for_endpoint(self, endpoint: str) -> float:
        """The endpoint's own limit (its exception, else the search or the default limit)."""
        if endpoint in self.endpoints:
            return self.endpoints[endpoint]
        return self.search_rps if endpoint.endswith("/search") else self.endpoint_rps

    def scaled(self, factor: float) -> StripeLimits:
        """Every limit times factor (headroom below the real limits)."""
        return StripeLimits(
            self.global_rps * factor,
            self.endpoint_rps * factor,
            self.search_rps * factor,
            {name: rps * factor for name, rps in self.endpoints.items()},
        )


def parse_endpoint_limits(text: str) -> dict[str, float]:
    """`"POST /v1/payment_intents=100, GET /v1/payment_intents/{id}=50"` -> a dict; errors name the entry."""
    limits: dict[str, float] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = entry.rpartition("=")
        name = " ".join(name.split())
        if not sep or not _ENDPOINT_NAME.match(name):
            raise ValueError(
                f"{entry!r} is not an endpoint limit: expected 'METHOD /v1/path=requests per second', "
                "with object ids written {id}, e.g. 'GET /v1/payment_intents/{id}=50'"
            )
        try:
            rps = float(value)
        except ValueError:
            rps = 0.0
        if not 0 < rps < float("inf"):
            raise ValueError(f"{entry!r}: the limit must be a positive number of requests per second")
        limits[name] = rps
    return limits
