"""Finding things: the search box, payments, the webhook inbox and the email outbox, with their actions."""

from __future__ import annotations

from urllib.parse import urlencode

from jinja2 import TemplateError

from db.queries import dashboard as dashboard_rows
from db.queries import search as search_rows
from emails import UnknownEmailKind, render
from tasks.domain.states import EmailStatus, EventStatus, PaymentStatus
from tasks.flows import ops
from workers.dashboard.http import PREVIEW_CSP, Request, Response, redirect
from workers.dashboard.links import stripe_link
from workers.dashboard.params import BadParameter, choice_filter, page_number, text_filter

# The age filter's choices on /payments, in seconds.
AGE_CHOICES = {
    "": "any age",
    "300": "over 5 minutes",
    "3600": "over 1 hour",
    "86400": "over 1 day",
    "604800": "over 7 days",
}
# A Stripe event id as Stripe writes them; anything else in /events/<id> is a 404 before any query.
EVENT_ID = r"(evt_[A-Za-z0-9_]{1,200})"
# Where a search hit's kind leads.
HIT_PAGES = {
    "payment": "/payments/{}",
    "event": "/events/{}",
    "emails": "/emails?recipient={}",
    "account": "/payments?account={}",
}
FLASHES = {
    ops.Done.DONE: "Done.",
    ops.Done.NOT_NEEDED: "Nothing to do: it is not in a state this action changes.",
    ops.Done.NOT_FOUND: "No such row.",
    ops.Done.UNAVAILABLE: "Not possible here: what the chargeback reversed is not known apart from a"
    " refund's; re-apply this money by hand.",
}


def search(dash, request: Request, subject) -> Response:
    """One box for any id: a single hit is opened, several are listed."""
    term = text_filter(request.query, "q")
    if not term:
        return redirect("/")
    with dash.sessions() as session:
        hits = search_rows.find_anything(session, term)
    links = [(HIT_PAGES[h.kind].format(_quoted(h.key)), h.label) for h in hits]
    if len(links) == 1:
        return redirect(links[0][0])
    status = 200 if links else 404
    return dash.page(status, "search.html", subject, title=f"Search: {term}", links=links, search=term)


def _quoted(key: str) -> str:
    return urlencode({"": key})[1:]


def payment_list(dash, request: Request, subject) -> Response:
    statuses = [s.value for s in PaymentStatus]
    filters = {
        "status": choice_filter(request.query, "status", statuses),
        "account": text_filter(request.query, "account"),
        "older_than": choice_filter(request.query, "older_than", AGE_CHOICES),
    }
    wanted = page_number(request.query)
    now = dash.clock()
    with dash.sessions() as session:
        page = dashboard_rows.list_payments(
            session,
            now,
            status=filters["status"],
            account_number=filters["account"],
            older_than_seconds=int(filters["older_than"] or 0),
            page=wanted,
        )
        return dash.page(
            200,
            "payments.html",
            subject,
            title="Payments",
            payments=page,
            filters=filters,
            statuses=statuses,
            ages=AGE_CHOICES,
            now=now,
            link=pager(filters),
        )


def payment_detail(dash, request: Request, subject, payment_id: int) -> Response:
    with dash.sessions() as session:
        detail = dashboard_rows.find_payment_detail(session, payment_id)
        if detail is None:
            return dash.not_found(subject, "No such payment.")
        return dash.page(
            200,
            "payment_detail.html",
            subject,
            title=f"Payment {payment_id}",
            d=detail,
            now=dash.clock(),
            flash=_flash(request),
            stripe_url=stripe_link(detail.payment.stripe_payment_intent_id, dash.stripe_livemode),
        )


def event_list(dash, request: Request, subject) -> Response:
    filters = {
        "status": choice_filter(request.query, "status", [s.value for s in EventStatus]),
        "type": text_filter(request.query, "type"),
    }
    with dash.sessions() as session:
        page = dashboard_rows.list_events(
            session, status=filters["status"], type_=filters["type"], page=page_number(request.query)
        )
        return dash.page(
            200,
            "events.html",
            subject,
            title="Webhook inbox",
            events=page,
            filters=filters,
            statuses=[s.value for s in EventStatus],
            link=pager(filters),
        )


