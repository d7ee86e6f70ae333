"""The audit log: append-only, each entry hash-chained to the one before it.

An entry's hash is the SHA-256 of its canonical JSON, which includes the previous entry's hash
and its own sequence number. Editing an entry breaks its hash; inserting or deleting one breaks
the sequence or the chain at the next entry. Removing entries from the end leaves a shorter valid
chain: compare ``head`` with a copy kept elsewhere to catch that.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from reelfoundry.schema import ModelCard
from reelfoundry.store.tables import AuditRow, utcnow

GENESIS = "0" * 64
#: pg_advisory_xact_lock key that serialises appends on PostgreSQL (SQLite writers already queue).
_LOCK = 0x5245_4146_4155_4454 & 0x7FFF_FFFF_FFFF_FFFF


def entry_hash(row: AuditRow) -> str:
    """The hash an entry must carry, from its own fields and its predecessor's hash."""
    body = {
        "seq": row.seq,
        "at": row.at.isoformat(timespec="microseconds"),
        "tenant_id": row.tenant_id,
        "actor": row.actor,
        "action": row.action,
        "subject": row.subject,
        "data": row.data,
        "prev": row.prev_hash,
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def append(
    session: Session,
    action: str,
    *,
    actor: str,
    tenant_id: str | None = None,
    subject: str | None = None,
    data: dict[str, Any] | None = None,
) -> AuditRow:
    """Add an entry in the caller's transaction, so it commits (or not) with what it records."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
    last = session.execute(select(AuditRow).order_by(AuditRow.seq.desc()).limit(1)).scalar_one_or_none()
    row = AuditRow(
        seq=last.seq + 1 if last else 1,
        at=utcnow(),
        tenant_id=tenant_id,
        actor=actor,
        action=action,
        subject=subject,
        data=data or {},
        prev_hash=last.hash if last else GENESIS,
    )
    row.hash = entry_hash(row)
    session.add(row)
    session.flush()
    return row


def record_model(session: Session, card: ModelCard) -> AuditRow | None:
    """Log a model's registration when it is new or its card changed since the last one logged."""
    facts = {
        "version": card.version,
        "backend": card.backend,
        "hosting": card.hosting,
        "files_sha256": card.options.get("sha256"),
        "path": card.options.get("path"),
    }
    last = session.execute(
        select(AuditRow.data)
        .where(AuditRow.action == "model.registered", AuditRow.subject == card.id)
        .order_by(AuditRow.seq.desc())
        .limit(1)
    ).scalar_one_or_none()
    if last == facts:
        return None
    return append(session, "model.registered", actor="system", subject=card.id, data=facts)


@dataclass
class AuditCheck:
    """What ``reelfoundry audit verify`` reports."""

    entries: int = 0
    head: str = GENESIS
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the chain is intact."""
        return not self.problems


def verify(session: Session, batch: int = 1000) -> AuditCheck:
    """Walk the whole chain in sequence order and report every break."""
    check = AuditCheck()
    expected_seq, prev = 1, GENESIS
    after = 0
    while True:
        rows = session.execute(select(AuditRow).where(AuditRow.seq > after).order_by(AuditRow.seq).limit(batch))
        page = list(rows.scalars())
        if not page:
            break
        for row in page:
            if row.seq != expected_seq:
                check.problems.append(f"entry {row.seq}: expected entry {expected_seq} next (entries deleted?)")
            if row.prev_hash != prev:
                check.problems.append(f"entry {row.seq}: does not follow the entry before it (inserted or deleted?)")
            if entry_hash(row) != row.hash:
                check.problems.append(f"entry {row.seq}: its contents do not match its hash (edited)")
            expected_seq, prev, after = row.seq + 1, row.hash, row.seq
            check.entries += 1
    check.head = prev
    return check
