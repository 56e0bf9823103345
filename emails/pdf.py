"""HTML pages made into PDF documents by WeasyPrint (which needs Pango: `make install` sets it up)."""

from __future__ import annotations


def html_to_pdf(html: str) -> bytes:
    """The page as a PDF; a remote resource (a seller's logo URL) is left out rather than fetched."""
    # Imported here: WeasyPrint takes ~2.5 s to import, and only the few processes making PDFs need it.
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    # Only data: URLs: a PDF made during a request must not wait on, or reach, another host.
    fetcher = URLFetcher(allowed_protocols=("data",), timeout=1)
    return HTML(string=html, url_fetcher=fetcher).write_pdf()
