"""Prometheus text exposition of the overview: Dramatiq's own middleware has no queue depth or age."""

from __future__ import annotations

from workers.dashboard.overview import IN_FLIGHT, Overview


def render_metrics(overview: Overview) -> str:
    """The overview as Prometheus text format 0.0.4; a missing age exports as 0 so alerts never go absent."""
    lines: list[str] = []
    _family(
        lines,
        "remit_queue_messages",
        "gauge",
        "Messages in the broker per queue and state.",
        [
            ({"queue": s.queue, "state": state}, value)
            for s in overview.queues
            for state, value in s.states.items()
        ],
    )
    _family(
        lines,
        "remit_queue_oldest_age_seconds",
        "gauge",
        "Age of the oldest waiting message per queue.",
        [({"queue": s.queue}, s.oldest_age_seconds or 0) for s in overview.queues],
    )
    _family(
        lines,
        "remit_queue_up",
        "gauge",
        "1 when the broker's queues could be read.",
        [({}, 0 if overview.queues_error else 1)],
    )
    _family(
        lines,
        "remit_failed_jobs",
        "gauge",
        "Rows in failed_jobs per status.",
        [({"status": status}, count) for status, count in overview.failed_by_status.items()],
    )
    _family(
        lines,
        "remit_payments",
        "gauge",
        "Payments per status.",
        [({"status": row.label}, row.count) for row in overview.payments],
    )
    in_flight = {status.value for status in IN_FLIGHT}
    _family(
        lines,
        "remit_oldest_in_status_seconds",
        "gauge",
        "Seconds since the oldest payment in each in-flight status last changed; "
        "for scheduled, how long the oldest past-due scheduled payment is overdue.",
        [
            *(
                ({"status": row.label}, row.oldest_seconds or 0)
                for row in overview.payments
                if row.label in in_flight
            ),
            ({"status": "scheduled"}, overview.scheduled_past_due.oldest_seconds or 0),
        ],
    )
    drift_lines(lines, overview)
    return "\n".join(lines) + "\n"


def drift_lines(lines: list[str], overview: Overview) -> None:
    """Balance drift: every recompute that found stored figures the ledger disagrees with, and the last hour's
    drifted accounts (what the hourly pass reports)."""
    _family(
        lines,
        "remit_balance_drifts_total",
        "counter",
        "Recomputes that found an account's stored figures differ from the ledger with no money movement.",
        [({}, overview.balance_drifts_total)],
    )
    _family(
        lines,
        "remit_balance_drifted_accounts",
        "gauge",
        "Accounts found drifted in the last hour (one full balance pass).",
        [({}, overview.balance_drifts.count)],
    )


def _family(lines: list[str], name: str, kind: str, help_text: str, samples) -> None:
    lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        lines.append(f"{name}{_labels(labels)} {_number(value)}")


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"
