"""Stripe calls Remit makes, reduced to Remit's results; every Stripe error becomes one of ours here.

The wire (HTTP client, SDK client, rate limit) is tasks.gateways.stripe_transport.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import stripe

from tasks.domain.errors import SignatureInvalid, StripeMisconfigured, StripeRefused, StripeUnavailable
from tasks.domain.events import DEPLOYMENT_KEY
from tasks.domain.intents import AUTHENTICATION_REQUIRED
from tasks.domain.rate_limits import StripeLimits
from tasks.gateways.limiter import StripeRateLimiter
from tasks.gateways.stripe_transport import build_client, build_limiter, send


@dataclass(frozen=True)
class IntentResult:
    """What Stripe says about a PaymentIntent, reduced to what Remit decides on."""

    id: str | None
    status: str
    amount: int | None = None
    currency: str | None = None
    charge_id: str | None = None
    error_code: str | None = None
    decline_code: str | None = None
    error_message: str | None = None
    next_action: str | None = None
    metadata: dict[str, str] | None = None
    # What Stripe.js needs to finish the intent in the customer's browser: passed on, never stored.
    client_secret: str | None = None

    @property
    def needs_authentication(self) -> bool:
        return (
            AUTHENTICATION_REQUIRED in (self.error_code, self.decline_code)
            or self.status == "requires_action"
        )


@dataclass(frozen=True)
class MethodDetails:
    """Display data of a Stripe PaymentMethod: never a card number."""

    id: str
    kind: str
    last4: str
    brand: str | None = None
    exp_month: int | None = None
    exp_year: int | None = None
    bank_name: str | None = None


@dataclass(frozen=True)
class Mandate:
    """The customer's acceptance of the ACH debit terms, as recorded when the account was saved."""

    accepted_at: int
    ip_address: str
    user_agent: str


