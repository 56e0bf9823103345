"""A dashboard bound to the test database and broker, called in-process through a small WSGI client."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from urllib.parse import urlencode
from wsgiref.validate import validator

import pytest

TOKEN = "dashboard-test-token-0123456789"


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: str

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    @property
    def csrf(self) -> str:
        return re.search(r'name="csrf" value="([0-9a-f]+)"', self.body).group(1)


@dataclass
class Client:
    """Builds WSGI environs by hand; keeps cookies the app sets, like a browser would."""

    app: object
    cookies: dict[str, str] = field(default_factory=dict)
    bearer: str | None = None
    remote_addr: str = "127.0.0.1"

    def get(self, path: str, **headers: str) -> Answer:
        return self.request("GET", path, headers=headers)

    def post(self, path: str, form: dict[str, str] | None = None, **headers: str) -> Answer:
        return self.request("POST", path, body=urlencode(form or {}).encode(), headers=headers)

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> Answer:
        path, _, query = path.partition("?")
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": "test",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "SCRIPT_NAME": "",
            "CONTENT_LENGTH": str(len(body)),
            "CONTENT_TYPE": "application/x-www-form-urlencoded",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": io.StringIO(),
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "REMOTE_ADDR": self.remote_addr,
        }
        if self.bearer:
            environ["HTTP_AUTHORIZATION"] = f"Bearer {self.bearer}"
        if self.cookies:
            environ["HTTP_COOKIE"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for name, value in (headers or {}).items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        seen = {}

        def start_response(status, response_headers):
            seen.update(status=int(status.split()[0]), headers=response_headers)

        result = validator(self.app)(environ, start_response)  # fails the test on any WSGI violation
        try:
            body_out = b"".join(result)
        finally:
            result.close()
        answer = Answer(seen["status"], seen["headers"], body_out.decode())
        for name, value in answer.headers:
            if name.lower() == "set-cookie":
                cookie = SimpleCookie(value)
                for key, morsel in cookie.items():
                    if morsel["max-age"] == "0":
                        self.cookies.pop(key, None)
                    else:
                        self.cookies[key] = morsel.value
        return answer

    def signed_in(self) -> Client:
        assert self.post("/login", {"token": TOKEN}).status == 303
        return self


class Clock:
    """The dashboard's now, fixed unless a test moves it."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def dashboard_app(db, broker, clock):
    from workers.broker import QUEUES
    from workers.dashboard.app import make_app

    for pattern in (
        "dashboard:*",
        "stats:*",
        "remit:process:*",
    ):  # sessions, sign-ins, chart counts, processes
        for key in broker.client.scan_iter(f"{broker.namespace}:{pattern}"):
            broker.client.delete(key)
    return make_app(TOKEN, db, broker, QUEUES, clock=clock, https=False)


@pytest.fixture()
def client(dashboard_app) -> Client:
    """A browser that has signed in through the login form."""
    return Client(dashboard_app).signed_in()


@pytest.fixture()
def anonymous(dashboard_app) -> Client:
    return Client(dashboard_app)
