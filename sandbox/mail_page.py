"""The captured mail as web pages: an index of .remit/mail, newest first, and each message rendered.

`make run` serves it on 127.0.0.1:8025 (SANDBOX_MAIL_PORT); `python -m sandbox mail` serves it alone.
A message's HTML is shown in a sandboxed frame (no scripts, no same-origin), its text part beside it.
"""

from __future__ import annotations

import html
import re
import threading
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sandbox.ports import HOST

# Names smtp_capture writes (stamp.nanoseconds-suffix.eml); anything else in a URL is not a message.
MESSAGE_NAME = re.compile(r"[0-9T.]+-[0-9a-f]+\.eml")
STYLE = (
    "body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
    "td,th{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}"
    "iframe{width:100%;height:60vh;border:1px solid #ccc}"
    "pre{white-space:pre-wrap;background:#f6f6f6;padding:1em}"
)


def _page(title: str, body: str) -> bytes:
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" '
        f'content="width=device-width"><title>{html.escape(title)}</title><style>{STYLE}</style></head>'
        f"<body>{body}</body></html>"
    ).encode()


def read_message(path: Path) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(path.read_bytes())


def index_page(maildir: Path) -> bytes:
    """Every captured message, newest first: when, from, to, subject, linked to its page."""
    paths = sorted(maildir.glob("*.eml"), reverse=True) if maildir.is_dir() else []
    rows = []
    for path in paths:
        message = read_message(path)
        cells = [message.get(h, "") for h in ("Date", "From", "To")]
        subject = html.escape(str(message.get("Subject", "(no subject)")))
        rows.append(
            "<tr>"
            + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells)
            + f'<td><a href="/messages/{path.name}">{subject}</a></td></tr>'
        )
    table = (
        "<table><tr><th>Date</th><th>From</th><th>To</th><th>Subject</th></tr>" + "".join(rows) + "</table>"
    )
    return _page(
        "Captured mail", f"<h1>Captured mail ({len(paths)})</h1><p>{html.escape(str(maildir))}</p>{table}"
    )


def message_page(maildir: Path, name: str) -> bytes | None:
    """One message rendered (its HTML part in a sandboxed frame, then its text), or None if there is none."""
    path = maildir / name
    if not MESSAGE_NAME.fullmatch(name) or not path.is_file():
        return None
    message = read_message(path)
    headers = "".join(
        f"<tr><th>{h}</th><td>{html.escape(str(message.get(h, '')))}</td></tr>"
        for h in ("Date", "From", "To", "Reply-To", "Subject", "Message-ID")
    )
    html_part = message.get_body(preferencelist=("html",))
    text_part = message.get_body(preferencelist=("plain",))
    body = '<p><a href="/">All mail</a></p>' + f"<table>{headers}</table>"
    if html_part is not None:
        body += f'<h2>HTML</h2><iframe sandbox srcdoc="{html.escape(html_part.get_content())}"></iframe>'
    if text_part is not None:
        body += f"<h2>Text</h2><pre>{html.escape(text_part.get_content())}</pre>"
    return _page(str(message.get("Subject", name)), body)


class _Handler(BaseHTTPRequestHandler):
    maildir: Path

    def do_GET(self) -> None:
        if self.path == "/":
            self._send(HTTPStatus.OK, index_page(self.maildir))
            return
        found = message_page(self.maildir, self.path.removeprefix("/messages/"))
        if self.path.startswith("/messages/") and found is not None:
            self._send(HTTPStatus.OK, found)
        else:
            self._send(
                HTTPStatus.NOT_FOUND, _page("Not found", '<p>No such message. <a href="/">All mail</a></p>')
            )

    def _send(self, status: HTTPStatus, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; frame-src 'self'",
        )
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # one line per request on stderr is noise in make run
        pass


class MailPage:
    """The pages served from a background thread; port 0 picks a free one."""

    def __init__(self, maildir: Path, port: int = 0, host: str = HOST) -> None:
        handler = type("Handler", (_Handler,), {"maildir": maildir})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> MailPage:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def serve(port: int, maildir: Path) -> None:
    """Serve the pages in the foreground until Ctrl-C."""
    page = MailPage(maildir, port).start()
    print(f"captured mail at {page.url} (from {maildir})", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        page.stop()
