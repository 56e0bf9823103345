"""The ops dashboard as a plain WSGI app: overview, dead letters with retry, payments, metrics, health.

Every page needs DASHBOARD_TOKEN, as `Authorization: Bearer <token>` or through the login form's
session cookie; /metrics takes the same Bearer token (Prometheus: `authorization: {credentials: ...}`).
Only /healthz is open. Without a token configured every path answers 503: never an open dashboard.
Sessions and failed sign-ins live in the broker's Redis (workers/dashboard/state.py), so every
dashboard process honours a logout and counts the same guesses.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from redis.exceptions import RedisError
from sqlalchemy import text as sql
from sqlalchemy.orm import Session, sessionmaker

from db.queries import dashboard as dashboard_rows
from tasks.domain.states import FailedJobStatus, PaymentStatus
from workers.dashboard.actions import FLASHES, Outcome, discard_failed_job, retry_failed_job
from workers.dashboard.auth import BEARER_SUBJECT, Auth, Throttle, session_cookie
from workers.dashboard.http import Request, Response, StartResponse, redirect, text
from workers.dashboard.metrics import render_metrics
from workers.dashboard.overview import build_overview, queue_alert
from workers.dashboard.params import BadParameter, choice_filter, page_number, path_id, text_filter
from workers.dashboard.state import state_for
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
# A year, the usual max-age; sent only when DASHBOARD_HTTPS says the dashboard is served over HTTPS.
HSTS = ("Strict-Transport-Security", "max-age=31536000")


def make_app(
    token: str | None,
    sessions: sessionmaker[Session],
    broker,
    queues: tuple[str, ...],
    clock: Callable[[], datetime] | None = None,
    *,
    https: bool = True,
) -> WSGIApp:
    """The dashboard for one token, database and broker; a 503-only app when token is None.

    https (DASHBOARD_HTTPS) marks the session cookie Secure and sends HSTS; no request header changes it.
    """
    if not token:
        return _not_configured
    state = state_for(broker)
    now = clock or (lambda: datetime.now(UTC))
    return Dashboard(Auth(token, state), Throttle(state), https, sessions, broker, queues, now)


def _not_configured(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    return text(503, NOT_CONFIGURED)(start_response)


class Dashboard:
    """Routes a request to a page once it is authenticated; POSTs also need the session's CSRF token."""

    def __init__(self, auth: Auth, throttle: Throttle, https: bool, sessions, broker, queues, clock) -> None:
        self.auth, self.throttle, self.https = auth, throttle, https
        self.sessions, self.broker, self.queues, self.clock = sessions, broker, queues, clock
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., Response]]] = [
            ("GET", re.compile(r"/"), self.overview),
            ("GET", re.compile(r"/failed"), self.failed_list),
            ("GET", re.compile(r"/failed/([0-9]+)"), self.failed_detail),
            ("POST", re.compile(r"/failed/([0-9]+)/retry"), self.failed_retry),
            ("POST", re.compile(r"/failed/([0-9]+)/discard"), self.failed_discard),
            ("GET", re.compile(r"/payments"), self.payment_list),
            ("GET", re.compile(r"/payments/([0-9]+)"), self.payment_detail),
            ("GET", re.compile(r"/metrics"), self.metrics),
            ("POST", re.compile(r"/logout"), self.logout),
        ]

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        response = self.respond(Request.from_environ(environ))
        if self.https:
            response.headers.append(HSTS)
        return response(start_response)

    def respond(self, request: Request) -> Response:
        if request.path == "/healthz":
            return self.health()
        if request.path == "/login":
            return self.login(request)
        subject = self.authenticate(request)
        if isinstance(subject, Response):
            return subject
        try:
            return self.route(request, subject)
        except BadParameter as bad:
            return self.page(400, "message.html", subject, title="Bad request", message=str(bad))

    def route(self, request: Request, subject: str) -> Response:
        for method, pattern, handler in self.routes:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            if request.method != method and not (method == "GET" and request.method == "HEAD"):
                return text(405, f"{method} only\n")
            if method == "POST" and not self.auth.csrf_valid(subject, request.form.get("csrf", "")):
                return text(403, "Missing or wrong CSRF token: reload the page and try again.\n")
            ids = [path_id(g) for g in match.groups()]
            if None in ids:
                break
            return handler(request, subject, *ids)
        return self.page(404, "message.html", None, title="Not found", message="No such page.")

    def page(self, status: int, template: str, subject: str | None, **context: Any) -> Response:
        csrf = self.auth.csrf_token(subject) if subject else ""
        return Response(
            status, render(template, csrf=csrf, signed_in=subject is not None, **context).encode()
        )

    # -- authentication -------------------------------------------------------------------------

    def authenticate(self, request: Request) -> str | Response:
        """The subject (session cookie or "bearer"), or the answer that refuses the request."""
        offered = self.auth.bearer(request)
        if offered is None:
            return self.auth.session(request) or self.unauthorized(request)
        if wait := self.throttle.wait_seconds(request.address):
            return _throttled(wait)
        if self.auth.token_matches(offered):
            return BEARER_SUBJECT
        self.throttle.failed(request.address)
        return self.unauthorized(request)

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
        if wait := self.throttle.wait_seconds(request.address):
            return _throttled(wait)
        if not self.auth.token_matches(request.form.get("token", "")):
            self.throttle.failed(request.address)
            return self.page(401, "login.html", None, title="Sign in", error="That token is not right.")
        try:
            cookie = self.auth.new_session()
        except RedisError:
            return text(
                503, "Sign-in needs Redis, which did not answer; use Authorization: Bearer meanwhile.\n"
            )
        response = redirect("/")
        response.headers.append(("Set-Cookie", session_cookie(cookie, secure=self.https)))
        return response

    def logout(self, request: Request, subject: str) -> Response:
        self.auth.end_session(subject)
        response = redirect("/login")
        response.headers.append(("Set-Cookie", session_cookie("", secure=self.https, max_age=0)))
        return response

    # -- pages ------------------------------------------------------------------------------------

    def overview(self, request: Request, subject: str) -> Response:
        with self.sessions() as session:
            overview = build_overview(session, self.broker, self.queues, self.clock())
        return self.page(200, "overview.html", subject, title="Overview", o=overview, queue_alert=queue_alert)

    def failed_list(self, request: Request, subject: str) -> Response:
        statuses = [s.value for s in FailedJobStatus]
        filters = {
            "queue": text_filter(request.query, "queue"),
            "actor": text_filter(request.query, "actor"),
            "status": choice_filter(request.query, "status", statuses),
        }
        page_wanted = page_number(request.query)
        with self.sessions() as session:
            page = dashboard_rows.list_failed_jobs(session, page=page_wanted, **filters)
            return self.page(
                200,
                "failed_list.html",
                subject,
                title="Dead letters",
                jobs=page,
                filters=filters,
                queues=self.queues,
                statuses=statuses,
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
        statuses = [s.value for s in PaymentStatus]
        filters = {
            "status": choice_filter(request.query, "status", statuses),
            "account": text_filter(request.query, "account"),
            "older_than": choice_filter(request.query, "older_than", AGE_CHOICES),
        }
        older_than = int(filters["older_than"] or 0)
        page_wanted = page_number(request.query)
        now = self.clock()
        with self.sessions() as session:
            page = dashboard_rows.list_payments(
                session,
                now,
                status=filters["status"],
                account_number=filters["account"],
                older_than_seconds=older_than,
                page=page_wanted,
            )
            return self.page(
                200,
                "payments.html",
                subject,
                title="Payments",
                payments=page,
                filters=filters,
                statuses=statuses,
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


def _throttled(wait_seconds: int) -> Response:
    response = text(429, f"Too many failed sign-ins; try again in {wait_seconds} seconds.\n")
    response.headers.append(("Retry-After", str(wait_seconds)))
    return response


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

    settings = get_settings()
    if not settings.dashboard_token:
        return _not_configured
    from workers import actors  # noqa: F401  (declares every actor, so any dead letter can be retried)
    from workers.broker import broker

    return make_app(
        settings.dashboard_token, get_sessionmaker(), broker, QUEUES, https=settings.dashboard_https
    )


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The process-wide dashboard, built from settings on the first request."""
    return _default_app()(environ, start_response)
