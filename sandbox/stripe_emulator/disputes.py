"""Disputes opened on settled payments, and `/v1/disputes`."""

from .errors import invalid
from .listing import page

# Reason Stripe gives when the bank reports a failure after the payment succeeded.
ACH_DISPUTE_REASON = "insufficient_funds"


def open_dispute(state, charge, reason, closed_status=None):
    """Open a dispute on a charge; ACH disputes close at once as lost, since they cannot be contested."""
    dispute = {
        "object": "dispute",
        "amount": charge["amount"],
        "charge": charge["id"],
        "currency": charge["currency"],
        "payment_intent": charge["payment_intent"],
        "reason": reason,
        "status": "needs_response",
        "created": state.now(),
        "evidence": {},
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "balance_transactions": [],
    }
    state.store.add("dispute", dispute)
    charge["disputed"] = True
    state.emit("charge.dispute.created", dispute)
    if closed_status:
        close(state, dispute, closed_status)
    return dispute


def close(state, dispute, status="lost"):
    """Close a dispute and emit `charge.dispute.closed`."""
    previous = {"status": dispute["status"]}
    dispute["status"] = status
    state.emit("charge.dispute.closed", dispute, previous)


def retrieve(state, call):
    """GET /v1/disputes/{id}."""
    return state.store.get("dispute", call.args[0])


def accept(state, call):
    """POST /v1/disputes/{id}/close: accept the dispute, which loses it."""
    dispute = state.store.get("dispute", call.args[0])
    if dispute["status"] in ("won", "lost"):
        raise invalid("This dispute is already closed.", None, "dispute_already_closed")
    close(state, dispute, "lost")
    return dispute


def list_disputes(state, call):
    """GET /v1/disputes with `charge` and `payment_intent` filters."""
    disputes = [
        d
        for d in state.store.all("dispute")
        if all(not call.params.get(k) or d[k] == call.params[k] for k in ("charge", "payment_intent"))
    ]
    return page(disputes, call.params, "/v1/disputes", state.store)
