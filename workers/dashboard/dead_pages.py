"""Dead-letter pages: a searchable list with selection, one dead letter, and retry or discard of a row, a
selection or everything a filter matches (tasks.flows.dead_letters does the work)."""

from __future__ import annotations

from urllib.parse import urlencode

from db.queries import dashboard as dashboard_rows
from tasks.domain.dead_letters import DeadLetterFilter, parse_search
from tasks.domain.states import FailedJobStatus
from tasks.flows import dead_letters
from tasks.flows.dead_letters import Bulk
from workers.dashboard.http import Request, Response, redirect
from workers.dashboard.params import BadParameter, choice_filter, id_list, page_number, text_filter

# Where a dead letter's first argument leads, by actor: the row the message was about.
SUBJECT_PAGES = {
    "execute_payment": "/payments/{}",
    "process_stripe_event": "/events/{}",
    "send_email": "/emails/{}",
}
FILTER_FIELDS = ("q", "queue", "actor", "status", "error", "args")
# The bulk form's buttons: what to do, to the checked rows or to every row the filter matches.
BULK_CHOICES = ("retry:selected", "discard:selected", "retry:matching", "discard:matching")


def subject_link(actor: str, args: list) -> str | None:
    """The page of the payment, event or email a dead letter's message concerns, if it names one."""
    page = SUBJECT_PAGES.get(actor)
    if page is None or not args or not isinstance(args[0], int | str) or isinstance(args[0], bool):
        return None
    return page.format(args[0])


def filters_of(values: dict[str, str]) -> dict[str, str]:
    statuses = [s.value for s in FailedJobStatus]
    chosen = {name: text_filter(values, name) for name in FILTER_FIELDS}
    chosen["status"] = choice_filter(values, "status", statuses)
    return chosen


def as_filter(chosen: dict[str, str]) -> DeadLetterFilter:
    base = DeadLetterFilter(**{k: v for k, v in chosen.items() if k != "q"})
    return parse_search(chosen["q"], base) if chosen["q"] else base


def failed_list(dash, request: Request, subject) -> Response:
    chosen = filters_of(request.query)
    wanted = page_number(request.query)
    with dash.sessions() as session:
        page = dashboard_rows.list_failed_jobs(session, as_filter(chosen), page=wanted)
        return dash.page(
            200,
            "failed_list.html",
            subject,
            title="Dead letters",
            jobs=page,
            filters=chosen,
            queues=dash.queues,
            statuses=[s.value for s in FailedJobStatus],
            link=pager(chosen),
            flash=bulk_flash(request.query),
            subject_link=subject_link,
        )


def failed_detail(dash, request: Request, subject, job_id: int) -> Response:
    with dash.sessions() as session:
        job = dashboard_rows.find_failed_job(session, job_id)
        if job is None:
            return dash.not_found(subject, "No such failed job.")
        return dash.page(
            200,
            "failed_detail.html",
            subject,
            title=f"Failed job {job_id}",
            job=job,
            flash=bulk_flash(request.query),
            subject_link=subject_link(job.actor, job.args),
        )


def failed_retry(dash, request: Request, subject, job_id: int) -> Response:
    done = dead_letters.retry_ids(
        [job_id], subject.operator.name, dash.clock(), broker=dash.broker, sessions=dash.sessions
    )
    return _after_one(dash, subject, job_id, done, "retried")


def failed_discard(dash, request: Request, subject, job_id: int) -> Response:
    done = dead_letters.discard_ids(
        [job_id], subject.operator.name, dash.clock(), broker=dash.broker, sessions=dash.sessions
    )
    return _after_one(dash, subject, job_id, done, "discarded")


def _after_one(dash, subject, job_id: int, done: Bulk, verb: str) -> Response:
    with dash.sessions() as session:
        if dashboard_rows.find_failed_job(session, job_id) is None:
            return dash.not_found(subject, "No such failed job.")
    return redirect(f"/failed/{job_id}", **_counts(done, verb))


def failed_bulk(dash, request: Request, subject) -> Response:
    """Retry or discard the checked rows (scope=selected) or every row the filter matches (scope=matching)."""
    wanted = choice_filter(request.form, "do", BULK_CHOICES)
    if not wanted:
        raise BadParameter(f"do must be one of: {', '.join(BULK_CHOICES)}.")
    action, scope = wanted.split(":")
    chosen = filters_of(request.form)
    options = dict(broker=dash.broker, sessions=dash.sessions)
    operator, now = subject.operator.name, dash.clock()
    if scope == "selected":
        ids = id_list(request.form_lists.get("id", []), "id")
        work = dead_letters.retry_ids if action == "retry" else dead_letters.discard_ids
        done = work(ids, operator, now, **options)
    else:
        work = dead_letters.retry_matching if action == "retry" else dead_letters.discard_matching
        done = work(as_filter(chosen), operator, now, **options)
    kept = {k: v for k, v in chosen.items() if v}
    return redirect("/failed", **kept, **_counts(done, "retried" if action == "retry" else "discarded"))


def _counts(done: Bulk, verb: str) -> dict[str, str]:
    counts = {"done": verb, "moved": str(done.moved), "skipped": str(done.skipped)}
    if done.unknown_actor:
        counts["unknown"] = str(done.unknown_actor)
    if done.broker_down:
        counts["broker_down"] = "1"
    return counts


def bulk_flash(query: dict[str, str]) -> str:
    """The sentence a redirect after retry or discard carries in its query."""
    verb = query.get("done", "")
    if verb not in ("retried", "discarded"):
        return ""
    parts = [f"{_number(query, 'moved')} {verb}"]
    if skipped := _number(query, "skipped"):
        parts.append(f"{skipped} already retried or discarded (nothing sent again)")
    if unknown := _number(query, "unknown"):
        parts.append(f"{unknown} left dead: no actor by that name is declared here")
    if query.get("broker_down"):
        parts.append("the broker did not take a message: that batch is still dead, try again")
    return "; ".join(parts) + "."


def _number(query: dict[str, str], name: str) -> int:
    raw = query.get(name, "0")
    return int(raw) if raw.isdigit() and len(raw) < 10 else 0


def pager(chosen: dict[str, str]):
    kept = {k: v for k, v in chosen.items() if v}
    return lambda page: "?" + urlencode({**kept, "page": page})


ROUTES = [
    ("GET", r"/failed", failed_list),
    ("POST", r"/failed/bulk", failed_bulk),
    ("GET", r"/failed/([0-9]+)", failed_detail),
    ("POST", r"/failed/([0-9]+)/retry", failed_retry),
    ("POST", r"/failed/([0-9]+)/discard", failed_discard),
]
