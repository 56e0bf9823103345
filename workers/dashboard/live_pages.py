"""The live overview (it reloads itself every few seconds, or not, as chosen) and /metrics for Prometheus."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from db.queries import dashboard as dashboard_rows
from schedules.schedule import SCHEDULE
from tasks.flows import ops
from workers import telemetry
from workers.dashboard.http import Request, Response, redirect
from workers.dashboard.metrics import OverviewCollector
from workers.dashboard.overview import Chart, build_overview, queue_alert
from workers.dashboard.params import choice_filter
from workers.dashboard.queues import QueuesUnavailable, read_queue_stats, read_waiting

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


def schedule(dash, request: Request, subject) -> Response:
    """The clock's jobs: how often each runs, when it was last sent, whether that is overdue; Run now."""
    now = dash.clock()
    with dash.sessions() as session:
        last = dashboard_rows.list_last_schedule_runs(session)
    rows = [(job, last.get(job.name)) for job in SCHEDULE]
    return dash.page(
        200,
        "schedule.html",
        subject,
        title="Schedule",
        rows=rows,
        now=now,
        overdue=lambda job, at: at is None or (now - at).total_seconds() > 3 * job.every_seconds,
        flash="Sent: it runs as soon as a maintenance worker takes it." if request.query.get("done") else "",
    )


def queue_page(dash, request: Request, subject, queue: str) -> Response:
    """One queue: its counts and the messages waiting at its head."""
    if queue not in dash.queues:
        return dash.not_found(subject, "No such queue.")
    now_ms = int(dash.clock().timestamp() * 1000)
    try:
        [stats] = read_queue_stats(dash.broker, (queue,), now_ms)
        waiting, error = read_waiting(dash.broker, queue, now_ms), ""
    except QueuesUnavailable as unavailable:
        stats, waiting, error = None, [], str(unavailable)
    return dash.page(
        200,
        "queue.html",
        subject,
        title=f"Queue {queue}",
        queue=queue,
        stats=stats,
        waiting=waiting,
        error=error,
    )


def actors(dash, request: Request, subject) -> Response:
    """Every declared actor's last hour: runs, failures, average time, and runs per minute."""
    client, namespace = getattr(dash.broker, "client", None), getattr(dash.broker, "namespace", None)
    if client is None:
        return dash.page(200, "message.html", subject, title="Actors", message="Only readable on Redis.")
    names = sorted(dash.broker.get_declared_actors())
    rows = [
        ActorRow.of(name, dash.broker.get_actor(name).queue_name, counts)
        for name, counts in telemetry.read_actors(client, namespace, names, dash.clock().timestamp()).items()
    ]
    rows.sort(key=lambda r: (-r.runs, r.actor))
    return dash.page(200, "actors.html", subject, title="Actors, last hour", rows=rows)


@dataclass(frozen=True)
class ActorRow:
    actor: str
    queue: str
    processed: int
    failed: int
    average_ms: int | None
    per_minute: Chart

    @property
    def runs(self) -> int:
        return self.processed + self.failed

    @classmethod
    def of(cls, actor: str, queue: str, counts: dict[str, list[int]]) -> ActorRow:
        processed, failed, ms = sum(counts["processed"]), sum(counts["failed"]), sum(counts["ms"])
        runs = [p + f for p, f in zip(counts["processed"], counts["failed"])]
        average = ms // (processed + failed) if processed + failed else None
        return cls(actor, queue, processed, failed, average, Chart(actor, runs))


def run_now(dash, request: Request, subject, job_name: str) -> Response:
    if ops.run_job_now(job_name, subject.operator.name, dash.clock()) == ops.Done.NOT_FOUND:
        return dash.not_found(subject, "No such scheduled job.")
    return redirect("/schedule", done="sent")


ROUTES = [
    ("GET", r"/", overview),
    ("GET", r"/metrics", metrics),
    ("GET", r"/schedule", schedule),
    ("GET", r"/actors", actors),
    ("GET", r"/queues/([a-z_]{1,64})", queue_page),
    ("POST", r"/schedule/([a-z0-9-]{1,64})/run", run_now),
]
