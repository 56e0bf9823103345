"""Issue 13, dashboard: hostile numbers, filters, token guesses, stolen cookies and headers change nothing."""

from __future__ import annotations

import pytest

from tests.workers.dashboard.conftest import TOKEN, Client
from workers import cli, run
from workers.broker import QUEUES
from workers.dashboard.app import make_app
from workers.dashboard.auth import COOKIE_NAME
from workers.settings import SettingsError, load_settings

TWENTY_DIGITS = "9" * 20
THIRTY_DIGITS = "9" * 30
BASE_ENVIRON = {
    "DATABASE_URL": "postgresql://remit@127.0.0.1:5432/remit",
    "BROKER_URL": "redis://127.0.0.1:6379/0",
    "STRIPE_API_KEY": "sk_test_x",
    "STRIPE_WEBHOOK_SECRETS": "whsec_x",
}


def _forget_sign_ins(broker) -> None:
    for key in broker.client.scan_iter(f"{broker.namespace}:dashboard:*"):
        broker.client.delete(key)


@pytest.fixture()
def app(db, broker):
    _forget_sign_ins(broker)
    yield make_app(TOKEN, db, broker, QUEUES, https=False)
    _forget_sign_ins(broker)


@pytest.fixture()
def client(app) -> Client:
    return Client(app, bearer=TOKEN)


def _short_page(answer, status: int) -> None:
    assert answer.status == status, answer.body[:200]
    assert len(answer.body) < 4000


@pytest.mark.parametrize(
    "path",
    [
        f"/failed/{TWENTY_DIGITS}",
        f"/payments/{TWENTY_DIGITS}",
        "/payments/2147483648",  # one past the largest id PostgreSQL's integer column holds
        "/failed/-1",
        "/payments/abc",
        "/payments/\u0661\u0662",  # Arabic-Indic digits: str.isdigit says yes, an id they are not
    ],
)
def test_an_id_out_of_range_or_malformed_is_404_not_500(client, path):
    _short_page(client.get(path), 404)


def test_a_retry_of_a_twenty_digit_dead_letter_is_404_and_sends_nothing(app, broker):
    browser = Client(app).signed_in()
    csrf = browser.get("/").csrf
    for action in ("retry", "discard"):
        _short_page(browser.post(f"/failed/{TWENTY_DIGITS}/{action}", {"csrf": csrf}), 404)
    assert all(broker.client.llen(f"{broker.namespace}:{q}") == 0 for q in QUEUES)


@pytest.mark.parametrize("page", [THIRTY_DIGITS, "-1", "0", "abc", "1.5", "\u0661"])
@pytest.mark.parametrize("listing", ["/failed", "/payments"])
def test_a_page_number_out_of_range_or_malformed_is_400(client, listing, page):
    answer = client.get(f"{listing}?page={page}")
    _short_page(answer, 400)
    assert "page" in answer.body


@pytest.mark.parametrize(
    "query",
    [
        "/failed?queue=pay%00ments",
        "/failed?actor=execute_payment%00",
        "/failed?status=dead%0d%0a",
        "/failed?status=no-such-status",
        "/payments?account=ACME%00",
        "/payments?account=ACME%1b",
        "/payments?status=%00",
        f"/payments?older_than={THIRTY_DIGITS}",
        "/payments?older_than=-5",
        "/payments?older_than=12",
    ],
)
def test_a_control_character_or_unknown_value_in_a_filter_is_400(client, query):
    _short_page(client.get(query), 400)


def test_a_filter_longer_than_any_real_value_is_400_and_not_echoed(client):
    answer = client.get("/failed?actor=" + "x" * 5000)
    _short_page(answer, 400)
    assert "x" * 300 not in answer.body


def test_the_good_filters_and_pages_still_work(client):
    assert client.get("/failed?queue=payments&actor=execute_payment&status=dead&page=2").status == 200
    assert client.get("/payments?status=succeeded&account=ACME-1&older_than=3600&page=1").status == 200
    assert client.get("/payments?older_than=&page=").status == 200


def test_sign_in_guesses_from_one_address_are_throttled_with_retry_after(app):
    guesser = Client(app, remote_addr="203.0.113.7")
    for _ in range(5):
        assert guesser.post("/login", {"token": "wrong-guess-0123456789"}).status == 401
    answer = guesser.post("/login", {"token": "wrong-guess-0123456789"})
    assert answer.status == 429
    assert 1 <= int(answer.header("Retry-After")) <= 60
    # Throttled means the token is not even compared: the right one is refused too, so no oracle.
    assert guesser.post("/login", {"token": TOKEN}).status == 429
    assert COOKIE_NAME not in guesser.cookies
    # Someone else is not locked out by this guesser.
    assert Client(app, remote_addr="198.51.100.1").post("/login", {"token": TOKEN}).status == 303


def test_bearer_guesses_are_throttled_like_the_form(app):
    for _ in range(5):
        assert Client(app, bearer="wrong-guess-0123456789", remote_addr="203.0.113.8").get("/").status == 401
    assert Client(app, bearer=TOKEN, remote_addr="203.0.113.8").get("/metrics").status == 429


def test_guesses_spread_over_many_addresses_meet_the_overall_limit(app):
    for n in range(50):
        assert (
            Client(app, remote_addr=f"10.0.{n}.1").post("/login", {"token": "wrong-0123456789"}).status == 401
        )
    assert Client(app, remote_addr="10.1.0.1").post("/login", {"token": "wrong-0123456789"}).status == 429


