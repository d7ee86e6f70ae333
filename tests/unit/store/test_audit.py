"""The hash-chained audit log on SQLite and PostgreSQL: appends chain; edits, inserts and deletes are found."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
from pathlib import Path

from sqlalchemy import delete, select, update

from reelfoundry.schema import Role
from reelfoundry.store import Database, audit
from reelfoundry.store import keys as keystore
from reelfoundry.store.tables import AuditRow


def _log(db: Database, n: int, *, seal: bool = True) -> None:
    for i in range(n):
        with db.write() as s:
            audit.append(s, "test.event", actor="tester", subject=f"thing-{i}", data={"i": i})
    if seal:
        audit.Sealer(db, 1.0).seal_now()


def test_entries_chain_and_key_changes_are_recorded(database: Database) -> None:
    with database.write() as s:
        tenant = keystore.get_or_create_tenant(s, "acme")
        row, _ = keystore.create_key(s, tenant, "designer", Role.creator, actor="admin-key")
        keystore.revoke_key(s, tenant.id, row.id, actor="admin-key")
    _log(database, 3)  # seals the key entries too, in the order they were written
    with database.read() as s:
        rows = list(s.execute(select(AuditRow).order_by(AuditRow.seq)).scalars())
        check = audit.verify(s)
    assert [r.action for r in rows] == ["key.created", "key.revoked", "test.event", "test.event", "test.event"]
    assert rows[0].actor == "admin-key" and rows[0].data == {"name": "designer", "role": "creator"}
    assert rows[0].prev_hash == audit.GENESIS and all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    assert check.ok and check.entries == 5 and check.head == rows[-1].hash


def test_concurrent_appends_and_sealers_keep_one_chain(database: Database) -> None:
    sealer = audit.Sealer(database, 1.0)
    threads = [threading.Thread(target=_log, args=(database, 5), kwargs={"seal": False}) for _ in range(4)]
    threads += [threading.Thread(target=sealer.seal_now) for _ in range(3)]  # sealers racing the writers
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sealer.seal_now()
    with database.read() as s:
        check = audit.verify(s)
    assert check.ok and check.entries == 20 and check.pending == 0, check.problems


def test_pending_entries_are_reported_until_sealed(database: Database) -> None:
    _log(database, 2, seal=False)
    with database.read() as s:
        check = audit.verify(s)
    assert check.ok and (check.entries, check.pending) == (0, 2)
    assert audit.Sealer(database, 1.0).seal_now() == 2
    with database.read() as s:
        check = audit.verify(s)
    assert (check.entries, check.pending) == (2, 0)


def test_an_edited_entry_is_found(database: Database) -> None:
    _log(database, 4)
    with database.write() as s:
        s.execute(update(AuditRow).where(AuditRow.seq == 2).values(data={"i": 99}))
    with database.read() as s:
        check = audit.verify(s)
    assert check.problems == ["entry 2: its contents do not match its hash (edited)"]


def test_a_deleted_entry_is_found(database: Database) -> None:
    _log(database, 4)
    with database.write() as s:
        s.execute(delete(AuditRow).where(AuditRow.seq == 2))
    with database.read() as s:
        check = audit.verify(s)
    assert not check.ok and any(p.startswith("entry 3:") for p in check.problems)


def test_an_inserted_entry_is_found(database: Database) -> None:
    _log(database, 3)
    with database.write() as s:
        # A forger who recomputes the new entry's own hash still cannot make the next entry follow it.
        at, prev = s.execute(select(AuditRow.at, AuditRow.prev_hash).where(AuditRow.seq == 3)).one()
        s.execute(update(AuditRow).where(AuditRow.seq == 3).values(seq=4))
        forged = AuditRow(seq=3, at=at, actor="mallory", action="key.created", subject="x", data={}, prev_hash=prev)
        forged.hash = audit.entry_hash(forged)
        s.add(forged)
    with database.read() as s:
        check = audit.verify(s)
    assert not check.ok and any(p.startswith("entry 4:") for p in check.problems)


def test_cli_audit_verify(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'reelfoundry.db'}")
    db.migrate()
    _log(db, 3)

    def run() -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "reelfoundry", "audit", "verify", "--data-dir", str(tmp_path), "--json"]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)

    ok = run()
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["entries"] == 3
    with db.write() as s:
        s.execute(update(AuditRow).where(AuditRow.seq == 1).values(actor="someone-else"))
    db.dispose()
    bad = run()
    assert bad.returncode == 1 and json.loads(bad.stdout)["problems"] == [
        "entry 1: its contents do not match its hash (edited)"
    ]
    missing = subprocess.run(
        [sys.executable, "-m", "reelfoundry", "audit", "verify", "--data-dir", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert missing.returncode == 2 and "no database" in missing.stderr


def test_model_registrations_are_logged_once_per_card_change(database: Database) -> None:
    from reelfoundry.portfolio.backends.template import TEMPLATE_CARD

    changed = TEMPLATE_CARD.model_copy(update={"version": "2"})
    with database.write() as s:
        assert audit.record_model(s, TEMPLATE_CARD) is not None
        assert audit.record_model(s, TEMPLATE_CARD) is None  # a restart with the same card adds nothing
        entry = audit.record_model(s, changed)
        assert entry is not None and entry.subject == "template" and entry.data["version"] == "2"
    audit.Sealer(database, 1.0).seal_now()
    with database.write() as s:
        assert audit.record_model(s, changed) is None  # sealed, still known
    with database.read() as s:
        assert audit.verify(s).entries == 2
