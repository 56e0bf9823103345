"""`remit failed list|show|retry|discard`: the dashboard's dead-letter work from the shell."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from db.queries import failed_jobs as failed_job_rows
from tasks.domain.dead_letters import DeadLetterFilter
from tasks.domain.states import FailedJobStatus
from workers.commands.common import CommandError, ask, parse_since, short

# Rows per transaction of a bulk retry or discard, and how often progress is reported.
BATCH_ROWS = 200
# A screenful by default; --limit shows more.
LIST_LIMIT = 50
STATUS_CHOICES = [*(s.value for s in FailedJobStatus), "any"]


def cmd_list(args: argparse.Namespace) -> int:
    from db.session import get_sessionmaker

    f = _filter(args)
    with get_sessionmaker()() as session:
        total = failed_job_rows.count_failed_jobs(session, f)
        rows = failed_job_rows.list_newest_failed_jobs(session, f, args.limit)
    print(f"{'id':>6}  {'status':<9}  {'failed at (UTC)':<19}  {'queue':<11}  {'actor':<24}  tries  error")
    for job in rows:
        print(
            f"{job.id:>6}  {job.status:<9}  {job.failed_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}  "
            f"{job.queue:<11}  {job.actor:<24}  {job.attempts:>5}  {short(job.error, 70)}"
        )
    print(
        f"{len(rows)} of {total} failed job(s) shown{' (--limit to see more)' if total > len(rows) else ''}"
    )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from db.queries.dashboard import find_failed_job
    from db.session import get_sessionmaker

    with get_sessionmaker()() as session:
        job = find_failed_job(session, args.id)
    if job is None:
        raise CommandError(f"no failed job {args.id}")
    for label, value in [
        ("id", job.id),
        ("status", job.status),
        ("queue", job.queue),
        ("actor", job.actor),
        ("args", json.dumps(job.args)),
        ("kwargs", json.dumps(job.kwargs)),
        ("attempts", job.attempts),
        ("failed at", f"{job.failed_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"),
        ("retried at", f"{job.retried_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" if job.retried_at else "-"),
        ("message id", job.message_id),
        ("error", job.error),
    ]:
        print(f"{label + ':':<12}{value}")
    print("traceback:\n" + (job.traceback or "(none recorded)"))
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    return _act(args, "retry", _retry_one())


def cmd_discard(args: argparse.Namespace) -> int:
    return _act(args, "discard", _discard_one())


# One row at a time through the dashboard's own bulk actions (tasks.flows.dead_letters: a conditional
# UPDATE claims each row, so a second run or a concurrent click does nothing twice), audited as the
# shell user; the selection's progress and per-row outcomes stay the command's.
def _retry_one() -> Callable[[int], str]:
    import workers.actors  # noqa: F401  (the broker must know every actor to send a dead letter to it)
    from tasks.flows.dead_letters import retry_ids

    operator = _operator()
    return lambda job_id: _outcome(retry_ids([job_id], operator, datetime.now(UTC)), "retried")


def _discard_one() -> Callable[[int], str]:
    from tasks.flows.dead_letters import discard_ids

    operator = _operator()
    return lambda job_id: _outcome(discard_ids([job_id], operator, datetime.now(UTC)), "discarded")


def _outcome(done, verb: str) -> str:
    if done.broker_down:
        return "broker_down"
    if done.unknown_actor:
        return "unknown_actor"
    return verb if done.moved else f"already_{verb}"


def _operator() -> str:
    """Who the audit log names for a command run from the shell."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"[:64]
    except (KeyError, OSError):
        return "cli"


def _act(args: argparse.Namespace, verb: str, act: Callable[[int], str]) -> int:
    if args.ids and (args.all or _filtered(args)):
        raise CommandError(f"name ids or a selection (filters, --all) to {verb}, not both")
    if not args.ids and not (args.all or _filtered(args)):
        raise CommandError(
            f"name the failed jobs to {verb}: ids, filters (see --help), or --all for every one"
        )
    if args.ids:
        outcomes = Counter(str(act(job_id)) for job_id in args.ids)
    else:
        outcomes = _act_on_selection(args, verb, act, _filter(args))
        if outcomes is None:
            return 1
    print(", ".join(f"{outcome} {count}" for outcome, count in sorted(outcomes.items())) or "nothing matched")
    return 0 if set(outcomes) <= {"retried", "discarded", "already_retried", "already_discarded"} else 1


