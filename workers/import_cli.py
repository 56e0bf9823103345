"""`remit import accounts|invoices|payments FILE.csv --seller N`: an ERP's export, sent through tasks.api.

Accounts and invoices go to sync_accounts / sync_invoices in batches; payments (rows grouped by reference)
to record_external_payment one payment at a time. Every row gets an outcome; a malformed row is reported
with its line number and the rows after it still go. The formats are in docs/import/ and README.md.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from tasks.domain import csv_import as formats
from tasks.domain import sync as rules
from tasks.domain.errors import RemitError
from tasks.domain.sync import RecordRefused

# Records per sync call: one transaction each, a fraction of a second (bench/sync.py: 10,000 in ~1.4 s),
# so a lock the seller's other syncs wait on is never held long.
BATCH_RECORDS = 2_000
# A batch refused as busy (another sync of this seller holds its lock) is sent again this often.
BUSY_RETRIES = 5
BUSY_PAUSE_S = 1.0
# Refusals listed in the summary; the counts cover them all.
LISTED_PROBLEMS = 100


@dataclass
class Summary:
    """Outcomes by name, and each refused or malformed line with its code and message."""

    outcomes: Counter = field(default_factory=Counter)
    problems: list[tuple[int, str, str]] = field(default_factory=list)

    def refuse(self, lines: list[int], code: str, message: str) -> None:
        self.outcomes["malformed" if code == "malformed_row" else "refused"] += len(lines)
        self.problems.extend((line, code, message) for line in lines)

    def lines(self) -> list[str]:
        counts = ", ".join(f"{name} {count}" for name, count in sorted(self.outcomes.items())) or "no rows"
        shown = sorted(self.problems)[:LISTED_PROBLEMS]
        listed = [f"  line {line}: [{code}] {message}" for line, code, message in shown]
        more = len(self.problems) - len(shown)
        return [counts, *listed, *([f"  ... and {more} more"] if more > 0 else [])]


def register(subparsers) -> None:
    """Add `remit import` to the remit command."""
    command = subparsers.add_parser(
        "import", help="send an ERP's CSV export of accounts, invoices or payments (formats: docs/import/)"
    )
    command.add_argument("kind", choices=sorted(formats.FORMATS), help="what the file holds (docs/import/)")
    command.add_argument("file", type=Path, help="the CSV file, with its header line")
    command.add_argument("--seller", type=int, required=True, help="the seller's id")
    command.add_argument("--dry-run", action="store_true", help="check every row, send nothing")
    command.add_argument("--batch-size", type=int, default=BATCH_RECORDS, help="records per sync call")
    command.set_defaults(fn=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    from workers.cli import CommandError, require_database
    from workers.settings import get_settings

    if not args.file.is_file():
        raise CommandError(f"{args.file} is not a file")
    if not 1 <= args.batch_size <= 50_000:
        raise CommandError("--batch-size must be from 1 to 50000")
    if not args.dry_run:
        require_database(get_settings().database_url, schema=True)
    console = Console(stderr=True)
    try:
        summary = run_import(args.kind, args.file, args.seller, args.dry_run, args.batch_size, console)
    except formats.MalformedFile as wrong:
        raise CommandError(str(wrong)) from None
    except RemitError as refusal:
        raise CommandError(f"[{refusal.code}] {refusal.message}") from None
    verb = "would send" if args.dry_run else "sent"
    print(f"import {args.kind} from {args.file} ({verb}): " + "\n".join(summary.lines()))
    return 0 if not summary.problems else 1


def run_import(
    kind: str, path: Path, seller_id: int, dry_run: bool, batch_size: int, console=None
) -> Summary:
    """Read the file and send (or, dry, only check) every row; the outcomes."""
    total = _count_rows(path)
    summary = Summary()
    with _progress(console, total) as advance:
        rows = _rows(kind, path, summary, advance)
        if kind == "payments":
            _payments(seller_id, rows, summary, dry_run, advance)
        else:
            _records(kind, seller_id, rows, summary, dry_run, batch_size, advance)
    return summary


def _count_rows(path: Path) -> int:
    with path.open(newline="", encoding="utf-8-sig") as file:
        return max(sum(1 for _ in csv.reader(file)) - 1, 0)


class _progress:
    """A rich progress bar over the file's rows (none when not on a terminal); yields advance(n)."""

    def __init__(self, console, total: int):
        self.bar = Progress(
            TextColumn("importing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=console is None or not console.is_terminal,
        )
        self.total = total

    def __enter__(self) -> Callable[[int], None]:
        self.bar.start()
        task = self.bar.add_task("rows", total=self.total)
        return lambda n: self.bar.advance(task, n)

    def __exit__(self, *exc) -> None:
        self.bar.stop()


def _rows(kind: str, path: Path, summary: Summary, advance) -> Iterator[tuple[int, dict | None, dict]]:
    """(line, record or None if malformed, raw cells) for every row, header checked first."""
    with path.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.DictReader(file)
        formats.check_header(kind, reader.fieldnames)
        for raw in reader:
            line = reader.line_num
            try:
                yield line, formats.record_of(kind, raw), raw
            except formats.MalformedRow as wrong:
                summary.refuse([line], "malformed_row", str(wrong))
                advance(1)
                yield line, None, raw


def _records(kind: str, seller_id: int, rows, summary: Summary, dry_run: bool, size: int, advance) -> None:
    batch: list[tuple[int, dict]] = []
    for line, record, _ in rows:
        if record is not None:
            batch.append((line, record))
        if len(batch) >= size:
            _send(kind, seller_id, batch, summary, dry_run)
            advance(len(batch))
            batch = []
    if batch:
        _send(kind, seller_id, batch, summary, dry_run)
        advance(len(batch))


def _send(kind: str, seller_id: int, batch: list[tuple[int, dict]], summary: Summary, dry_run: bool) -> None:
    if dry_run:
        check = rules.account_record if kind == "accounts" else rules.invoice_record
        for line, record in batch:
            _dry_check(summary, [line], lambda record=record: check(record))
        return
    from tasks import api

    call = api.sync_accounts if kind == "accounts" else api.sync_invoices
    results = _patiently(lambda: call(seller_id, [record for _, record in batch]))
    for (line, _), result in zip(batch, results, strict=True):
        if result.code is not None:
            summary.refuse([line], result.code, result.message or "")
        else:
            summary.outcomes[str(result.outcome)] += 1


def _payments(seller_id: int, rows, summary: Summary, dry_run: bool, advance) -> None:
    readable, poisoned = [], {}
    for line, record, raw in rows:
        if record is not None:
            readable.append((line, record))
        elif (raw.get("reference") or "").strip():
            poisoned[raw["reference"]] = line
    for group in formats.group_payments(readable):
        problem = group.problem or (
            f"line {poisoned[group.reference]} of this payment is malformed"
            if group.reference in poisoned
            else None
        )
        if problem is not None:
            summary.refuse(group.line_numbers, "inconsistent_payment", problem)
        elif dry_run:
            _dry_check(
                summary,
                group.line_numbers,
                lambda g=group: rules.external_lines(g.kind, g.reference, g.lines),
            )
        else:
            _record_payment(seller_id, group, summary)
        advance(len(group.line_numbers))


def _record_payment(seller_id: int, group: formats.ExternalPaymentRows, summary: Summary) -> None:
    from tasks import api

    try:
        receipt = _patiently(
            lambda: api.record_external_payment(
                seller_id, group.account_external_id, group.reference, group.kind, group.lines
            )
        )
    except RemitError as refusal:
        if refusal.code == "seller_not_found":
            raise
        summary.refuse(group.line_numbers, refusal.code, refusal.message)
        return
    summary.outcomes["unchanged" if receipt.replayed else "recorded"] += len(group.line_numbers)


def _dry_check(summary: Summary, lines: list[int], check: Callable[[], object]) -> None:
    try:
        check()
    except RecordRefused as refused:
        summary.refuse(lines, refused.code, str(refused))
        return
    summary.outcomes["valid"] += len(lines)


def _patiently(call):
    """The call, sent again while the seller's sync lock is busy."""
    for _ in range(BUSY_RETRIES):
        try:
            return call()
        except RemitError as refusal:
            if refusal.code != "busy":
                raise
            time.sleep(BUSY_PAUSE_S)
    return call()
