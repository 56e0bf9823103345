"""Queue `ach`: sending a customer's edit of a saved method (billing details, card expiry) to Stripe."""

from __future__ import annotations

import logging
from datetime import datetime

from db.queries import RowMissing
from db.queries import methods as method_rows
from db.session import transaction
from tasks.domain import method_edits as rules
from tasks.domain.errors import StripeRefused
from tasks.domain.states import MethodStatus
from tasks.gateways.stripe import get_gateway

_log = logging.getLogger(__name__)


def push_method_update(method_id: int, version: int, now: datetime) -> str:
    """Send edit number version of the method to Stripe once; a later edit sends everything instead.

    A refusal is recorded on the method (verification_error) for the portal to show; the edit stays
    as the customer made it.
    """
    with transaction() as session:
        method = method_rows.find_method(session, method_id)
        if method is None:
            raise RowMissing(f"payment method {method_id} does not exist")
        if method.update_version != version:
            return "nothing to do: a later edit sends the method's details"
        if method.status != MethodStatus.ACTIVE:
            return f"nothing to do: method is {method.status}"
        params = rules.stripe_update(method.kind, method.billing_details, method.exp_month, method.exp_year)
        stripe_id = method.stripe_payment_method_id
    try:
        get_gateway().update_payment_method(
            stripe_id, params, idempotency_key=rules.update_key(method_id, version)
        )
    except StripeRefused as refused:
        return _record_refusal(method_id, version, refused.message)
    return "updated"


def _record_refusal(method_id: int, version: int, message: str) -> str:
    with transaction() as session:
        method = method_rows.lock_method(session, method_id)
        if method is not None and method.update_version == version:
            method.verification_error = f"Stripe refused the last change: {message}"
    _log.warning("payment method %s: Stripe refused edit %s: %s", method_id, version, message)
    return f"refused: {message}"
