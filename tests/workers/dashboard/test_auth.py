"""Nobody sees or changes anything without the token; without a token configured nothing is served."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy.orm import sessionmaker

from db.session import make_engine
from tests.workers.dashboard.conftest import TOKEN, Client
from workers.broker import QUEUES
from workers.dashboard.app import make_app
from workers.dashboard.auth import COOKIE_NAME, SESSION_SECONDS
from workers.dashboard.state import state_for

PAGES = ["/", "/failed", "/failed/1", "/payments", "/payments/1", "/metrics"]


def test_every_page_refuses_a_request_without_credentials(anonymous):
    for path in PAGES:
        answer = anonymous.get(path)
        assert answer.status == 401, path
        assert answer.header("WWW-Authenticate") == 'Bearer realm="remit-dashboard"'


def test_an_html_page_without_credentials_offers_the_login_form(anonymous):
    answer = anonymous.get("/")
    assert 'action="/login"' in answer.body and 'name="token"' in answer.body


def test_a_wrong_bearer_token_is_refused(dashboard_app):
    for wrong in ("nope", TOKEN + "x", TOKEN[:-1], ""):
        assert Client(dashboard_app, bearer=wrong).get("/").status == 401, wrong


def test_the_right_bearer_token_opens_every_page(dashboard_app):
    client = Client(dashboard_app, bearer=TOKEN)
    assert client.get("/").status == 200
    assert client.get("/failed").status == 200
    assert client.get("/payments").status == 200
    assert client.get("/metrics").status == 200


def test_dashboard_without_a_configured_token_refuses_to_serve(db, broker):
    app = make_app(None, db, broker, QUEUES)
    for path in [*PAGES, "/login", "/healthz"]:
        answer = Client(app, bearer="anything-at-all-123").get(path)
        assert answer.status == 503, path
        assert "no operator is configured" in answer.body


def test_login_sets_an_httponly_strict_cookie_that_opens_pages(anonymous):
    answer = anonymous.post("/login", {"token": TOKEN})
    assert answer.status == 303 and answer.header("Location") == "/"
    cookie = answer.header("Set-Cookie")
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    assert TOKEN not in cookie
    assert anonymous.get("/").status == 200


def test_login_to_a_dashboard_configured_for_https_marks_the_cookie_secure(db, broker):
    answer = Client(make_app(TOKEN, db, broker, QUEUES, https=True)).post("/login", {"token": TOKEN})
    assert "; Secure" in answer.header("Set-Cookie")


def test_login_with_a_wrong_token_sets_no_cookie(anonymous):
    answer = anonymous.post("/login", {"token": "not-the-token-at-all"})
    assert answer.status == 401 and answer.header("Set-Cookie") is None
    assert "not right" in answer.body
    assert anonymous.get("/").status == 401


def test_a_forged_or_tampered_cookie_is_refused(anonymous, client):
    issued, session_id, signature = client.cookies[COOKIE_NAME].split(".")
    for forged in (
        f"{int(issued) + 1}.{session_id}.{signature}",
        f"{issued}.{session_id[::-1]}.{signature}",
        f"{issued}.{session_id}.{'0' * 64}",
        "garbage",
        f"{issued}.{session_id}.",
    ):
        anonymous.cookies[COOKIE_NAME] = forged
        assert anonymous.get("/").status == 401, forged


def test_a_session_expires(client, clock, dashboard_app, broker):
    from workers.dashboard.auth import Auth
    from workers.settings import Operator

    assert client.get("/").status == 200
    issued = int(client.cookies[COOKIE_NAME].split(".")[0])
    admin = Operator("admin", TOKEN, "admin")
    later = Auth([admin], state_for(broker), clock=lambda: issued + SESSION_SECONDS + 1)
    dashboard_app.auth = later
    assert client.get("/").status == 401


def test_a_cookie_signed_under_another_token_is_refused(db, broker, client):
    other = make_app("another-token-0123456789", db, broker, QUEUES)
    assert Client(other, cookies=dict(client.cookies)).get("/").status == 401


def test_logout_needs_csrf_and_clears_the_cookie(client):
    assert client.post("/logout").status == 403
    page = client.get("/")
    assert client.post("/logout", {"csrf": page.csrf}).status == 303
    assert COOKIE_NAME not in client.cookies
    assert client.get("/").status == 401


def test_health_is_open_and_answers_ok_when_database_and_redis_answer(anonymous):
    answer = anonymous.get("/healthz")
    assert (answer.status, answer.body) == (200, "ok\n")


def test_health_is_503_when_the_database_does_not_answer(broker):
    dead = sessionmaker(bind=make_engine("postgresql+psycopg://nobody@127.0.0.1:9/none"))
    answer = Client(make_app(TOKEN, dead, broker, QUEUES)).get("/healthz")
    assert answer.status == 503 and "database" in answer.body


class DeadBroker:
    """Points at a port where nothing listens, and gives up at once."""

    client = redis.Redis(host="127.0.0.1", port=9, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    namespace = "nothing"


def test_health_is_503_when_redis_does_not_answer(db):
    answer = Client(make_app(TOKEN, db, DeadBroker(), QUEUES)).get("/healthz")
    assert answer.status == 503 and "redis" in answer.body


def test_overview_says_so_when_redis_does_not_answer(db):
    answer = Client(make_app(TOKEN, db, DeadBroker(), QUEUES), bearer=TOKEN).get("/")
    assert answer.status == 200 and "Redis did not answer" in answer.body
