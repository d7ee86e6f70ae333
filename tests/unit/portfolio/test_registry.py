"""The portfolio's cards added over the API, re-read by many request threads: an older read never wins."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.orm import Session

from reelfoundry.portfolio.backends.template import TEMPLATE_CARD
from reelfoundry.portfolio.registry import Portfolio
from reelfoundry.store import Database
from reelfoundry.store import models as modelstore

PROMO = TEMPLATE_CARD.model_copy(update={"id": "promo"})


class HeldRead:
    """A real database whose next read, once its rows are read, waits for ``release`` before it returns."""

    def __init__(self, db: Database) -> None:
        self.db, self.read_done, self.release = db, threading.Event(), threading.Event()

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self.db.read() as session:
            yield session
        self.read_done.set()
        assert self.release.wait(10)


def test_a_slow_refresh_that_began_earlier_does_not_undo_a_newer_one(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'p.db'}")
    db.migrate()
    portfolio = Portfolio(refresh_s=0.0)
    held = HeldRead(db)
    slow = threading.Thread(target=portfolio.refresh, args=(held,))  # reads no added card, then stalls
    slow.start()
    assert held.read_done.wait(10)
    with db.write() as session:
        modelstore.add_card(session, PROMO, None)
    portfolio.refresh(db, force=True)  # what POST /v1/models does after its write
    assert "promo" in portfolio.cards
    held.release.set()
    slow.join(10)
    assert "promo" in portfolio.cards
    db.dispose()