def event_detail(dash, request: Request, subject, event_id: str) -> Response:
    with dash.sessions() as session:
        event = dashboard_rows.find_event(session, event_id)
        if event is None:
            return dash.not_found(subject, "No such Stripe event.")
        payment_id = search_rows.find_payment_of_event(session, event.payload)
        return dash.page(
            200,
            "event_detail.html",
            subject,
            title=f"Stripe event {event_id}",
            e=event,
            payment_id=payment_id,
            flash=_flash(request),
        )


def event_reprocess(dash, request: Request, subject, event_id: str) -> Response:
    done = ops.reprocess_event(event_id, subject.operator.name, dash.clock())
    if done == ops.Done.NOT_FOUND:
        return dash.not_found(subject, "No such Stripe event.")
    return redirect(f"/events/{event_id}", done=done.value)


def email_list(dash, request: Request, subject) -> Response:
    filters = {
        "status": choice_filter(request.query, "status", [s.value for s in EmailStatus]),
        "recipient": text_filter(request.query, "recipient"),
    }
    with dash.sessions() as session:
        page = dashboard_rows.list_emails(
            session, status=filters["status"], recipient=filters["recipient"], page=page_number(request.query)
        )
        return dash.page(
            200,
            "emails.html",
            subject,
            title="Email outbox",
            emails=page,
            filters=filters,
            statuses=[s.value for s in EmailStatus],
            link=pager(filters),
        )


def email_detail(dash, request: Request, subject, email_id: int) -> Response:
    with dash.sessions() as session:
        email = dashboard_rows.find_email(session, email_id)
        if email is None:
            return dash.not_found(subject, "No such email.")
        rendered, problem = _rendered(email)
        return dash.page(
            200,
            "email_detail.html",
            subject,
            title=f"Email {email_id}",
            m=email,
            rendered=rendered,
            problem=problem,
            flash=_flash(request),
        )


def email_preview(dash, request: Request, subject, email_id: int) -> Response:
    """The email's HTML as the customer's mail client gets it, under a CSP that runs and loads nothing."""
    with dash.sessions() as session:
        email = dashboard_rows.find_email(session, email_id)
        if email is None:
            return dash.not_found(subject, "No such email.")
        rendered, problem = _rendered(email)
    if rendered is None:
        raise BadParameter(f"This email cannot be rendered: {problem}")
    return Response(200, rendered.html.encode(), csp=PREVIEW_CSP)


def _rendered(email):
    try:
        return render(email.kind, email.context), ""
    except (UnknownEmailKind, TemplateError) as problem:  # redacted contexts no longer render
        return None, f"{type(problem).__name__}: {problem}"


def email_resend(dash, request: Request, subject, email_id: int) -> Response:
    done = ops.resend_email(email_id, subject.operator.name, dash.clock())
    if done == ops.Done.NOT_FOUND:
        return dash.not_found(subject, "No such email.")
    return redirect(f"/emails/{email_id}", done=done.value)


def _flash(request: Request) -> str:
    try:
        return FLASHES[ops.Done(request.query.get("done", ""))]
    except ValueError:  # no flash, or one we never send
        return ""


def pager(filters: dict[str, str]):
    kept = {k: v for k, v in filters.items() if v}
    return lambda page: "?" + urlencode({**kept, "page": page})


ROUTES = [
    ("GET", r"/search", search),
    ("GET", r"/payments", payment_list),
    ("GET", r"/payments/([0-9]+)", payment_detail),
    ("GET", r"/events", event_list),
    ("GET", "/events/" + EVENT_ID, event_detail),
    ("POST", "/events/" + EVENT_ID + "/reprocess", event_reprocess),
    ("GET", r"/emails", email_list),
    ("GET", r"/emails/([0-9]+)", email_detail),
    ("GET", r"/emails/([0-9]+)/preview", email_preview),
    ("POST", r"/emails/([0-9]+)/resend", email_resend),
]
