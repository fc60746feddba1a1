"""Unit names learnt from push events (``push_unit_name``), per community: what a card or an alert calls a
unit the event names only by its ident ID ("1A-12 Jordan Reyes" rather than "unit 57")."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence

import aiosqlite

from bot.storage.db import Database
from bot.timing import WallClock

_UPSERT_UNIT_NAME = (
    "INSERT INTO push_unit_name (community_id, ident_id, label, updated_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (community_id, ident_id) DO UPDATE SET label = excluded.label, updated_at = excluded.updated_at"
)

# (community_id, ident_id, label, learnt at): one name as stored.
UnitNameRow = tuple[str, int, str, float]


def upsert_unit_names(
    conn: aiosqlite.Connection, names: Sequence[UnitNameRow]
) -> Awaitable[aiosqlite.Cursor]:
    """Remember names inside the caller's transaction, to be awaited with the batch's other statements."""
    return conn.executemany(_UPSERT_UNIT_NAME, names)


class UnitNames:
    def __init__(self, db: Database, *, clock: WallClock) -> None:
        self._db = db
        self._clock = clock

    async def get(self, community_id: str) -> dict[int, str]:
        """Every name learnt for the community's units, by ident ID."""
        rows = await self._db.fetch_all(
            "SELECT ident_id, label FROM push_unit_name WHERE community_id = ?", (community_id,)
        )
        return {int(row["ident_id"]): str(row["label"]) for row in rows}

    async def remember(self, community_id: str, names: Mapping[int, str]) -> None:
        if not names:
            return
        now = self._clock()
        async with self._db.transaction() as conn:
            await upsert_unit_names(
                conn, [(community_id, ident, label, now) for ident, label in names.items()]
            )
