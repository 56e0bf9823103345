"""Stripe-shaped API errors raised by resource handlers and turned into responses by the server."""


class StripeError(Exception):
    """An error answered with Stripe's status code and `{"error": {...}}` body."""

    def __init__(self, status, type_, message, code=None, param=None, stored=None, **extra):
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.code = code
        self.param = param
        self.extra = extra
        # Stripe keeps no idempotent result for requests rejected before the endpoint ran.
        self.stored = stored if stored is not None else type_ != "invalid_request_error"
        self.headers = {}

    def body(self):
        """The JSON-ready error body."""
        error = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param:
            error["param"] = self.param
        error.update(self.extra)
        return {"error": error}


def invalid(message, param=None, code=None, status=400, stored=False):
    """A validation failure, by default not stored for idempotency."""
    return StripeError(status, "invalid_request_error", message, code=code, param=param, stored=stored)


def missing_param(param):
    """A required parameter was not sent."""
    return invalid(f"Missing required param: {param}.", param, "parameter_missing")


def no_such(kind, object_id, param="id"):
    """The id names nothing the emulator knows: 404 for the URL's object, 400 for a parameter."""
    return invalid(
        f"No such {kind}: '{object_id}'", param, "resource_missing", status=404 if param == "id" else 400
    )


def unexpected_state(message, code="payment_intent_unexpected_state", **extra):
    """The object is not in a status that allows the operation."""
    error = invalid(message, None, code)
    error.extra.update(extra)
    return error


def rate_limited(code="rate_limit", retry=None):
    """A 429; `retry` sets Stripe-Should-Retry."""
    message = (
        "Too many requests hit the API too quickly."
        if code == "rate_limit"
        else (
            "This object cannot be accessed right now because another API request or Stripe process "
            "is currently accessing it."
        )
    )
    error = StripeError(429, "invalid_request_error", message, code=code, stored=False)
    if retry is not None:
        error.headers["Stripe-Should-Retry"] = "true" if retry else "false"
    return error


def api_error(message="An unknown error occurred while processing your request.", stored=False):
    """A 500 as Stripe answers it; stored when the endpoint had started (Stripe replays it for the key)."""
    return StripeError(500, "api_error", message, stored=stored)
