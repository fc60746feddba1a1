"""Shared fixtures: a real SQLite file under tmp_path, a fresh BOT_SECRET_KEY, a controllable clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.storage import Storage
from bot.storage.secrets import generate_secret_key


class StepClock:
    """A clock the test moves by hand, so timestamps are exact rather than 'close to now'."""

    def __init__(self) -> None:
        self.current = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> datetime:
        self.current += timedelta(seconds=seconds)
        return self.current


@pytest.fixture
def secret_key() -> str:
    return generate_secret_key()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    # A folder that does not exist yet: opening must create it.
    return tmp_path / "data" / "bot.sqlite3"


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


@pytest.fixture
async def storage(db_path: Path, secret_key: str, clock: StepClock) -> AsyncIterator[Storage]:
    opened = await Storage.open(db_path, secret_key, now=clock)
    try:
        yield opened
    finally:
        await opened.close()
