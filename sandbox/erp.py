"""`python -m sandbox erp`: a reference receiver for Remit's ledger feed, as a seller's ERP would run one.

It checks each delivery's Remit-Signature against its secrets (refusing a bad or stale one with 400), logs
every event it accepts, answers a duplicate 200 without applying it again, and reports a gap in a
seller's sequence numbers (events abandoned after three days of failures, to be replayed by ops).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from typing import Any

from tasks.domain.feed import SIGNATURE_HEADER, verify_signature

_log = logging.getLogger("sandbox.erp")
# Bodies are one event each; anything larger is not a feed delivery.
MAX_BODY_BYTES = 1_000_000


@dataclass
class Ledger:
    """What the receiver has taken in: events by seller and sequence, and the gaps it saw."""

    secrets: list[str]
    events: list[dict[str, Any]] = field(default_factory=list)
    last_sequence: dict[int, int] = field(default_factory=dict)
    gaps: list[tuple[int, int, int]] = field(default_factory=list)  # (seller, first missing, last missing)
    refused: int = 0
    duplicates: int = 0
    on_event: Callable[[dict[str, Any]], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, event: dict[str, Any]) -> None:
        """Apply an event once; note a gap before it."""
        seller, sequence = event["seller_id"], event["sequence"]
        with self.lock:
            last = self.last_sequence.get(seller, 0)
            if sequence <= last:
                self.duplicates += 1
                _log.info("seller %s #%s %s: already applied", seller, sequence, event["type"])
                return
            if sequence > last + 1:
                self.gaps.append((seller, last + 1, sequence - 1))
                _log.warning("seller %s: GAP, events %s to %s missing", seller, last + 1, sequence - 1)
            self.last_sequence[seller] = sequence
            self.events.append(event)
        _log.info("seller %s #%s %s %s", seller, sequence, event["type"], _summary(event["data"]))
        if self.on_event is not None:
            self.on_event(event)


def _summary(data: dict[str, Any]) -> str:
    keys = ("payment_id", "invoice_id", "external_payment_id", "payment_method_id", "amount_minor", "status")
    return " ".join(f"{k}={data[k]}" for k in keys if data.get(k) is not None)


def handler_for(ledger: Ledger) -> type[BaseHTTPRequestHandler]:
    class FeedHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the feed posts event after event on one connection
        timeout = 60  # an idle kept-alive connection is closed after a minute
        # Headers and body go out in two writes: with Nagle on, the body waits for the client's delayed ACK
        # (40 ms a delivery).
        disable_nagle_algorithm = True

        def do_POST(self) -> None:  # noqa: N802  (http.server's name)
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                return self._answer(413, "too large")
            body = self.rfile.read(length)
            header = self.headers.get(SIGNATURE_HEADER) or ""
            if not verify_signature(header, body, ledger.secrets, int(time.time())):
                ledger.refused += 1
                _log.warning("refused a delivery: bad or stale %s", SIGNATURE_HEADER)
                return self._answer(400, "bad signature")
            ledger.take(json.loads(body))
            return self._answer(200, "ok")

        def _answer(self, status: int, text: str) -> None:
            payload = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (http.server's signature)
            pass  # the ledger logs what matters

    return FeedHandler


class _Server(ThreadingHTTPServer):
    # A thread per connection, so a kept-alive connection never holds the door shut to another (a replay,
    # a second worker); Ledger.take applies one event at a time, and the feed posts one at a time per seller.
    allow_reuse_address = True
    daemon_threads = True


def make_server(port: int, secrets: list[str], host: str = "127.0.0.1") -> tuple[HTTPServer, Ledger]:
    """A receiver bound to host:port (0 = any free port) and the ledger it fills."""
    ledger = Ledger(secrets)
    return _Server((host, port), handler_for(ledger)), ledger


def serve(port: int, secrets: list[str]) -> None:
    """Run the receiver in the foreground, logging every event it takes."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s erp %(message)s")
    server, _ = make_server(port, secrets)
    _log.info("reference ERP receiver on http://127.0.0.1:%s/ (%d secret(s))", port, len(secrets))
    server.serve_forever()


# The sandbox's own secret, for the demo seller's endpoint; a real ERP gets one from `remit feed endpoint`.
SANDBOX_SECRET = "rfsec_sandbox_local_erp"
# Fixed so the README can name it; a taken port falls back to a free one.
SANDBOX_PORT = 8003
_running: dict[str, Ledger] = {}


def start_erp() -> Ledger:
    """The reference receiver for `make run`, in a thread; its URL in SANDBOX_ERP_URL for the demo."""
    import os

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("remit: erp: %(message)s"))
    _log.addHandler(handler)
    _log.setLevel(logging.INFO)
    try:
        server, ledger = make_server(SANDBOX_PORT, [SANDBOX_SECRET])
    except OSError:
        server, ledger = make_server(0, [SANDBOX_SECRET])
    threading.Thread(target=server.serve_forever, name="sandbox-erp", daemon=True).start()
    os.environ["SANDBOX_ERP_URL"] = f"http://127.0.0.1:{server.server_address[1]}/remit/feed"
    _running["ledger"] = ledger
    return ledger


def running_ledger() -> Ledger | None:
    """The receiver start_erp runs in this process, if any."""
    return _running.get("ledger")
