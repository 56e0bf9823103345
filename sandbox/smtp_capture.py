"""An SMTP server that keeps every message it receives, for tests and the demo.

Run `python -m sandbox.smtp_capture [port]` to capture mail into .remit/mail as .eml files.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
import uuid
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

# Tests run in parallel; a free port picked before binding can be taken in between, so retry.
BIND_ATTEMPTS = 3
# Fixed so start() does not wait on a reverse DNS lookup of this machine's name.
SERVER_HOSTNAME = "remit-smtp-capture"


class SmtpCapture:
    """Accept any mail over plain SMTP (AUTH optional, any credentials) and keep it in memory."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, maildir: Path | None = None):
        self.host = host
        self.port = port
        self.maildir = maildir
        self._envelopes: list[dict] = []
        # Parsed on first read, not on arrival: a bench's sink takes 100 messages a second on shared cores.
        self._messages: list[EmailMessage] = []
        self._arrived = threading.Condition()
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        """Where to send mail, e.g. smtp://127.0.0.1:1025."""
        return f"smtp://{self.host}:{self.port}"

    @property
    def messages(self) -> list[EmailMessage]:
        """Parsed messages in arrival order (a copy)."""
        with self._arrived:
            return self._parsed()

    def _parsed(self) -> list[EmailMessage]:
        parser = BytesParser(policy=policy.default)
        self._messages.extend(parser.parsebytes(e["data"]) for e in self._envelopes[len(self._messages) :])
        return list(self._messages)

    @property
    def envelopes(self) -> list[dict]:
        """SMTP envelopes in arrival order: mail_from, rcpt_tos, the raw data bytes and the client's
        address and port (one per connection)."""
        with self._arrived:
            return [dict(envelope) for envelope in self._envelopes]

    def start(self) -> SmtpCapture:
        """Listen in a background thread; port 0 picks a free port."""
        if self.maildir is not None:
            self.maildir.mkdir(parents=True, exist_ok=True)
        chosen = self.port
        for attempt in range(BIND_ATTEMPTS):
            self.port = chosen or _free_port(self.host)
            try:
                self._controller = self._listen()
                return self
            except OSError:
                if chosen or attempt == BIND_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Stop listening; captured messages stay readable."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        """Block until at least count messages arrived; raise TimeoutError naming how many did."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self._envelopes) >= count, timeout):
                raise TimeoutError(
                    f"expected {count} message(s) at {self.url} within {timeout}s, got {len(self._envelopes)}"
                )
            return self._parsed()

    def clear(self) -> None:
        """Forget every captured message."""
        with self._arrived:
            self._messages.clear()
            self._envelopes.clear()

    async def handle_DATA(self, server, session, envelope) -> str:
        """aiosmtpd hook: keep the message, and write it to maildir if there is one."""
        data = envelope.original_content or envelope.content
        if self.maildir is not None:
            _write_eml(self.maildir, data)
        with self._arrived:
            self._envelopes.append(
                {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": list(envelope.rcpt_tos),
                    "data": data,
                    "peer": tuple(session.peer)[:2],
                }
            )
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def _listen(self) -> Controller:
        controller = Controller(
            _Hooks(self),
            hostname=self.host,
            port=self.port,
            server_hostname=SERVER_HOSTNAME,
            authenticator=_accept_any_login,
            auth_require_tls=False,
        )
        controller.start()
        return controller

    def __enter__(self) -> SmtpCapture:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


class _Hooks:
    """The capture's aiosmtpd hooks (handle_* methods, a subclass's too) on an object of their own:
    aiosmtpd lists its handler's members at every new connection (inspect.getmembers reads every
    property), and the capture's messages property would parse and copy every message kept so far."""

    def __init__(self, capture: SmtpCapture):
        for name in dir(type(capture)):
            if name.startswith("handle_"):
                setattr(self, name, getattr(capture, name))


def serve(port: int = 1025, host: str = "127.0.0.1", maildir: Path | None = Path(".remit/mail")) -> None:
    """Capture mail in the foreground until Ctrl-C, writing each message into maildir."""
    capture = SmtpCapture(host, port, maildir).start()
    where = f", writing .eml files to {maildir}" if maildir is not None else ""
    print(f"capturing mail at {capture.url}{where}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        capture.stop()


def _accept_any_login(server, session, envelope, mechanism, auth_data) -> AuthResult:
    # Apps configured with real SMTP credentials must work unchanged against the capture.
    return AuthResult(success=True)


def _write_eml(maildir: Path, data: bytes) -> Path:
    # The timestamp prefix keeps `ls` in arrival order; the suffix keeps names unique.
    now_ns = time.time_ns()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now_ns // 10**9))
    path = maildir / f"{stamp}.{now_ns % 10**9:09d}-{uuid.uuid4().hex[:6]}.eml"
    path.write_bytes(data)
    return path


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    serve(int(sys.argv[1]) if len(sys.argv) > 1 else 1025)
