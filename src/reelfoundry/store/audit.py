"""The audit log: append-only, each entry hash-chained to the one before it.

An entry's hash is the SHA-256 of its canonical JSON, which includes the previous entry's hash
and its own sequence number. Editing an entry breaks its hash; inserting or deleting one breaks
the sequence or the chain at the next entry. Removing entries from the end leaves a shorter valid
chain: compare ``head`` with a copy kept elsewhere to catch that.

Entries are written in two steps so the chain never serialises the work it records: ``append`` adds
the entry to ``audit_pending`` in the caller's transaction (it commits, or not, with the change; no
lock), and ``seal`` — run by each server every fraction of a second, one sealer at a time — moves
committed pending entries into the chain in id order. Ids are handed out before commit, so an entry
whose transaction commits late is sealed after later ids: chain order is sealing order, and ``at``
keeps when each change happened. Until sealed (well under a second) an entry is not yet covered by
the chain; ``verify`` reports how many are pending.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from reelfoundry.schema import ModelCard
from reelfoundry.store.db import Database
from reelfoundry.store.tables import AuditPendingRow, AuditRow, utcnow

log = logging.getLogger(__name__)

GENESIS = "0" * 64
#: pg_advisory_xact_lock key that lets one sealer at a time extend the chain on PostgreSQL (SQLite writers
#: already queue).
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
) -> AuditPendingRow:
    """Add an entry in the caller's transaction, so it commits (or not) with what it records."""
    row = AuditPendingRow(
        at=utcnow(), tenant_id=tenant_id, actor=actor, action=action, subject=subject, data=data or {}
    )
    session.add(row)
    session.flush()
    return row


class Caller(Protocol):
    """Who did it: an API key of a tenant (``store.keys.Principal``)."""

    @property
    def key_id(self) -> str: ...

    @property
    def tenant_id(self) -> str: ...


def append_by(
    session: Session, caller: Caller, action: str, *, subject: str | None = None, data: dict[str, Any] | None = None
) -> AuditPendingRow:
    """:func:`append` for an entry made by an API key, in that key's tenant."""
    return append(session, action, actor=caller.key_id, tenant_id=caller.tenant_id, subject=subject, data=data)


def seal(session: Session, limit: int = 5000) -> int:
    """Chain up to ``limit`` committed pending entries in id order; returns how many. One sealer at a time."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
    pending = list(session.scalars(select(AuditPendingRow).order_by(AuditPendingRow.id).limit(limit)))
    if not pending:
        return 0
    last = session.execute(select(AuditRow).order_by(AuditRow.seq.desc()).limit(1)).scalar_one_or_none()
    seq, prev = (last.seq, last.hash) if last else (0, GENESIS)
    for entry in pending:
        seq += 1
        row = AuditRow(
            seq=seq,
            at=entry.at,
            tenant_id=entry.tenant_id,
            actor=entry.actor,
            action=entry.action,
            subject=entry.subject,
            data=entry.data,
            prev_hash=prev,
        )
        row.hash = prev = entry_hash(row)
        session.add(row)
    session.execute(delete(AuditPendingRow).where(AuditPendingRow.id.in_([e.id for e in pending])))
    session.flush()
    return len(pending)


def record_model(session: Session, card: ModelCard) -> AuditPendingRow | None:
    """Log a model's registration when it is new or its card changed since the last one logged."""
    facts = {
        "version": card.version,
        "backend": card.backend,
        "hosting": card.hosting if isinstance(card.hosting, str) else card.hosting.model_dump(mode="json"),
        "files_sha256": card.options.get("sha256"),
        "path": card.options.get("path"),
    }
    lora = card.options.get("lora")
    if isinstance(lora, dict):  # a fine-tuned model: its adapter is part of what was registered
        facts["lora_sha256"] = lora.get("sha256")
    pending = session.execute(
        select(AuditPendingRow.data)
        .where(AuditPendingRow.action == "model.registered", AuditPendingRow.subject == card.id)
        .order_by(AuditPendingRow.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    last = (
        pending
        or session.execute(
            select(AuditRow.data)
            .where(AuditRow.action == "model.registered", AuditRow.subject == card.id)
            .order_by(AuditRow.seq.desc())
            .limit(1)
        ).scalar_one_or_none()
    )
    if last == facts:
        return None
    return append(session, "model.registered", actor="system", subject=card.id, data=facts)


@dataclass
class AuditCheck:
    """What ``reelfoundry audit verify`` reports."""

    entries: int = 0
    head: str = GENESIS
    problems: list[str] = field(default_factory=list)
    #: Entries written but not yet sealed into the chain (not covered by this check).
    pending: int = 0

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
    check.pending = session.scalar(select(func.count()).select_from(AuditPendingRow)) or 0
    return check


class Sealer:
    """A background thread that seals pending entries every ``interval_s`` (each server runs one)."""

    def __init__(self, db: Database, interval_s: float) -> None:
        self.db = db
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def seal_now(self) -> int:
        """Seal everything pending now; returns how many entries."""
        total = 0
        while True:
            with self.db.read() as session:  # most ticks find nothing: no write transaction, no wake-ups
                if session.scalar(select(AuditPendingRow.id).limit(1)) is None:
                    return total
            with self.db.write() as session:
                n = seal(session)
            total += n
            if n == 0:
                return total

    def start(self) -> None:
        """Run the loop in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="reelfoundry-audit-sealer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.seal_now()
            except Exception:  # a database hiccup: the entries stay pending and are sealed next time
                log.exception("sealing the audit log failed")

    def stop(self) -> None:
        """Stop the loop and seal what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        try:
            self.seal_now()
        except Exception:
            log.exception("sealing the audit log at stop failed")
