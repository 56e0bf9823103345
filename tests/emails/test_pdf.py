"""html_to_pdf: a real PDF, made without reaching any other host."""

import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pypdf import PdfReader

from emails.pdf import html_to_pdf


def test_a_page_becomes_a_pdf_and_its_remote_resources_are_never_fetched():
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        pdf = html_to_pdf(
            f'<link rel="stylesheet" href="{base}/style.css"><h1>Receipt</h1>'
            f'<img src="{base}/logo.png"><img src="file:///etc/hostname">'
        )
    finally:
        server.shutdown()
        server.server_close()
    assert hits == []
    assert "Receipt" in PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
