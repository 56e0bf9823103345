"""The overview as Prometheus gauges (Dramatiq's own metrics have no queue depth or age): a collector the
/metrics page registers for one scrape."""

from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from workers.dashboard.overview import IN_FLIGHT, Overview


class OverviewCollector:
    """Yields the overview's numbers; a missing age exports as 0 so alerts never go absent."""

    def __init__(self, overview: Overview) -> None:
        self.o = overview

    def collect(self):
        o = self.o
        yield _gauge(
            "remit_queue_messages",
            "Messages in the broker per queue and state.",
            ["queue", "state"],
            [((s.queue, state), value) for s in o.queues for state, value in s.states.items()],
        )
        yield _gauge(
            "remit_queue_oldest_age_seconds",
            "Age of the oldest waiting message per queue.",
            ["queue"],
            [((s.queue,), s.oldest_age_seconds or 0) for s in o.queues],
        )
        yield _gauge(
            "remit_queue_up",
            "1 when the broker's queues could be read.",
            [],
            [((), 0 if o.queues_error else 1)],
        )
        yield _gauge(
            "remit_failed_jobs",
            "Rows in failed_jobs per status.",
            ["status"],
            [((status,), count) for status, count in o.failed_by_status.items()],
        )
        yield _gauge(
            "remit_payments", "Payments per status.", ["status"], [((r.label,), r.count) for r in o.payments]
        )
        in_flight = {status.value for status in IN_FLIGHT}
        yield _gauge(
            "remit_oldest_in_status_seconds",
            "Seconds since the oldest payment in each in-flight status last changed; "
            "for scheduled, how long the oldest past-due scheduled payment is overdue.",
            ["status"],
            [((r.label,), r.oldest_seconds or 0) for r in o.payments if r.label in in_flight]
            + [(("scheduled",), o.scheduled_past_due.oldest_seconds or 0)],
        )
        yield _gauge(
            "remit_worker_processes", "Worker processes with a live heartbeat.", [], [((), len(o.processes))]
        )
        yield CounterMetricFamily(
            "remit_balance_drifts",
            "Accounts whose stored figures differed from the ledger with no money movement (drift records).",
            value=o.balance_drifts_total,
        )
        yield _gauge(
            "remit_balance_drifted_accounts",
            "Accounts found drifted in the last hour (one full balance pass).",
            [],
            [((), o.balance_drifts.count)],
        )
        yield _gauge(
            "remit_health_rule_firing",
            "1 while a dashboard health rule fires.",
            ["rule"],
            [((r.name,), int(r.firing)) for r in o.rules],
        )


def _gauge(name: str, help_text: str, labels: list[str], samples) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_text, labels=labels)
    for values, value in samples:
        family.add_metric(list(values), value)
    return family
