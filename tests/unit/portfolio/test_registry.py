"""The portfolio's cards added over the API, re-read by many request threads: an older read never wins."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]
from sqlalchemy.orm import Session

from reelfoundry.config import Settings
from reelfoundry.errors import InvalidParameter
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


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        ("no.such:Backend", "cannot be imported"),
        # self-hosted (so open to confidential data) yet sending its requests to a vendor
        ("replicate", "hosting is self-hosted"),
    ],
)
def test_a_models_file_card_whose_backend_cannot_be_made_is_refused_at_load(
    tmp_path: Path, backend: str, message: str
) -> None:
    path = tmp_path / "models.yaml"
    card = PROMO.model_dump(mode="json") | {"backend": backend, "task": "text-to-video", "options": {"model": "a/b"}}
    path.write_text(yaml.safe_dump({"models": [card]}))
    with pytest.raises(InvalidParameter, match=message) as err:
        Portfolio.from_settings(Settings(models_file=path, data_dir=tmp_path))
    assert err.value.detail.startswith(f"{path}: model 'promo': ")