def _act_on_selection(args, verb: str, act: Callable[[int], str], f: DeadLetterFilter) -> Counter | None:
    from db.session import get_sessionmaker

    with get_sessionmaker()() as session:
        total = failed_job_rows.count_failed_jobs(session, f)
    if total == 0:
        return Counter()
    if not args.yes and not ask(f"{verb} {total} failed job(s) ({_describe(f)})?"):
        print("nothing done", file=sys.stderr)
        return None
    outcomes: Counter = Counter()
    for done, job_id in enumerate(_matching_ids(f), start=1):
        outcomes[str(act(job_id))] += 1
        if done % BATCH_ROWS == 0 or done == total:
            print(f"{verb}: {done} of {total} done", file=sys.stderr, flush=True)
    return outcomes


def _matching_ids(f: DeadLetterFilter) -> Iterator[int]:
    """Every matching id as of now, in batches, lowest first; rows acted on leave the match or are passed.
    Any status may be selected: f.status alone narrows it, so the command acts on what it counted."""
    from db.session import get_sessionmaker

    after = 0
    while True:
        with get_sessionmaker()() as session:
            batch = failed_job_rows.list_failed_job_ids(session, f, tuple(FailedJobStatus), after, BATCH_ROWS)
        if not batch:
            return
        yield from batch
        after = batch[-1]


def _filtered(args: argparse.Namespace) -> bool:
    return any([args.queue, args.actor, args.error, args.since])


def _filter(args: argparse.Namespace) -> DeadLetterFilter:
    """The dashboard's filter for these options, so both select the same rows; status any is no status."""
    return DeadLetterFilter(
        queue=args.queue or "",
        actor=args.actor or "",
        status="" if args.status == "any" else args.status,
        error=args.error or "",
        since=parse_since(args.since) if args.since else None,
    )


def _describe(f: DeadLetterFilter) -> str:
    parts = [f"status {f.status or 'any'}"]
    parts += [
        f"{name} ~ {value!r}"
        for name, value in (("queue", f.queue), ("actor", f.actor), ("error", f.error))
        if value
    ]
    if f.since:
        parts.append(f"since {f.since.astimezone(UTC):%Y-%m-%d %H:%M} UTC")
    return ", ".join(parts)


def _add_filters(parser: argparse.ArgumentParser, status_default: str) -> None:
    parser.add_argument("--queue", default=None, help="only queues whose name contains this (any case)")
    parser.add_argument("--actor", default=None, help="only actors whose name contains this (any case)")
    parser.add_argument(
        "--error", default=None, help="only errors or tracebacks containing this text (any case)"
    )
    parser.add_argument(
        "--since",
        default=None,
        help="only failures since: a duration back (90s, 30m, 2h, 7d) or a date/time (UTC)",
    )
    parser.add_argument("--status", choices=STATUS_CHOICES, default=status_default, help="only this status")


def _add_selection(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument("ids", nargs="*", type=int, help=f"failed job ids to {verb}")
    _add_filters(parser, FailedJobStatus.DEAD)
    parser.add_argument("--all", action="store_true", help=f"{verb} every failed job the filters select")
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask before acting on a selection")


def register(sub) -> None:
    from workers.cli import DATABASE, command

    both = ("DATABASE_URL", "BROKER_URL")
    failed = command(sub, "failed", "dead letters: list, show, retry or discard them", None, DATABASE)
    verbs = failed.add_subparsers(dest="failed_command", required=True, metavar="{list,show,retry,discard}")
    listing = command(verbs, "list", "list failed jobs, newest first", cmd_list, DATABASE)
    _add_filters(listing, FailedJobStatus.DEAD)
    listing.add_argument("--limit", type=int, default=LIST_LIMIT, help="show at most this many")
    show = command(verbs, "show", "show one failed job with its arguments and traceback", cmd_show, DATABASE)
    show.add_argument("id", type=int, help="the failed job's id")
    retry = command(verbs, "retry", "send failed jobs to their actor again (safe to repeat)", cmd_retry, both)
    _add_selection(retry, "retry")
    discard = command(
        verbs, "discard", "set failed jobs aside for good (safe to repeat)", cmd_discard, DATABASE
    )
    _add_selection(discard, "discard")
