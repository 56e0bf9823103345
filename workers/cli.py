"""The `remit` command: database, checks, workers, and the ops work of the dashboard from the shell.

Every command reads `.env` from the current directory first (the environment wins over it), or the
file `--env FILE` names (which wins over the environment). The sandbox has its own: `python -m sandbox`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from importlib import import_module, metadata
from pathlib import Path

from workers.commands.common import CommandError
from workers.settings import REQUIRED, SettingsError, get_settings, need_only, process_kind_environ

DATABASE = ("DATABASE_URL",)
BROKER = ("BROKER_URL",)
# Threads per gunicorn worker of the dashboard (workers.run).
DASHBOARD_THREADS = 4


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help that shows each option's default, when it has one (None and a flag's False say nothing)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


class RemitParser(argparse.ArgumentParser):
    """Every command's help shows each option's default (subcommands registered anywhere inherit this)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def command(sub, name: str, help: str, fn, needs=tuple(REQUIRED)) -> argparse.ArgumentParser:
    """Add a subcommand running fn, which needs only the required settings named in `needs`."""
    parser = sub.add_parser(name, help=help, description=help[:1].upper() + help[1:] + ".")
    parser.set_defaults(fn=fn, needs=tuple(needs))
    return parser


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


def require_broker() -> None:
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
    require_broker()
    os.environ.update(process_kind_environ("worker", args.threads))
    return run_worker(
        args.group, processes=args.processes, threads=args.threads, poll_timeout_ms=args.poll_timeout_ms
    )


def cmd_clock(args: argparse.Namespace) -> int:
    from schedules.clock import run_clock

    require_database(get_settings().database_url, schema=True)
    require_broker()
    os.environ.update(process_kind_environ("clock"))
    return run_clock()


def cmd_webhooks(args: argparse.Namespace) -> int:
    from workers.run import WEBHOOK_THREADS, run_webhooks

    require_database(get_settings().database_url, schema=True)
    require_broker()
    os.environ.update(process_kind_environ("webhooks", WEBHOOK_THREADS))
    return run_webhooks(port=args.port, workers=args.workers, host=args.host)


def cmd_dashboard(args: argparse.Namespace) -> int:
    from workers.run import run_dashboard

    settings = get_settings()
    if not settings.dashboard_operators:
        # A warning, not an exit: honcho would stop the whole stack if this process ended.
        print(
            "remit: neither DASHBOARD_TOKEN nor DASHBOARD_OPERATORS is set; the dashboard answers 503",
            file=sys.stderr,
        )
    require_database(settings.database_url, schema=True)
    os.environ.update(process_kind_environ("dashboard", DASHBOARD_THREADS))
    return run_dashboard(port=args.port, workers=args.workers, host=args.host or settings.dashboard_host)


def _add_core(sub) -> None:
    command(
        sub,
        "check",
        "check every setting and connection (database, broker, Stripe, SMTP) and report",
        cmd_check,
    )
    db = command(sub, "db", "database migrations", None, DATABASE)
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="{upgrade,downgrade}")
    up = command(
        db_sub, "upgrade", "migrate to the latest schema (needs only DATABASE_URL)", cmd_db_upgrade, DATABASE
    )
    up.add_argument("revision", nargs="?", default="head", help="the revision to migrate to")
    down = command(
        db_sub, "downgrade", "migrate down to a revision (base = empty)", cmd_db_downgrade, DATABASE
    )
    down.add_argument("revision", help="the revision to migrate down to, or base")
    _add_processes(sub)


def _add_processes(sub) -> None:
    worker = command(sub, "worker", "run Dramatiq workers for a queue group", cmd_worker)
    worker.add_argument(
        "group", choices=["webhooks", "money", "bulk", "feed", "all"], help="the queues to consume"
    )
    worker.add_argument("--processes", type=int, default=1, help="worker processes")
    worker.add_argument("--threads", type=int, default=4, help="worker threads per process")
    worker.add_argument(
        "--poll-timeout-ms",
        type=int,
        default=None,
        help="longest wait between polls of an idle queue (default: its group's POLL_TIMEOUT_MS)",
    )
    command(sub, "clock", "run the scheduler (one active per database)", cmd_clock)
    hooks = command(sub, "webhooks", "serve the Stripe webhook receiver", cmd_webhooks)
    hooks.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8001")), help="port (or PORT)")
    hooks.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WEBHOOK_WORKERS", "2")),
        help="processes (or WEBHOOK_WORKERS)",
    )
    hooks.add_argument(
        "--host",
        default=os.environ.get("WEBHOOK_HOST", "0.0.0.0"),
        help="address to bind (or WEBHOOK_HOST; the sandbox uses 127.0.0.1)",
    )
    # The processes a serving command execs load every setting, so these check them all up front.
    dash = command(
        sub,
        "dashboard",
        "serve the ops dashboard (needs DASHBOARD_TOKEN or DASHBOARD_OPERATORS)",
        cmd_dashboard,
    )
    dash.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8002")), help="port (or PORT)")
    dash.add_argument("--workers", type=int, default=1, help="gunicorn worker processes")
    dash.add_argument("--host", default=None, help="bind address (default: DASHBOARD_HOST, else 127.0.0.1)")


# Modules adding subcommands beyond the core ones: each has register(sub), which adds its commands with
# command(sub, ...). A new group of commands is one more line here.
COMMAND_MODULES = (
    "workers.commands.failed",
    "workers.commands.jobs",
    "workers.commands.payments",
    "workers.commands.queues",
    "workers.feed_cli",  # the ERP ledger feed's ops: remit feed endpoint|retire-secrets|status|replay
    "workers.import_cli",  # remit import accounts|invoices|payments FILE.csv
)


def add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--env",
        metavar="FILE",
        default=None,
        help="read settings from FILE over the environment (default: ./.env if present, under it)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")


def version() -> str:
    try:
        return metadata.version("remit")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = RemitParser(prog="remit", description=__doc__)
    add_common_options(parser)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=RemitParser)
    _add_core(sub)
    for name in COMMAND_MODULES:
        import_module(name).register(sub)
    return parser


def load_env_file(path: str | None) -> None:
    """Load `path` over the environment, or ./.env under it; a named file that is missing is an error."""
    from dotenv import load_dotenv

    if path is None:
        load_dotenv(Path.cwd() / ".env", override=False)
        return
    if not Path(path).is_file():
        raise CommandError(f"--env {path}: no such file")
    load_dotenv(path, override=True)


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser, argv, "remit")


def run_command(build: Callable[[], argparse.ArgumentParser], argv: list[str] | None, name: str) -> int:
    """Run the command argv names; a bad setting or a refused command exits 2 with its reason.

    The env file is read before the parser is built, so the defaults it shows (ports, hosts) are its.
    """
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--env", default=None)
    try:
        load_env_file(early.parse_known_args(argv)[0].env)
    except CommandError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    args = build().parse_args(argv)
    try:
        need_only(*getattr(args, "needs", REQUIRED))
        os.environ.update(process_kind_environ("command"))  # a process command changes it before it execs
        return args.fn(args)
    except (SettingsError, CommandError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
