"""`/v1/refunds`: full and partial refunds; bank refunds settle later, `pm_card_refundFail` ones fail."""

from .errors import invalid, missing_param
from .forms import as_int, merge_metadata
from .listing import page
from .payment_methods import behaviour_of


def create(state, call):
    """POST /v1/refunds."""
    params = call.params
    charge = _charge_for(state, params)
    _check_not_charged_back(state, charge)
    remaining = charge["amount"] - charge["amount_refunded"]
    amount = as_int(params, "amount", remaining)
    _check_amount(charge, amount, remaining)
    method = state.store.get("payment_method", charge["payment_method"])
    refund = {
        "object": "refund",
        "amount": amount,
        "charge": charge["id"],
        "currency": charge["currency"],
        "payment_intent": charge["payment_intent"],
        "reason": params.get("reason") or None,
        "metadata": merge_metadata({}, params.get("metadata")),
        "created": state.now(),
        "status": _initial_status(state, method),
        "failure_reason": None,
        "balance_transaction": None,
    }
    state.store.add("refund", refund)
    if refund["status"] == "pending":
        state.store.timers[refund["id"]] = state.now() + state.ach_settle_after_seconds
    previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] == charge["amount"]
    state.emit("refund.created", refund)
    state.emit("charge.refunded", charge, previous)
    return refund


def _charge_for(state, params):
    if params.get("charge"):
        return state.store.get("charge", params["charge"], "charge")
    if not params.get("payment_intent"):
        raise missing_param("payment_intent")
    intent = state.store.get("payment_intent", params["payment_intent"], "payment_intent")
    if not intent["latest_charge"]:
        raise invalid(
            f"This PaymentIntent ({intent['id']}) does not have a successful charge to refund.",
            "payment_intent",
            "charge_not_refundable",
        )
    return state.store.get("charge", intent["latest_charge"])


def _check_not_charged_back(state, charge):
    """A charge under a dispute that no longer allows a refund is refused, as Stripe does."""
    for dispute in state.store.all("dispute"):
        if dispute["charge"] == charge["id"] and not dispute["is_charge_refundable"]:
            raise invalid(
                f"Charge {charge['id']} has been charged back; cannot issue a refund.",
                "charge",
                "charge_disputed",
            )


def _check_amount(charge, amount, remaining):
    if charge["status"] != "succeeded":
        raise invalid(
            f"Charge {charge['id']} cannot be refunded while it is {charge['status']}.",
            "charge",
            "charge_not_refundable",
        )
    if remaining <= 0:
        raise invalid(
            f"Charge {charge['id']} has already been refunded.", "charge", "charge_already_refunded"
        )
    if amount < 1:
        raise invalid("This value must be greater than or equal to 1.", "amount", "parameter_invalid_integer")
    if amount > remaining:
        raise invalid(
            f"Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})",
            "amount",
            "amount_too_large",
        )


def _initial_status(state, method):
    behaviour = behaviour_of(state, method)
    if method["type"] == "us_bank_account" or behaviour["outcome"] == "refund_fails":
        return "pending"
    return "succeeded"


def settle(state, refund):
    """Finish a pending refund when the clock reaches it."""
    charge = state.store.get("charge", refund["charge"])
    method = state.store.get("payment_method", charge["payment_method"])
    previous = {"status": refund["status"]}
    if behaviour_of(state, method)["outcome"] == "refund_fails":
        refund.update(status="failed", failure_reason="expired_or_canceled_card")
        charge["amount_refunded"] -= refund["amount"]
        charge["refunded"] = False
        state.emit("refund.failed", refund, previous)
    else:
        refund["status"] = "succeeded"
    state.emit("refund.updated", refund, previous)


def retrieve(state, call):
    """GET /v1/refunds/{id}."""
    return state.store.get("refund", call.args[0])


def list_refunds(state, call):
    """GET /v1/refunds with `charge` and `payment_intent` filters."""
    refunds = [
        r
        for r in state.store.all("refund")
        if all(not call.params.get(k) or r[k] == call.params[k] for k in ("charge", "payment_intent"))
    ]
    return page(refunds, call.params, "/v1/refunds", state.store)
