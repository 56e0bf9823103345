"""The live overview (it reloads itself every few seconds, or not, as chosen) and /metrics for Prometheus."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from workers.dashboard.http import Request, Response
from workers.dashboard.metrics import OverviewCollector
from workers.dashboard.overview import build_overview, queue_alert
from workers.dashboard.params import choice_filter

# Seconds between reloads the overview offers; "0" pauses. Ten is fresh without loading the database.
REFRESH_CHOICES = {"0": "paused", "5": "5 s", "10": "10 s", "30": "30 s", "60": "1 min"}
DEFAULT_REFRESH = "10"


def overview(dash, request: Request, subject) -> Response:
    refresh = choice_filter(request.query, "refresh", REFRESH_CHOICES) or DEFAULT_REFRESH
    now = dash.clock()
    with dash.sessions() as session:
        o = build_overview(session, dash.broker, dash.queues, now)
    return dash.page(
        200,
        "overview.html",
        subject,
        title="Overview",
        o=o,
        queue_alert=queue_alert,
        refresh=int(refresh),
        refresh_choices=REFRESH_CHOICES,
        as_of=now,
    )


def metrics(dash, request: Request, subject) -> Response:
    """The overview's gauges, then the counters and histograms (every process's, in multiprocess mode)."""
    with dash.sessions() as session:
        o = build_overview(session, dash.broker, dash.queues, dash.clock())
    gauges = CollectorRegistry(auto_describe=True)
    gauges.register(OverviewCollector(o))
    body = generate_latest(gauges) + generate_latest(_process_registry(dash.metrics_dir))
    return Response(200, body, "text/plain; version=0.0.4; charset=utf-8")


def _process_registry(metrics_dir: str | None):
    if not metrics_dir:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=metrics_dir)
    return registry


ROUTES = [
    ("GET", r"/", overview),
    ("GET", r"/metrics", metrics),
]
