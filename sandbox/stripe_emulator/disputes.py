"""Disputes opened on settled payments, how they end, and `/v1/disputes`.

As in Stripe's test mode, evidence whose `uncategorized_text` is `winning_evidence` wins the dispute and
`losing_evidence` loses it; other evidence leaves it under review. Stripe closes a test dispute a few
moments after the evidence; the emulator closes it at once, sending the same events in the same order.
"""

from .errors import invalid
from .forms import as_bool, merge_metadata
from .ids import new_id
from .listing import page

# Reason Stripe gives when the bank reports a failure after the payment succeeded.
ACH_DISPUTE_REASON = "insufficient_funds"
CLOSED = ("won", "lost", "warning_closed", "charge_refunded")
# The text that decides a test dispute, as Stripe's test mode reads it.
OUTCOME_TEXT = {"winning_evidence": "won", "losing_evidence": "lost"}
# Evidence fields of the Dispute update endpoint (Stripe's OpenAPI spec); anything else is refused.
EVIDENCE_FIELDS = frozenset(
    (
        "access_activity_log billing_address cancellation_policy cancellation_policy_disclosure"
        " cancellation_rebuttal customer_communication customer_email_address customer_name"
        " customer_purchase_ip customer_signature duplicate_charge_documentation duplicate_charge_explanation"
        " duplicate_charge_id enhanced_evidence product_description receipt refund_policy"
        " refund_policy_disclosure refund_refusal_explanation service_date service_documentation"
        " shipping_address shipping_carrier shipping_date shipping_documentation shipping_tracking_number"
        " uncategorized_file uncategorized_text"
    ).split()
)
UPDATE_PARAMS = frozenset(("evidence", "metadata", "submit", "expand"))


def open_dispute(state, charge, reason, closed_status=None, inquiry=False):
    """Open a dispute on a charge: a chargeback takes the funds (funds_withdrawn), an inquiry does not.

    ACH disputes close at once as lost, since they cannot be contested.
    """
    dispute = {
        "object": "dispute",
        "amount": charge["amount"],
        "charge": charge["id"],
        "currency": charge["currency"],
        "payment_intent": charge["payment_intent"],
        "reason": reason,
        "status": "warning_needs_response" if inquiry else "needs_response",
        "created": state.now(),
        "evidence": {},
        "evidence_details": {"has_evidence": False, "submission_count": 0, "past_due": False},
        "is_charge_refundable": inquiry,
        "livemode": False,
        "metadata": {},
        "balance_transactions": [],
    }
    state.store.add("dispute", dispute)
    charge["disputed"] = True
    state.emit("charge.dispute.created", dispute)
    if not inquiry:
        _move_funds(state, dispute, -1)
    if closed_status:
        close(state, dispute, closed_status)
    return dispute


def _move_funds(state, dispute, sign):
    """A balance transaction for the disputed funds, and the event saying which way they went."""
    dispute["balance_transactions"].append(
        {
            "id": new_id("txn"),
            "object": "balance_transaction",
            "amount": sign * dispute["amount"],
            "currency": dispute["currency"],
            "created": state.now(),
            "reporting_category": "dispute" if sign < 0 else "dispute_reversal",
            "type": "adjustment",
        }
    )
    state.emit("charge.dispute.funds_withdrawn" if sign < 0 else "charge.dispute.funds_reinstated", dispute)


def close(state, dispute, status="lost"):
    """Close a dispute: `charge.dispute.closed`, then `funds_reinstated` when a chargeback was won."""
    previous = {"status": dispute["status"]}
    dispute["status"] = status
    dispute["is_charge_refundable"] = False
    state.emit("charge.dispute.closed", dispute, previous)
    if status == "won":
        _move_funds(state, dispute, +1)


def settle(state, dispute, outcome):
    """End a dispute the way its evidence decided: an inquiry closes, or escalates when lost."""
    if dispute["status"].startswith("warning_"):
        if outcome == "won":
            close(state, dispute, "warning_closed")
        else:
            _escalate(state, dispute)
        return
    close(state, dispute, outcome)


def _escalate(state, dispute):
    """An inquiry the seller could not answer becomes a chargeback: the funds are taken."""
    previous = {"status": dispute["status"], "is_charge_refundable": dispute["is_charge_refundable"]}
    dispute.update(status="needs_response", is_charge_refundable=False)
    state.emit("charge.dispute.updated", dispute, previous)
    _move_funds(state, dispute, -1)


def retrieve(state, call):
    """GET /v1/disputes/{id}."""
    return state.store.get("dispute", call.args[0])


def update(state, call):
    """POST /v1/disputes/{id}: add evidence (submitted unless submit=false) and metadata."""
    dispute = state.store.get("dispute", call.args[0])
    evidence = _check_update(call.params)
    if dispute["status"] in CLOSED:
        raise invalid("This dispute is already closed.", None, "dispute_already_closed")
    if evidence and dispute["status"].endswith("under_review"):
        raise invalid("The evidence for this dispute was already submitted.", "evidence")
    submit = as_bool(call.params, "submit", True)
    previous = {"status": dispute["status"], "evidence": dict(dispute["evidence"])}
    dispute["metadata"] = merge_metadata(dispute["metadata"], call.params.get("metadata"))
    dispute["evidence"].update(evidence)
    details = dispute["evidence_details"]
    details["has_evidence"] = bool(dispute["evidence"])
    if submit:
        details["submission_count"] += 1
        dispute["status"] = (
            "warning_under_review" if dispute["status"].startswith("warning_") else "under_review"
        )
    state.emit("charge.dispute.updated", dispute, previous)
    outcome = OUTCOME_TEXT.get(dispute["evidence"].get("uncategorized_text"))
    if submit and outcome:
        settle(state, dispute, outcome)
    return dispute


def _check_update(params):
    unknown = sorted(set(params) - UPDATE_PARAMS)
    if unknown:
        raise invalid(f"Received unknown parameter: {unknown[0]}", unknown[0], "parameter_unknown")
    evidence = params.get("evidence") or {}
    if not isinstance(evidence, dict):
        raise invalid("Invalid hash", "evidence", "parameter_invalid_hash")
    for name, value in evidence.items():
        if name not in EVIDENCE_FIELDS:
            raise invalid(
                f"Received unknown parameter: evidence[{name}]", f"evidence[{name}]", "parameter_unknown"
            )
        if not isinstance(value, str):
            raise invalid(f"Invalid string: {value}", f"evidence[{name}]", "parameter_invalid_string")
    return evidence


def accept(state, call):
    """POST /v1/disputes/{id}/close: accept the dispute, which loses it (an inquiry just closes)."""
    dispute = state.store.get("dispute", call.args[0])
    if dispute["status"] in CLOSED:
        raise invalid("This dispute is already closed.", None, "dispute_already_closed")
    close(state, dispute, "warning_closed" if dispute["status"].startswith("warning_") else "lost")
    return dispute


def list_disputes(state, call):
    """GET /v1/disputes with `charge` and `payment_intent` filters."""
    disputes = [
        d
        for d in state.store.all("dispute")
        if all(not call.params.get(k) or d[k] == call.params[k] for k in ("charge", "payment_intent"))
    ]
    return page(disputes, call.params, "/v1/disputes", state.store)