def test_the_throttle_is_shared_by_every_dashboard_process(db, broker, app):
    other_process = make_app(TOKEN, db, broker, QUEUES, https=False)
    for target in (app, other_process, app, other_process, app):
        assert (
            Client(target, remote_addr="203.0.113.9").post("/login", {"token": "wrong-guess-012345"}).status
            == 401
        )
    assert Client(other_process, remote_addr="203.0.113.9").post("/login", {"token": TOKEN}).status == 429


def test_logout_revokes_the_session_so_a_copied_cookie_stops_working(app):
    browser = Client(app).signed_in()
    stolen = dict(browser.cookies)
    assert Client(app, cookies=dict(stolen)).get("/").status == 200
    assert browser.post("/logout", {"csrf": browser.get("/").csrf}).status == 303
    assert Client(app, cookies=dict(stolen)).get("/").status == 401
    assert Client(app, cookies=dict(stolen)).get("/payments").status == 401


def test_one_logout_ends_only_its_own_session(app):
    first, second = Client(app).signed_in(), Client(app).signed_in()
    assert first.post("/logout", {"csrf": first.get("/").csrf}).status == 303
    assert second.get("/").status == 200


def test_secure_cookie_and_hsts_come_from_configuration_not_from_a_header(db, broker, app):
    plain = Client(app).post("/login", {"token": TOKEN}, x_forwarded_proto="https")
    assert "Secure" not in plain.header("Set-Cookie")
    assert plain.header("Strict-Transport-Security") is None

    https_app = make_app(TOKEN, db, broker, QUEUES, https=True)
    login = Client(https_app).post("/login", {"token": TOKEN}, x_forwarded_proto="http")
    assert login.header("Set-Cookie").endswith("; Secure")
    for answer in (login, Client(https_app).get("/healthz"), Client(https_app).get("/")):
        assert answer.header("Strict-Transport-Security") == "max-age=31536000"


@pytest.mark.parametrize(
    ("environ", "https"),
    [
        ({}, False),  # REMIT_ENV defaults to development
        ({"REMIT_ENV": "development"}, False),
        ({"REMIT_ENV": "production"}, True),
        ({"REMIT_ENV": "staging"}, True),
        ({"REMIT_ENV": "production", "DASHBOARD_HTTPS": "false"}, False),
        ({"REMIT_ENV": "development", "DASHBOARD_HTTPS": "true"}, True),
    ],
)
def test_https_is_on_by_default_outside_development(environ, https):
    assert load_settings({**BASE_ENVIRON, **environ}).dashboard_https is https


def test_a_malformed_https_setting_stops_start_up_naming_it():
    with pytest.raises(SettingsError, match="DASHBOARD_HTTPS"):
        load_settings({**BASE_ENVIRON, "DASHBOARD_HTTPS": "maybe"})


def test_the_dashboard_binds_loopback_unless_told_otherwise(migrated, monkeypatch):
    from workers.settings import get_settings

    launched = []
    monkeypatch.setattr(run.os, "execv", lambda exe, argv: launched.append(argv))
    monkeypatch.setenv("DASHBOARD_TOKEN", TOKEN)
    for host, expected in ((None, "127.0.0.1:8002"), ("0.0.0.0", "0.0.0.0:8002")):
        if host is None:
            monkeypatch.delenv("DASHBOARD_HOST", raising=False)
        else:
            monkeypatch.setenv("DASHBOARD_HOST", host)
        monkeypatch.delenv("PORT", raising=False)
        get_settings.cache_clear()
        assert cli.main(["dashboard"]) == 0
        argv = launched.pop()
        assert argv[argv.index("--bind") + 1] == expected
    get_settings.cache_clear()


class NoRedisBroker:
    """A RabbitMQ-like broker: no Redis client, so the dashboard keeps its state in its own memory."""

    client = None
    namespace = "nothing"


def test_without_redis_logout_still_revokes_and_guesses_are_still_throttled(db):
    app = make_app(TOKEN, db, NoRedisBroker(), QUEUES, https=False)
    browser = Client(app).signed_in()
    stolen = dict(browser.cookies)
    assert browser.post("/logout", {"csrf": browser.get("/failed").csrf}).status == 303
    assert Client(app, cookies=stolen).get("/failed").status == 401
    for _ in range(5):
        assert Client(app).post("/login", {"token": "wrong-guess-0123456789"}).status == 401
    assert Client(app).post("/login", {"token": TOKEN}).status == 429


def test_when_redis_does_not_answer_sign_in_is_a_short_503_and_bearer_still_works(db):
    from tests.workers.dashboard.test_auth import DeadBroker

    app = make_app(TOKEN, db, DeadBroker(), QUEUES, https=False)
    answer = Client(app).post("/login", {"token": TOKEN})
    assert answer.status == 503 and "Bearer" in answer.body and answer.header("Set-Cookie") is None
    assert Client(app, bearer=TOKEN).get("/failed").status == 200


def test_a_malformed_dashboard_host_stops_start_up_naming_it():
    with pytest.raises(SettingsError, match="DASHBOARD_HOST"):
        load_settings({**BASE_ENVIRON, "DASHBOARD_HOST": "0.0.0.0 --reload"})