class StripeGateway:
    """Stripe calls Remit makes, each rate limited and carrying our idempotency key."""

    def __init__(
        self, client: stripe.StripeClient, limiter: StripeRateLimiter | None = None, deployment: str = "remit"
    ):
        self._client = client
        self._limiter = limiter
        # Marks every PaymentIntent this deployment creates (tasks.domain.events.DEPLOYMENT_KEY).
        self.deployment = deployment

    def create_customer(self, *, account_id: int, email: str, name: str, idempotency_key: str) -> str:
        params = {"email": email, "name": name, "metadata": {"account_id": str(account_id)}}
        customer = self._call(
            "POST /v1/customers",
            self._client.v1.customers.create,
            params,
            {"idempotency_key": idempotency_key},
        )
        return customer.id

    def attach_payment_method(
        self, *, payment_method: str, customer_id: str, idempotency_key: str
    ) -> MethodDetails:
        attached = self._call(
            "POST /v1/payment_methods/{id}/attach",
            lambda p, o: self._client.v1.payment_methods.attach(payment_method, p, o),
            {"customer": customer_id},
            {"idempotency_key": idempotency_key},
        )
        return method_details(attached)

    def create_payment_intent(self, *, params: dict[str, Any], idempotency_key: str) -> IntentResult:
        """Create and confirm; a decline comes back as a result, never as an exception."""
        metadata = {**params.get("metadata", {}), DEPLOYMENT_KEY: self.deployment}
        params = {**params, "metadata": metadata}
        try:
            # The SDK's raw request: the same encoding, retries and errors, and the answer as plain JSON
            # (building an SDK object for every charge cost more than our own handling of it).
            response = self._call(
                "POST /v1/payment_intents",
                lambda p, o: self._client.raw_request("post", "/v1/payment_intents", **p, **o),
                params,
                {"idempotency_key": idempotency_key},
            )
        except stripe.CardError as exc:
            return _declined(exc)
        return intent_result(response.data)

    def retrieve_payment_intent(self, intent_id: str) -> IntentResult:
        intent = self._call(
            "GET /v1/payment_intents/{id}",
            lambda p, o: self._client.v1.payment_intents.retrieve(intent_id, p, o),
            {},
            {},
        )
        return intent_result(intent)

    def cancel_payment_intent(self, intent_id: str, *, reason: str, idempotency_key: str) -> IntentResult:
        """Cancel an intent still waiting (for authentication, or a new method); one Stripe moved on first
        (succeeded, processing, already canceled) is refused by Stripe and comes back as it is now."""
        try:
            intent = self._call(
                "POST /v1/payment_intents/{id}/cancel",
                lambda p, o: self._client.v1.payment_intents.cancel(intent_id, p, o),
                {"cancellation_reason": reason},
                {"idempotency_key": idempotency_key},
            )
        except StripeRefused as refused:
            if refused.code != "payment_intent_unexpected_state":
                raise
            return self.retrieve_payment_intent(intent_id)
        return intent_result(intent)

    def find_payment_intent(self, payment_id: int) -> IntentResult | None:
        """The PaymentIntent this deployment made for our payment id, if Stripe has one."""
        ours = {"payment_id": str(payment_id), DEPLOYMENT_KEY: self.deployment}
        query = " AND ".join(f"metadata['{key}']:'{value}'" for key, value in ours.items())
        found = self._call(
            "GET /v1/payment_intents/search",
            self._client.v1.payment_intents.search,
            {"query": query, "limit": 10},
            {},
        )
        intents = [_plain(i) for i in found.data]
        intents = [i for i in intents if ours.items() <= (i.get("metadata") or {}).items()]
        return intent_result(intents[0]) if intents else None

    def list_events(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Every event matching params, newest first; each page is a call of its own through _call.

        Not the SDK's auto_paging_iter: it fetches later pages itself, outside the shared limiter, the
        in-place 429 retry and the translation of Stripe's errors into ours.
        """
        events: list[dict[str, Any]] = []
        query = dict(params)
        while True:
            page = self._call("GET /v1/events", self._client.v1.events.list, query, {})
            events.extend(event.to_dict() for event in page.data)
            if not page.has_more or not page.data:
                return events
            query["starting_after"] = page.data[-1].id

    def _call(self, endpoint: str, fn, params: dict[str, Any], options: dict[str, Any]):
        """fn in a limiter slot of endpoint (Stripe's name for the operation, ids as {id}); errors as ours."""
        try:
            return send(self._limiter, fn, params, options, endpoint)
        except stripe.CardError:
            raise
        except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as exc:
            raise StripeUnavailable(f"{type(exc).__name__}: {exc.user_message or exc}") from exc
        except (stripe.AuthenticationError, stripe.PermissionError, stripe.IdempotencyError) as exc:
            raise StripeMisconfigured(f"{type(exc).__name__}: {exc.user_message or exc}") from exc
        except stripe.InvalidRequestError as exc:
            raise StripeRefused(exc.code, exc.user_message or str(exc), exc.http_status) from exc
        except stripe.StripeError as exc:
            if exc.http_status is None or exc.http_status >= 500:
                raise StripeUnavailable(f"{type(exc).__name__}: {exc}") from exc
            raise StripeRefused(exc.code, exc.user_message or str(exc), exc.http_status) from exc

    # ---- Saved methods (tasks.flows.ach): SetupIntents, microdeposits, retrieve, detach ----
    # SetupIntents come back as plain dicts reduced to what Remit decides on:
    # id, status, payment_method, next_action, arrival_date, microdeposit_type, error_code, error_message.

    def create_setup_intent(
        self,
        *,
        customer_id: str,
        payment_method: str,
        mandate: Mandate,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> dict[str, Any]:
        """Create and confirm an off-session bank SetupIntent; microdeposits when not verified at once."""
        params = {
            "customer": customer_id,
            "payment_method": payment_method,
            "payment_method_types": ["us_bank_account"],
            "usage": "off_session",
            "confirm": True,
            "metadata": metadata,
            # automatic: instant when the portal collected the account through Financial Connections,
            # microdeposits otherwise.
            "payment_method_options": {"us_bank_account": {"verification_method": "automatic"}},
            "mandate_data": mandate_data(mandate),
        }
        try:
            intent = self._call(
                "POST /v1/setup_intents",
                self._client.v1.setup_intents.create,
                params,
                {"idempotency_key": idempotency_key},
            )
        except stripe.CardError as exc:
            raise StripeRefused(exc.code, exc.user_message or str(exc), exc.http_status) from exc
        return self._setup_state(intent)

    def verify_setup_intent_microdeposits(
        self,
        setup_intent_id: str,
        *,
        amounts: tuple[int, int] | None,
        descriptor_code: str | None,
        idempotency_key: str,
    ) -> dict[str, Any]:
        """Wrong values, exhausted attempts and timeouts raise StripeRefused with Stripe's code."""
        params: dict[str, Any] = (
            {"amounts": list(amounts)} if amounts else {"descriptor_code": descriptor_code}
        )
        intent = self._call(
            "POST /v1/setup_intents/{id}/verify_microdeposits",
            lambda p, o: self._client.v1.setup_intents.verify_microdeposits(setup_intent_id, p, o),
            params,
            {"idempotency_key": idempotency_key},
        )
        return self._setup_state(intent)

    def retrieve_setup_intent(self, setup_intent_id: str) -> dict[str, Any]:
        intent = self._call(
            "GET /v1/setup_intents/{id}",
            lambda p, o: self._client.v1.setup_intents.retrieve(setup_intent_id, p, o),
            {},
            {},
        )
        return self._setup_state(intent)

    def retrieve_payment_method(self, payment_method: str) -> MethodDetails:
        found = self._call(
            "GET /v1/payment_methods/{id}",
            lambda p, o: self._client.v1.payment_methods.retrieve(payment_method, p, o),
            {},
            {},
        )
        return method_details(found)

    def update_payment_method(
        self, payment_method: str, params: dict[str, Any], *, idempotency_key: str
    ) -> MethodDetails:
        """POST /v1/payment_methods/{id}: billing details and a card's expiry (it must be attached)."""
        updated = self._call(
            "POST /v1/payment_methods/{id}",
            lambda p, o: self._client.v1.payment_methods.update(payment_method, p, o),
            params,
            {"idempotency_key": idempotency_key},
        )
        return method_details(updated)

    def detach_payment_method(self, payment_method: str, *, idempotency_key: str) -> bool:
        """Detach from its customer; False when it was not attached (already detached, or never)."""
        try:
            self._call(
                "POST /v1/payment_methods/{id}/detach",
                lambda p, o: self._client.v1.payment_methods.detach(payment_method, p, o),
                {},
                {"idempotency_key": idempotency_key},
            )
        except StripeRefused as refused:
            if refused.code in ("payment_method_unexpected_state", "resource_missing"):
                return False
            raise
        return True

    @staticmethod
    def _setup_state(intent: Any) -> dict[str, Any]:
        intent = _plain(intent)
        action = intent.get("next_action") or {}
        micro = action.get("verify_with_microdeposits") or {}
        error = intent.get("last_setup_error") or {}
        method = intent.get("payment_method")
        return {
            "id": intent["id"],
            "status": intent["status"],
            "payment_method": method.get("id") if isinstance(method, dict) else method,
            "next_action": action.get("type"),
            "arrival_date": micro.get("arrival_date"),
            "microdeposit_type": micro.get("microdeposit_type"),
            "error_code": error.get("code"),
            "error_message": error.get("message"),
        }


def intent_result(intent: Any) -> IntentResult:
    """Reduce a PaymentIntent object to an IntentResult."""
    intent = _plain(intent)
    error = intent.get("last_payment_error") or {}
    next_action = intent.get("next_action") or {}
    charge = intent.get("latest_charge")
    return IntentResult(
        id=intent["id"],
        status=intent["status"],
        amount=intent.get("amount"),
        currency=intent.get("currency"),
        charge_id=charge if isinstance(charge, str) or charge is None else charge["id"],
        error_code=error.get("code"),
        decline_code=error.get("decline_code"),
        error_message=error.get("message"),
        next_action=next_action.get("type"),
        metadata=dict(intent.get("metadata") or {}),
        client_secret=intent.get("client_secret"),
    )


def _plain(obj: Any) -> dict[str, Any]:
    """SDK objects are not dicts; everything past this module sees plain ones."""
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _declined(exc: stripe.CardError) -> IntentResult:
    error = (exc.json_body or {}).get("error", {})
    intent = error.get("payment_intent") or {}
    return IntentResult(
        id=intent.get("id"),
        status=intent.get("status", "requires_payment_method"),
        amount=intent.get("amount"),
        currency=intent.get("currency"),
        error_code=error.get("code") or exc.code,
        decline_code=error.get("decline_code"),
        error_message=error.get("message") or exc.user_message,
        metadata=dict(intent.get("metadata") or {}),
    )


def method_details(pm: Any) -> MethodDetails:
    """Display data of a PaymentMethod object."""
    pm = _plain(pm)
    if pm["type"] == "card":
        card = pm["card"]
        return MethodDetails(
            id=pm["id"],
            kind="card",
            last4=card["last4"],
            brand=card.get("brand"),
            exp_month=card.get("exp_month"),
            exp_year=card.get("exp_year"),
        )
    bank = pm["us_bank_account"]
    return MethodDetails(
        id=pm["id"], kind="us_bank_account", last4=bank["last4"], bank_name=bank.get("bank_name")
    )


def payment_intent_params(
    *,
    payment_id: int,
    account_id: int,
    amount_minor: int,
    currency: str,
    customer_id: str,
    payment_method: str,
    method_kind: str,
    off_session: bool,
    mandate: Mandate | None,
    save_method: bool = False,
) -> dict[str, Any]:
    """Create-and-confirm parameters; built only from our rows, so every retry sends the same ones."""
    params: dict[str, Any] = {
        "amount": amount_minor,
        "currency": currency,
        "customer": customer_id,
        "payment_method": payment_method,
        "payment_method_types": [method_kind],
        "confirm": True,
        "metadata": {"payment_id": str(payment_id), "account_id": str(account_id)},
    }
    if method_kind == "card" and off_session:
        params["off_session"] = True
    if method_kind == "us_bank_account" and mandate is not None:
        params["mandate_data"] = mandate_data(mandate)
    if save_method:
        # Stripe attaches the method to the customer once the payment is confirmed, for later off-session use.
        params["setup_future_usage"] = "off_session"
    return params


def mandate_data(mandate: Mandate) -> dict[str, Any]:
    """The ACH mandate as Stripe takes it, the same on a SetupIntent and a PaymentIntent."""
    online = {"ip_address": mandate.ip_address, "user_agent": mandate.user_agent}
    return {"customer_acceptance": {"type": "online", "accepted_at": mandate.accepted_at, "online": online}}


# Stripe's own default: only old timestamps are rejected, to limit replays of captured deliveries.
WEBHOOK_TOLERANCE_SECONDS = 300


def verify_webhook(
    payload: bytes, header: str | None, secrets: tuple[str, ...], tolerance_s: int = WEBHOOK_TOLERANCE_SECONDS
) -> None:
    """Raise SignatureInvalid unless some v1 signature matches some secret within the tolerance."""
    if not header:
        raise SignatureInvalid("missing Stripe-Signature header")
    text = payload.decode("utf-8", errors="replace")
    reasons = []
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(text, header, secret, tolerance=tolerance_s)
            return
        except stripe.SignatureVerificationError as exc:
            reasons.append(str(exc.user_message or exc))
    # A stale timestamp is only reported for a secret whose signature matched: the most useful reason.
    stale = [r for r in reasons if "Timestamp" in r]
    raise SignatureInvalid((stale or reasons or ["no secret configured"])[0])


def build_gateway(
    api_key: str,
    api_base: str,
    timeout_s: float,
    redis_url: str | None,
    limits: StripeLimits | float,
    network_retries: int = 1,
    limiter_namespace: str = "remit",
    deployment: str = "remit",
) -> StripeGateway:
    """A gateway whose one SDK retry reuses our key and the shared limiter when Redis is given.

    limits: Stripe's shape (global and per endpoint), or one number for every endpoint alike.
    """
    client = build_client(api_key, api_base, timeout_s, network_retries)
    limiter = build_limiter(redis_url, limits, limiter_namespace)
    return StripeGateway(client, limiter, deployment)


_override: list[StripeGateway] = []


@lru_cache(maxsize=1)
def _configured_gateway() -> StripeGateway:
    from workers.settings import get_settings

    s = get_settings()
    redis_url = s.broker_url if s.broker_kind == "redis" else None
    return build_gateway(
        s.stripe_api_key,
        s.stripe_api_base,
        s.stripe_timeout_seconds,
        redis_url,
        StripeLimits(
            s.stripe_requests_per_second,
            s.stripe_endpoint_requests_per_second,
            s.stripe_search_requests_per_second,
            dict(s.stripe_endpoint_limits),
        ),
        limiter_namespace=s.broker_namespace,
        deployment=s.deployment,
    )


def get_gateway() -> StripeGateway:
    """The gateway in use: the configured one, or the one a test or sandbox installed."""
    return _override[-1] if _override else _configured_gateway()


def use_gateway(gateway: StripeGateway | None) -> None:
    """Install (or with None, remove) a gateway in place of the configured one."""
    _override.clear()
    if gateway is not None:
        _override.append(gateway)
