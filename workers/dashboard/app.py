"""The ops dashboard as a plain WSGI app: overview, dead letters, payments, the inbox and outbox, search,
the review queue, the audit log, metrics and health.

Every page needs a named operator (DASHBOARD_OPERATORS, or DASHBOARD_TOKEN as the operator "admin"),
as `Authorization: Bearer <token>` or through the login form's session cookie; /metrics takes the
same Bearer token (Prometheus: `authorization: {credentials: ...}`). Only /healthz is open. Without an
operator configured every path answers 503: never an open dashboard. Read operators look; only
admins act, and every action is recorded in the audit log under the operator's name. Sessions and
failed sign-ins live in the broker's Redis (workers/dashboard/state.py), so every dashboard process
honours a logout and counts the same guesses.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy import text as sql
from sqlalchemy.orm import Session, sessionmaker

from workers.dashboard import dead_pages, find_pages, live_pages, review_pages
from workers.dashboard.auth import Auth, Subject, Throttle, session_cookie
from workers.dashboard.http import Request, Response, StartResponse, redirect, text
from workers.dashboard.params import BadParameter, path_id, safe_next
from workers.dashboard.state import state_for
from workers.dashboard.templates import render
from workers.settings import Operator

WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
NOT_CONFIGURED = (
    "The ops dashboard is disabled: no operator is configured. Set DASHBOARD_OPERATORS "
    "(name:token:role, ...) or DASHBOARD_TOKEN (at least 16 characters) and restart; "
    "the dashboard never runs without one.\n"
)
# A year, the usual max-age; sent only when DASHBOARD_HTTPS says the dashboard is served over HTTPS.
HSTS = ("Strict-Transport-Security", "max-age=31536000")
Route = tuple[str, str, Callable[..., Response]]
_log = logging.getLogger(__name__)


def make_app(
    operators: str | Sequence[Operator] | None,
    sessions: sessionmaker[Session],
    broker,
    queues: tuple[str, ...],
    clock: Callable[[], datetime] | None = None,
    *,
    https: bool = True,
    metrics_dir: str | None = None,
    stripe_livemode: bool = False,
) -> WSGIApp:
    """The dashboard for these operators (a lone token is the operator "admin"), database and broker; a
    503-only app without any.

    https (DASHBOARD_HTTPS) marks the session cookie Secure and sends HSTS; no request header changes it.
    metrics_dir (PROMETHEUS_MULTIPROC_DIR) makes /metrics add up every process's counters; stripe_livemode
    picks the live or test side of Stripe's dashboard for "open at Stripe" links.
    """
    if isinstance(operators, str):
        operators = (Operator("admin", operators, "admin"),)
    if not operators:
        return _not_configured
    state = state_for(broker)
    now = clock or (lambda: datetime.now(UTC))
    dashboard = Dashboard(Auth(operators, state), Throttle(state), https, sessions, broker, queues, now)
    dashboard.metrics_dir, dashboard.stripe_livemode = metrics_dir, stripe_livemode
    return dashboard


def _not_configured(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    return text(503, NOT_CONFIGURED)(start_response)


class Dashboard:
    """Routes a request to a page once it is authenticated; POSTs also need the session's CSRF token and an
    operator who may act."""

    def __init__(self, auth: Auth, throttle: Throttle, https: bool, sessions, broker, queues, clock) -> None:
        self.auth, self.throttle, self.https = auth, throttle, https
        self.sessions, self.broker, self.queues, self.clock = sessions, broker, queues, clock
        self.metrics_dir: str | None = None
        self.stripe_livemode = False
        routes: list[Route] = [
            *live_pages.ROUTES,
            *dead_pages.ROUTES,
            *find_pages.ROUTES,
            *review_pages.ROUTES,
            ("POST", r"/logout", Dashboard.logout),
        ]
        self.routes = [(method, re.compile(pattern), handler) for method, pattern, handler in routes]

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        response = self.respond(Request.from_environ(environ))
        if self.https:
            response.headers.append(HSTS)
        return response(start_response)

    def respond(self, request: Request) -> Response:
        if request.path == "/healthz":
            return self.health()
        if request.path == "/favicon.ico":
            return Response(204)
        if request.path == "/login":
            return self.login(request)
        subject = self.authenticate(request)
        if isinstance(subject, Response):
            return subject
        try:
            return self.route(request, subject)
        except BadParameter as bad:
            return self.page(400, "message.html", subject, title="Bad request", message=str(bad))

    def route(self, request: Request, subject: Subject) -> Response:
        other_method = False
        for method, pattern, handler in self.routes:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            if request.method != method and not (method == "GET" and request.method == "HEAD"):
                other_method = True
                continue
            ids = [path_id(g) if g.isdigit() else g for g in match.groups()]
            if None in ids:  # an id no row can have
                return self.not_found(subject, "No such row.")
            if method == "POST" and (refused := self.refuse_post(request, subject)):
                return refused
            return handler(self, request, subject, *ids)
        if other_method:
            return text(405, "That method is not allowed here.\n")
        return self.not_found(subject, "No such page.")

    def refuse_post(self, request: Request, subject: Subject) -> Response | None:
        if not self.auth.csrf_valid(subject, request.form.get("csrf", "")):
            return text(403, "Missing or wrong CSRF token: reload the page and try again.\n")
        if request.path != "/logout" and not subject.operator.can_act:
            return self.page(
                403, "message.html", subject, title="Read-only", message="A read operator cannot act."
            )
        return None

    def page(self, status: int, template: str, subject: Subject | None, **context: Any) -> Response:
        csrf = self.auth.csrf_token(subject) if subject else ""
        context.setdefault("refresh", 0)
        context.setdefault("search", "")
        body = render(
            template,
            csrf=csrf,
            signed_in=subject is not None,
            operator=subject.operator if subject else None,
            **context,
        )
        return Response(status, body.encode())

    def not_found(self, subject: Subject | None, message: str) -> Response:
        return self.page(404, "message.html", subject, title="Not found", message=message)

    # -- authentication -------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Subject | Response:
        """The operator (session cookie or Bearer header), or the answer that refuses the request."""
        offered = self.auth.bearer(request)
        if offered is None:
            return self.auth.session(request) or self.unauthorized(request)
        if wait := self.throttle.wait_seconds(request.address):
            return _throttled(wait)
        if operator := self.auth.operator_for(offered):
            return Subject(operator, "bearer")
        self.throttle.failed(request.address)
        return self.unauthorized(request)

    def unauthorized(self, request: Request) -> Response:
        if request.path == "/metrics" or request.headers.get("authorization"):
            response = text(401, "A valid operator token is required (Authorization: Bearer <token>).\n")
        else:
            back = request.target if request.method == "GET" else "/"
            response = self.page(401, "login.html", None, title="Sign in", error="", next=safe_next(back))
        response.headers.append(("WWW-Authenticate", 'Bearer realm="remit-dashboard"'))
        return response

    def login(self, request: Request) -> Response:
        back = safe_next(request.form.get("next") or request.query.get("next", ""))
        if request.method == "GET":
            return self.page(200, "login.html", None, title="Sign in", error="", next=back)
        if request.method != "POST":
            return text(405, "GET or POST only\n")
        if wait := self.throttle.wait_seconds(request.address):
            return _throttled(wait)
        operator = self.auth.operator_for(request.form.get("token", ""))
        if operator is None:
            self.throttle.failed(request.address)
            return self.page(
                401, "login.html", None, title="Sign in", error="That token is not right.", next=back
            )
        try:
            cookie = self.auth.new_session(operator)
        except RedisError:
            return text(
                503, "Sign-in needs Redis, which did not answer; use Authorization: Bearer meanwhile.\n"
            )
        response = redirect(back)
        response.headers.append(("Set-Cookie", session_cookie(cookie, secure=self.https)))
        return response

    def logout(self, request: Request, subject: Subject) -> Response:
        self.auth.end_session(subject)
        response = redirect("/login")
        response.headers.append(("Set-Cookie", session_cookie("", secure=self.https, max_age=0)))
        return response

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


@lru_cache(maxsize=1)
def _default_app() -> WSGIApp:
    from db.session import get_sessionmaker
    from workers.broker import QUEUES
    from workers.settings import get_settings

    settings = get_settings()
    if not settings.dashboard_operators:
        return _not_configured
    from workers import actors  # noqa: F401  (declares every actor, so any dead letter can be retried)
    from workers.broker import broker

    return make_app(
        settings.dashboard_operators,
        get_sessionmaker(),
        broker,
        QUEUES,
        https=settings.dashboard_https,
        metrics_dir=settings.metrics_dir,
        stripe_livemode=settings.stripe_livemode,
    )


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The process-wide dashboard, built from settings on the first request."""
    return _default_app()(environ, start_response)
