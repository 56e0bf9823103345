"""How bytes reach Stripe: the kept-alive HTTP client, the configured SDK client and the shared rate limit.

Knows nothing of Remit's results or errors; tasks.gateways.stripe maps calls and failures onto them.
"""

from __future__ import annotations

import http.client
import ssl
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import redis
import stripe

from tasks.domain.rate_limits import StripeLimits
from tasks.gateways.limiter import StripeRateLimiter
from workers.telemetry import count_stripe_request

# Evenly spaced calls at exactly the budget still meet Stripe's one-second windows with jitter;
# 3% below it keeps 429s rare.
LIMITER_HEADROOM = 0.97
# A 429 is retried in place this many times (each after a new limiter slot) before the job retries.
RATE_LIMITED_RETRIES = 2


class KeepAliveClient(stripe.HTTPClient):
    """The SDK's HTTP transport on http.client: one kept-alive connection per thread and host.

    The SDK's default (requests) reads proxy settings from the whole environment and builds a
    session request on every call; this does only what a Stripe call needs. A failed connection is
    dropped and reported as retryable, so the SDK's own retry (with the same idempotency key)
    reconnects.
    """

    name = "remit-keepalive"

    def __init__(self, timeout_s: float):
        super().__init__()
        self._timeout_s = timeout_s
        self._local = threading.local()

    def request(self, method: str, url: str, headers, post_data=None, *, _usage=None):
        parts = urlsplit(url)
        target = parts.path + ("?" + parts.query if parts.query else "")
        connection = self._connection(parts.scheme, parts.netloc)
        body = post_data.encode("utf-8") if isinstance(post_data, str) else post_data
        try:
            connection.request(method.upper(), target, body=body, headers=dict(headers or {}))
            response = connection.getresponse()
            content = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self._drop(parts.scheme, parts.netloc)
            raise stripe.APIConnectionError(
                f"Network error talking to Stripe: {type(exc).__name__}: {exc}", should_retry=True
            ) from exc
        if response.will_close:
            self._drop(parts.scheme, parts.netloc)
        # An HTTPMessage: header lookups are case-insensitive, as the SDK expects.
        return content, response.status, response.msg

    def request_stream(self, method: str, url: str, headers, post_data=None, *, _usage=None):
        raise NotImplementedError("Remit makes no streaming Stripe calls")

    def close(self) -> None:
        for connection in getattr(self._local, "connections", {}).values():
            connection.close()
        self._local.connections = {}

    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        connections = self._local.__dict__.setdefault("connections", {})
        connection = connections.get((scheme, netloc))
        if connection is None:
            if scheme == "https":
                context = ssl.create_default_context(cafile=stripe.ca_bundle_path)
                connection = http.client.HTTPSConnection(netloc, timeout=self._timeout_s, context=context)
            else:
                connection = http.client.HTTPConnection(netloc, timeout=self._timeout_s)
            connections[(scheme, netloc)] = connection
        return connection

    def _drop(self, scheme: str, netloc: str) -> None:
        connection = getattr(self._local, "connections", {}).pop((scheme, netloc), None)
        if connection is not None:
            connection.close()


def build_client(api_key: str, api_base: str, timeout_s: float, network_retries: int) -> stripe.StripeClient:
    """An SDK client on the kept-alive transport; its own retries resend our idempotency key."""
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base},
        max_network_retries=network_retries,
        http_client=KeepAliveClient(timeout_s),
    )


def build_limiter(
    redis_url: str | None, limits: StripeLimits | float, namespace: str
) -> StripeRateLimiter | None:
    """The limiter every process shares through Redis; None without Redis, so calls go unspaced.

    A bare number is one budget for everything (no endpoint stricter than the account).
    """
    if not redis_url:
        return None
    if not isinstance(limits, StripeLimits):
        limits = StripeLimits(limits, limits, limits)
    return StripeRateLimiter(
        redis.Redis.from_url(redis_url), limits.scaled(LIMITER_HEADROOM), key=f"{namespace}:stripe:limiter"
    )


def send(
    limiter: StripeRateLimiter | None,
    fn: Callable[[dict, dict], Any],
    params: dict[str, Any],
    options: dict[str, Any],
    endpoint: str = "GET /v1",
) -> Any:
    """fn(params, options) in a limiter slot of its endpoint (Stripe's name for it, as limiter.endpoint_name
    gives); a 429 is retried on a fresh slot, the last one raised."""
    for attempt in range(RATE_LIMITED_RETRIES + 1):
        if limiter is not None:
            limiter.acquire(endpoint)
        try:
            answer = fn(params, options)
        except stripe.RateLimitError:
            count_stripe_request("rate_limited")
            # Not stored by Stripe, so retrying at once with a fresh slot is safe and cheap.
            if attempt == RATE_LIMITED_RETRIES:
                raise
        except stripe.StripeError:
            count_stripe_request("error")
            raise
        else:
            count_stripe_request("ok")
            return answer
