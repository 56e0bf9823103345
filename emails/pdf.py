"""HTML pages made into PDF documents by WeasyPrint (which needs Pango: `make install` sets it up)."""

from __future__ import annotations

from typing import Any


class RemoteResourceRefused(ValueError):
    """A page asked for a resource over the network; a PDF is made from what the page holds, nothing else."""


def html_to_pdf(html: str) -> bytes:
    """The page as a PDF; a remote image (a seller's logo URL) is left out rather than fetched."""
    # Imported here: WeasyPrint takes ~2.5 s to import, and only the few processes making PDFs need it.
    from weasyprint import HTML

    return HTML(string=html, url_fetcher=_refuse_remote).write_pdf()


def _refuse_remote(url: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """No fetch while rendering: a request-time PDF must not wait on, or reach, another host."""
    raise RemoteResourceRefused(f"not fetched while making a PDF: {url[:80]}")
