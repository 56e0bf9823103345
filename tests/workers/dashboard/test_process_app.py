"""The module-level `app` a WSGI server loads: built from settings on first request, refusing if no token."""

from __future__ import annotations

import http.client
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from tests.workers.dashboard.conftest import TOKEN, Client
from workers.dashboard import app as dashboard
from workers.settings import get_settings


@pytest.fixture()
def settings_token(monkeypatch):
    """Sets DASHBOARD_TOKEN (or removes it) and rebuilds the process-wide app from settings."""

    def use(token: str | None):
        if token is None:
            monkeypatch.delenv("DASHBOARD_TOKEN", raising=False)
        else:
            monkeypatch.setenv("DASHBOARD_TOKEN", token)
        get_settings.cache_clear()
        dashboard._default_app.cache_clear()

    yield use
    monkeypatch.delenv("DASHBOARD_TOKEN", raising=False)
    get_settings.cache_clear()
    dashboard._default_app.cache_clear()


def test_process_app_without_dashboard_token_answers_503(settings_token):
    settings_token(None)
    answer = Client(dashboard.app, bearer=TOKEN).get("/")
    assert answer.status == 503 and "no operator is configured" in answer.body


def test_process_app_uses_the_configured_token_and_knows_every_actor(settings_token, db, broker):
    settings_token(TOKEN)
    assert Client(dashboard.app).get("/").status == 401
    assert Client(dashboard.app, bearer=TOKEN).get("/").status == 200
    for actor in (
        "execute_payment",
        "process_stripe_event",
        "send_email",
        "recompute_balance",
        "sweep_payments",
    ):
        assert broker.get_actor(actor)


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def test_dashboard_serves_over_real_http(dashboard_app):
    server = make_server("127.0.0.1", 0, dashboard_app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
        connection.request("GET", "/", headers={"Authorization": f"Bearer {TOKEN}"})
        response = connection.getresponse()
        body = response.read().decode()
        assert response.status == 200 and "Queues" in body
        assert response.getheader("Content-Security-Policy").startswith("default-src 'none'")
        connection.request("GET", "/healthz")
        health = connection.getresponse()
        assert (health.status, health.read()) == (200, b"ok\n")
    finally:
        server.shutdown()
        server.server_close()
