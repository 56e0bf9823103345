"""The ops dashboard as a plain WSGI app: overview, dead letters with retry, payments, metrics, health.

Every page needs DASHBOARD_TOKEN, as `Authorization: Bearer <token>` or through the login form's
session cookie; /metrics takes the same Bearer token (Prometheus: `authorization: {credentials: ...}`).
Only /healthz is open. Without a token configured every path answers 503: never an open dashboard.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import text as sql
from sqlalchemy.orm import Session, sessionmaker

from db.queries import dashboard as dashboard_rows
from tasks.domain.states import FailedJobStatus, PaymentStatus
from workers.dashboard.actions import FLASHES, Outcome, discard_failed_job, retry_failed_job
from workers.dashboard.auth import Auth, session_cookie
from workers.dashboard.http import Request, Response, StartResponse, redirect, text
from workers.dashboard.metrics import render_metrics
from workers.dashboard.overview import build_overview, queue_alert
from workers.dashboard.templates import render

WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
NOT_CONFIGURED = (
    "The ops dashboard is disabled: DASHBOARD_TOKEN is not set. "
    "Set it (at least 16 characters) and restart; the dashboard never runs without a token.\n"
)
# The age filter's choices on /payments, in seconds.
AGE_CHOICES = {
    "": "any age",
    "300": "over 5 minutes",
    "3600": "over 1 hour",
    "86400": "over 1 day",
    "604800": "over 7 days",
}


def make_app(
    token: str | None,
    sessions: sessionmaker[Session],
    broker,
    queues: tuple[str, ...],
    clock: Callable[[], datetime] | None = None,
) -> WSGIApp:
    """The dashboard for one token, database and broker; a 503-only app when token is None."""
    if not token:
        return _not_configured
    return Dashboard(Auth(token), sessions, broker, queues, clock or (lambda: datetime.now(UTC)))


def _not_configured(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    return text(503, NOT_CONFIGURED)(start_response)


class Dashboard:
    """Routes a request to a page once it is authenticated; POSTs also need the session's CSRF token."""

    def __init__(self, auth: Auth, sessions, broker, queues, clock) -> None:
        self.auth, self.sessions, self.broker, self.queues, self.clock = auth, sessions, broker, queues, clock
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., Response]]] = [
            ("GET", re.compile(r"/"), self.overview),
            ("GET", re.compile(r"/failed"), self.failed_list),
            ("GET", re.compile(r"/failed/(\d+)"), self.failed_detail),
            ("POST", re.compile(r"/failed/(\d+)/retry"), self.failed_retry),
            ("POST", re.compile(r"/failed/(\d+)/discard"), self.failed_discard),
            ("GET", re.compile(r"/payments"), self.payment_list),
            ("GET", re.compile(r"/payments/(\d+)"), self.payment_detail),
            ("GET", re.compile(r"/metrics"), self.metrics),
            ("POST", re.compile(r"/logout"), self.logout),
        ]

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        return self.respond(Request.from_environ(environ))(start_response)

    def respond(self, request: Request) -> Response:
        if request.path == "/healthz":
            return self.health()
        if request.path == "/login":
            return self.login(request)
        subject = self.auth.subject(request)
        if subject is None:
            return self.unauthorized(request)
        for method, pattern, handler in self.routes:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            if request.method != method and not (method == "GET" and request.method == "HEAD"):
                return text(405, f"{method} only\n")
            if method == "POST" and not self.auth.csrf_valid(subject, request.form.get("csrf", "")):
                return text(403, "Missing or wrong CSRF token: reload the page and try again.\n")
            return handler(request, subject, *(int(g) for g in match.groups()))
        return self.page(404, "message.html", None, title="Not found", message="No such page.")

    def page(self, status: int, template: str, subject: str | None, **context: Any) -> Response:
        csrf = self.auth.csrf_token(subject) if subject else ""
        return Response(
            status, render(template, csrf=csrf, signed_in=subject is not None, **context).encode()
        )

    # -- authentication -------------------------------------------------------------------------

    def unauthorized(self, request: Request) -> Response:
        if request.path == "/metrics" or request.headers.get("authorization"):
            response = text(401, "A valid DASHBOARD_TOKEN is required (Authorization: Bearer <token>).\n")
        else:
            response = self.page(401, "login.html", None, title="Sign in", error="")
        response.headers.append(("WWW-Authenticate", 'Bearer realm="remit-dashboard"'))
        return response

    def login(self, request: Request) -> Response:
        if request.method == "GET":
            return self.page(200, "login.html", None, title="Sign in", error="")
        if request.method != "POST":
            return text(405, "GET or POST only\n")
        if not self.auth.token_matches(request.form.get("token", "")):
            return self.page(401, "login.html", None, title="Sign in", error="That token is not right.")
        response = redirect("/")
        response.headers.append(
            ("Set-Cookie", session_cookie(self.auth.new_session(), secure=request.secure))
        )
        return response

    def logout(self, request: Request, subject: str) -> Response:
        response = redirect("/login")
        response.headers.append(("Set-Cookie", session_cookie("", secure=request.secure, max_age=0)))
        return response

    # -- pages ------------------------------------------------------------------------------------

    def overview(self, request: Request, subject: str) -> Response:
        with self.sessions() as session:
            overview = build_overview(session, self.broker, self.queues, self.clock())
        return self.page(200, "overview.html", subject, title="Overview", o=overview, queue_alert=queue_alert)

    def failed_list(self, request: Request, subject: str) -> Response:
        filters = {k: request.query.get(k, "").strip() for k in ("queue", "actor", "status")}
        with self.sessions() as session:
            page = dashboard_rows.list_failed_jobs(session, page=_page(request), **filters)
            return self.page(
                200,
                "failed_list.html",
                subject,
                title="Dead letters",
                jobs=page,
                filters=filters,
                queues=self.queues,
                statuses=[s.value for s in FailedJobStatus],
                link=_pager(filters),
            )

    def failed_detail(self, request: Request, subject: str, job_id: int) -> Response:
        with self.sessions() as session:
            job = dashboard_rows.find_failed_job(session, job_id)
            if job is None:
                return self.page(
                    404, "message.html", subject, title="Not found", message="No such failed job."
                )
            return self.page(
                200,
                "failed_detail.html",
                subject,
                title=f"Failed job {job_id}",
                job=job,
                flash=_flash(request),
            )

    def failed_retry(self, request: Request, subject: str, job_id: int) -> Response:
        return self._after(job_id, retry_failed_job(self.sessions, self.broker, job_id, self.clock()))

    def failed_discard(self, request: Request, subject: str, job_id: int) -> Response:
        return self._after(job_id, discard_failed_job(self.sessions, job_id))

    def _after(self, job_id: int, outcome: Outcome) -> Response:
        return redirect(
            "/failed" if outcome == Outcome.NOT_FOUND else f"/failed/{job_id}", done=outcome.value
        )

    def payment_list(self, request: Request, subject: str) -> Response:
        filters = {
            "status": request.query.get("status", "").strip(),
            "account": request.query.get("account", "").strip(),
            "older_than": request.query.get("older_than", "").strip(),
        }
        older_than = int(filters["older_than"]) if filters["older_than"].isdecimal() else 0
        now = self.clock()
        with self.sessions() as session:
            page = dashboard_rows.list_payments(
                session,
                now,
                status=filters["status"],
                account_number=filters["account"],
                older_than_seconds=older_than,
                page=_page(request),
            )
            return self.page(
                200,
                "payments.html",
                subject,
                title="Payments",
                payments=page,
                filters=filters,
                statuses=[s.value for s in PaymentStatus],
                ages=AGE_CHOICES,
                now=now,
                link=_pager(filters),
            )

    def payment_detail(self, request: Request, subject: str, payment_id: int) -> Response:
        with self.sessions() as session:
            detail = dashboard_rows.find_payment_detail(session, payment_id)
            if detail is None:
                return self.page(404, "message.html", subject, title="Not found", message="No such payment.")
            return self.page(
                200, "payment_detail.html", subject, title=f"Payment {payment_id}", d=detail, now=self.clock()
            )

    def metrics(self, request: Request, subject: str) -> Response:
        with self.sessions() as session:
            overview = build_overview(session, self.broker, self.queues, self.clock())
        return text(200, render_metrics(overview), "text/plain; version=0.0.4; charset=utf-8")

    def health(self) -> Response:
        problems = []
        try:
            with self.sessions() as session:
                session.execute(sql("SELECT 1"))
        except Exception as exc:  # any failure to answer is "not healthy"; the reason goes in the body
            problems.append(f"database: {type(exc).__name__}")
        client = getattr(self.broker, "client", None)
        try:
            if client is not None:
                client.ping()
        except Exception as exc:  # as above, for Redis
            problems.append(f"redis: {type(exc).__name__}")
        return text(503, "unhealthy: " + "; ".join(problems) + "\n") if problems else text(200, "ok\n")


def _page(request: Request) -> int:
    raw = request.query.get("page", "1")
    return max(int(raw), 1) if raw.isdecimal() else 1


def _pager(filters: dict[str, str]) -> Callable[[int], str]:
    kept = {k: v for k, v in filters.items() if v}
    return lambda page: "?" + urlencode({**kept, "page": page})


def _flash(request: Request) -> str:
    try:
        return FLASHES[Outcome(request.query.get("done", ""))]
    except ValueError:  # no flash, or one we never send
        return ""


@lru_cache(maxsize=1)
def _default_app() -> WSGIApp:
    from db.session import get_sessionmaker
    from workers.broker import QUEUES
    from workers.settings import get_settings

    token = get_settings().dashboard_token
    if not token:
        return _not_configured
    from workers import actors  # noqa: F401  (declares every actor, so any dead letter can be retried)
    from workers.broker import broker

    return make_app(token, get_sessionmaker(), broker, QUEUES)


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The process-wide dashboard, built from settings on the first request."""
    return _default_app()(environ, start_response)
