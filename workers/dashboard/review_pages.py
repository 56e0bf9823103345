"""The review queue (payments flagged needs_review) with its resolutions, and the audit log."""

from __future__ import annotations

from urllib.parse import urlencode

from db.queries import audit as audit_rows
from db.queries import dashboard as dashboard_rows
from tasks.flows import ops
from workers.dashboard.http import Request, Response, redirect
from workers.dashboard.links import stripe_link
from workers.dashboard.params import BadParameter, page_number, text_filter

AUDIT_PAGE_SIZE = 50


def review_list(dash, request: Request, subject) -> Response:
    now = dash.clock()
    with dash.sessions() as session:
        page = dashboard_rows.list_payments(session, now, needs_review=True, page=page_number(request.query))
        return dash.page(
            200,
            "review.html",
            subject,
            title="Review queue",
            payments=page,
            now=now,
            link=lambda n: "?" + urlencode({"page": n}),
            stripe_link=lambda p: stripe_link(p.stripe_payment_intent_id, dash.stripe_livemode),
        )


def resolve(dash, request: Request, subject, payment_id: int) -> Response:
    note = text_filter(request.form, "note")
    if not note:
        raise BadParameter("note is required: say what was checked or done.")
    done = ops.resolve_review(payment_id, subject.operator.name, note, dash.clock())
    return _after(dash, subject, payment_id, done)


def reinstate(dash, request: Request, subject, payment_id: int) -> Response:
    done = ops.reinstate_won_dispute(payment_id, subject.operator.name, dash.clock())
    return _after(dash, subject, payment_id, done)


def _after(dash, subject, payment_id: int, done: ops.Done) -> Response:
    if done == ops.Done.NOT_FOUND:
        return dash.not_found(subject, "No such payment.")
    return redirect(f"/payments/{payment_id}", done=done.value)


def audit_log(dash, request: Request, subject) -> Response:
    operator = text_filter(request.query, "operator")
    page = page_number(request.query)
    with dash.sessions() as session:
        entries, total = audit_rows.list_audit_entries(
            session, operator=operator, offset=(page - 1) * AUDIT_PAGE_SIZE, limit=AUDIT_PAGE_SIZE
        )
        return dash.page(
            200,
            "audit.html",
            subject,
            title="Audit log",
            entries=entries,
            total=total,
            operator_filter=operator,
            page_no=page,
            pages=max((total + AUDIT_PAGE_SIZE - 1) // AUDIT_PAGE_SIZE, 1),
        )


ROUTES = [
    ("GET", r"/review", review_list),
    ("POST", r"/payments/([0-9]+)/resolve", resolve),
    ("POST", r"/payments/([0-9]+)/reinstate", reinstate),
    ("GET", r"/audit", audit_log),
]
