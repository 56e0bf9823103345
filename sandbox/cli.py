"""`python -m sandbox`: the offline stand-ins, the demo data and `make run`'s whole stack."""

from __future__ import annotations

import argparse
from pathlib import Path

from workers.cli import CommandError, RemitParser, add_common_options, require_database, run_command
from workers.settings import get_settings


def cmd_seed(args: argparse.Namespace) -> int:
    from sandbox.seed import seed_demo
    from tasks.domain.errors import StripeMisconfigured, StripeRefused, StripeUnavailable

    settings = get_settings()
    require_database(settings.database_url, schema=True)
    try:
        summary = seed_demo(settings, only_if_empty=args.if_empty)
    except (StripeUnavailable, StripeMisconfigured, StripeRefused) as exc:
        raise CommandError(
            f"the demo's saved methods need Stripe at {settings.stripe_api_base} and it failed "
            f"({type(exc).__name__}); start the emulator (`python -m sandbox stripe`) and point "
            "STRIPE_API_BASE at it. Nothing was seeded."
        ) from None
    print(summary)
    return 0


def cmd_stripe(args: argparse.Namespace) -> int:
    from sandbox.stripe_emulator import serve

    secrets = [s for s in (args.webhook_secrets or "").split(",") if s]
    serve(
        args.port, state_file=args.state_file, webhook_url=args.webhook_url, webhook_secrets=secrets or None
    )
    return 0


def cmd_smtp(args: argparse.Namespace) -> int:
    from sandbox.smtp_capture import serve

    serve(args.port)
    return 0


def cmd_erp(args: argparse.Namespace) -> int:
    from sandbox.erp import SANDBOX_SECRET, serve

    serve(args.port, [s for s in (args.secrets or SANDBOX_SECRET).split(",") if s])
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    from sandbox.dev import run_dev

    return run_dev(reset=args.reset)


def cmd_reset(args: argparse.Namespace) -> int:
    from sandbox.dev import root
    from sandbox.reset import reset_sandbox

    reset_sandbox(root(), say=lambda line: print(f"sandbox: {line}"))
    return 0


def cmd_mail(args: argparse.Namespace) -> int:
    from sandbox.mail_page import serve

    serve(args.port, Path(args.maildir))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = RemitParser(prog="python -m sandbox", description=__doc__)
    add_common_options(parser)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=RemitParser)
    dev = sub.add_parser("dev", help="the whole offline stack in the foreground (make run)")
    dev.add_argument("--reset", action="store_true", help="drop the sandbox's database and state first")
    dev.set_defaults(fn=cmd_dev)
    sub.add_parser(
        "reset",
        help="drop the sandbox's database, Redis keys, emulator state, mail and .env.sandbox (make reset)",
    ).set_defaults(fn=cmd_reset)

    stripe = sub.add_parser("stripe", help="run the Stripe emulator")
    stripe.add_argument("--port", type=int, default=12111, help="port to listen on")
    stripe.add_argument("--state-file", help="keep the emulator's objects in this JSON file across restarts")
    stripe.add_argument("--webhook-url", help="deliver events to this URL")
    stripe.add_argument("--webhook-secrets", help="comma-separated whsec_ secrets to sign deliveries with")
    stripe.set_defaults(fn=cmd_stripe)

    smtp = sub.add_parser("smtp", help="run the SMTP capture server")
    smtp.add_argument("--port", type=int, default=1025, help="port to listen on")
    smtp.set_defaults(fn=cmd_smtp)

    erp = sub.add_parser("erp", help="run the reference ERP receiver of the ledger feed")
    erp.add_argument("--port", type=int, default=8003)
    erp.add_argument("--secrets", help="comma-separated signing secrets (default: the sandbox's)")
    erp.set_defaults(fn=cmd_erp)

    mail = sub.add_parser("mail", help="serve the captured mail as web pages (make run does, on 8025)")
    mail.add_argument("--port", type=int, default=8025, help="port to listen on")
    mail.add_argument("--maildir", default=".remit/mail", help="the directory the SMTP capture writes")
    mail.set_defaults(fn=cmd_mail)

    seed = sub.add_parser("seed", help="load the demo seller, accounts, invoices and saved methods")
    seed.add_argument("--if-empty", action="store_true", help="do nothing when a seller already exists")
    seed.set_defaults(fn=cmd_seed)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser, argv, "sandbox")
