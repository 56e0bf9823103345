"""The `remit` command: database, checks and workers (the sandbox has its own: `python -m sandbox`)."""

from __future__ import annotations

import argparse
import os
import sys

from workers import feed_cli, import_cli
from workers.settings import SettingsError, get_settings


def cmd_check(args: argparse.Namespace) -> int:
    from workers.check import run_checks

    findings = run_checks(get_settings())
    for finding in findings:
        print(finding.line())
    missing = [f for f in findings if not f.ok]
    print("all good" if not missing else f"{len(missing)} problem(s) found")
    return 0 if not missing else 1


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from db.migrate import current_revision, head_revision, upgrade

    url = get_settings().database_url
    require_database(url)
    upgrade(url, args.revision)
    print(f"database at migration {current_revision(url)} (latest is {head_revision()})")
    return 0


def cmd_db_downgrade(args: argparse.Namespace) -> int:
    from db.migrate import current_revision, downgrade

    url = get_settings().database_url
    require_database(url)
    downgrade(url, args.revision)
    print(f"database at migration {current_revision(url) or 'none'}")
    return 0


def require_database(url: str, schema: bool = False) -> None:
    from workers.check import check_database

    findings = check_database(url)
    problems = [f for f in findings[: 2 if schema else 1] if not f.ok]
    if problems:
        raise CommandError(problems[0].detail)


class CommandError(Exception):
    """A command cannot go on; the message says why and what to do."""


def _require_broker() -> None:
    from workers.check import check_broker

    finding = check_broker(get_settings())
    if not finding.ok:
        raise CommandError(finding.detail)


def cmd_worker(args: argparse.Namespace) -> int:
    from workers.run import run_worker, worker_environ

    try:
        worker_environ(args.group, args.threads, args.poll_timeout_ms)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    require_database(get_settings().database_url, schema=True)
    _require_broker()
    return run_worker(
        args.group, processes=args.processes, threads=args.threads, poll_timeout_ms=args.poll_timeout_ms
    )


def cmd_clock(args: argparse.Namespace) -> int:
    from schedules.clock import run_clock

    require_database(get_settings().database_url, schema=True)
    _require_broker()
    return run_clock()


def cmd_webhooks(args: argparse.Namespace) -> int:
    from workers.run import run_webhooks

    require_database(get_settings().database_url, schema=True)
    _require_broker()
    return run_webhooks(port=args.port, workers=args.workers, host=args.host)


def cmd_dashboard(args: argparse.Namespace) -> int:
    from workers.run import run_dashboard

    settings = get_settings()
    if not settings.dashboard_token:
        # A warning, not an exit: honcho would stop the whole stack if this process ended.
        print("remit: DASHBOARD_TOKEN is not set; the dashboard answers 503 until it is", file=sys.stderr)
    require_database(settings.database_url, schema=True)
    return run_dashboard(port=args.port, workers=args.workers, host=args.host or settings.dashboard_host)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="remit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="connect to the database and broker and report").set_defaults(fn=cmd_check)

    db = sub.add_parser("db", help="database commands").add_subparsers(dest="db_command", required=True)
    up = db.add_parser("upgrade", help="migrate to the latest schema")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(fn=cmd_db_upgrade)
    down = db.add_parser("downgrade", help="migrate down to a revision (base = empty)")
    down.add_argument("revision")
    down.set_defaults(fn=cmd_db_downgrade)

    worker = sub.add_parser("worker", help="run Dramatiq workers for a queue group")
    worker.add_argument("group", choices=["webhooks", "money", "bulk", "feed", "all"])
    worker.add_argument("--processes", type=int, default=1)
    worker.add_argument("--threads", type=int, default=4)
    worker.add_argument(
        "--poll-timeout-ms",
        type=int,
        default=None,
        help=(
            "longest wait between polls of an idle queue "
            "(default: the group's, workers/run.py POLL_TIMEOUT_MS)"
        ),
    )
    worker.set_defaults(fn=cmd_worker)

    sub.add_parser("clock", help="run the scheduler (one active per database)").set_defaults(fn=cmd_clock)

    hooks = sub.add_parser("webhooks", help="serve the Stripe webhook receiver")
    hooks.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8001")))
    hooks.add_argument("--workers", type=int, default=2)
    hooks.add_argument(
        "--host",
        default=os.environ.get("WEBHOOK_HOST", "0.0.0.0"),
        help="address to bind (default 0.0.0.0, or WEBHOOK_HOST; the sandbox uses 127.0.0.1)",
    )
    hooks.set_defaults(fn=cmd_webhooks)

    dash = sub.add_parser("dashboard", help="serve the ops dashboard (needs DASHBOARD_TOKEN)")
    dash.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8002")))
    dash.add_argument("--workers", type=int, default=1)
    dash.add_argument("--host", default=None, help="bind address (default DASHBOARD_HOST, else 127.0.0.1)")
    dash.set_defaults(fn=cmd_dashboard)

    for commands in (feed_cli, import_cli):  # their own modules: the ERP feed's ops and `remit import`
        commands.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), argv, "remit")


def run_command(parser: argparse.ArgumentParser, argv: list[str] | None, name: str) -> int:
    """Run the command argv names; a bad setting or a refused command exits 2 with its reason."""
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except (SettingsError, CommandError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
