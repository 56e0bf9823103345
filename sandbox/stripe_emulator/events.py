"""`/v1/events`: retrieve and list with the `type`, `types[]`, `created` and `delivery_success` filters."""

from fnmatch import fnmatchcase

from .forms import as_bool, as_list
from .listing import page


def retrieve(state, call):
    """GET /v1/events/{id}."""
    return state.store.get("event", call.args[0])


def list_events(state, call):
    """GET /v1/events."""
    params = call.params
    wanted = as_list(params, "types") or ([params["type"]] if params.get("type") else [])
    events = [e for e in state.store.all("event") if _type_matches(e["type"], wanted)]
    if params.get("delivery_success") not in (None, ""):
        success = as_bool(params, "delivery_success")
        events = [e for e in events if _delivered(state, e) == success]
    return page(events, params, "/v1/events", state.store)


def _type_matches(event_type, wanted):
    # Stripe accepts `*` wildcards such as `payment_intent.*` in type filters.
    return not wanted or any(fnmatchcase(event_type, pattern) for pattern in wanted)


def _delivered(state, event):
    return not state.store.hidden(event["id"]).get("undelivered", False)
