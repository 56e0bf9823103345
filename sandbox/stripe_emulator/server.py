"""The HTTP layer: a threading HTTP/1.1 server handing `/v1` to the API pipeline, `/_emulator` to control."""

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from . import api, control, three_d_secure


class Server(ThreadingHTTPServer):
    """One thread per connection; threads never keep the process alive."""

    daemon_threads = True
    allow_reuse_address = True
    # The SDK and benchmarks open many connections at once.
    request_queue_size = 128

    def __init__(self, address, emulator):
        self.emulator = emulator
        super().__init__(address, Handler)


class Handler(BaseHTTPRequestHandler):
    """Parses one request and writes its answer with Content-Length so keep-alive works."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes; without this each answer waits ~40 ms for Nagle.
    disable_nagle_algorithm = True
    server_version = "stripe-emulator"

    def do_GET(self):
        """Handle GET."""
        self._dispatch()

    def do_POST(self):
        """Handle POST."""
        self._dispatch()

    def do_DELETE(self):
        """Handle DELETE."""
        self._dispatch()

    def _dispatch(self):
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        emu = self.server.emulator
        if parts.path.startswith("/_emulator"):
            response = control.process(emu, self.command, parts.path, parts.query, body)
        elif parts.path == three_d_secure.PATH:
            response = three_d_secure.process(emu, self.command, parts.query, body)
        else:
            response = api.process(emu, self.command, parts.path, parts.query, body, self.headers)
        self._write(response)

    def _write(self, response):
        if response.drop:
            # Done on purpose: the client must see a connection error after the work was committed.
            self.close_connection = True
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def log_message(self, format, *args):
        """Stay quiet; the request log is in `Emulator.requests()`."""
