"""The audit log: one row per operator action, read newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import AuditEntry


def insert_audit_entry(
    session: Session, operator: str, action: str, target: str, detail: dict[str, Any], at: datetime
) -> None:
    session.add(AuditEntry(operator=operator, action=action, target=target[:255], detail=detail, at=at))
    session.flush()


def list_audit_entries(
    session: Session, *, operator: str = "", offset: int = 0, limit: int = 50
) -> tuple[list[AuditEntry], int]:
    """(entries newest first, total) for one operator or all."""
    where = [AuditEntry.operator == operator] if operator else []
    total = session.scalar(select(func.count()).select_from(AuditEntry).where(*where))
    rows = session.scalars(
        select(AuditEntry).where(*where).order_by(AuditEntry.id.desc()).offset(offset).limit(limit)
    )
    return list(rows), total
