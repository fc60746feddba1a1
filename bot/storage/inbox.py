"""The inbox (``push_inbox``): every accepted push event, stored before it is acknowledged, until processed.

The listener's group commit (:meth:`Inbox.add`) is the one *urgent* writer of the database: the senders of
the events wait for it, so it goes before background writers waiting for the lock.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Collection, Sequence
from typing import Any

import aiosqlite

from bot.storage._sql import ROWS_PER_STATEMENT, StoredRow, dumps, placeholders, value_rows
from bot.storage.db import Database

log = logging.getLogger(__name__)

InboxListener = Callable[[Sequence["InboxEntry"]], None]

# The most events one group commit may carry (it is one statement).
MAX_INBOX_ROWS_PER_COMMIT = ROWS_PER_STATEMENT
MARK_PROCESSED = "UPDATE push_inbox SET processed_at = ?, outcome = ? WHERE id = ?"

_INBOX_COLUMNS = "id, received_at, event_type, community_id, guild_ids, body"


class InboxEntry(StoredRow):
    """An accepted event, before it has an id. ``body`` is the envelope without its key."""

    received_at: float
    event_type: str
    community_id: str | None
    guild_ids: tuple[int, ...]
    body: dict[str, Any]


class InboxRow(InboxEntry):
    id: int


@functools.lru_cache(maxsize=64)
def _insert_inbox_sql(count: int) -> str:
    # Built once per batch size: the inbox commit runs for every acknowledgement.
    return (
        "INSERT INTO push_inbox (received_at, event_type, community_id, guild_ids, body) "
        f"VALUES {value_rows(count, 5)} RETURNING id"
    )


def _inbox_row(row: aiosqlite.Row) -> InboxRow:
    return InboxRow(
        id=row["id"],
        received_at=row["received_at"],
        event_type=row["event_type"],
        community_id=row["community_id"],
        guild_ids=tuple(json.loads(row["guild_ids"])),
        body=json.loads(row["body"]),
    )


class Inbox:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._listeners: list[InboxListener] = []

    def add_listener(self, listener: InboxListener) -> None:
        """Have ``listener`` told of every group of events once it is committed (it must not block or raise)."""
        self._listeners.append(listener)

    async def add(self, entries: Sequence[InboxEntry]) -> list[int]:
        """Store accepted events atomically (group commit); their ids in the same order.

        One multi-row INSERT is one round trip and one transaction, and it is *urgent*: the senders of these
        events are waiting for it, so it is served before background writers waiting for the lock.
        """
        if not entries:
            return []
        if len(entries) > MAX_INBOX_ROWS_PER_COMMIT:
            raise ValueError(f"at most {MAX_INBOX_ROWS_PER_COMMIT} inbox rows per commit")
        parameters: list[Any] = []
        for entry in entries:
            parameters += (
                entry.received_at,
                entry.event_type,
                entry.community_id,
                dumps(list(entry.guild_ids)),
                dumps(entry.body),
            )
        rows = await self._db.write_returning(_insert_inbox_sql(len(entries)), parameters, urgent=True)
        # RETURNING's row order is unspecified; the ids themselves ascend in VALUES order (AUTOINCREMENT).
        ids = sorted(int(row[0]) for row in rows)
        if len(ids) != len(entries):
            raise RuntimeError(f"stored {len(ids)} inbox rows for {len(entries)} events")
        for listener in self._listeners:
            try:
                listener(entries)
            except (
                Exception
            ):  # stored is stored: a listener's bug must not turn the acknowledgement into a 503
                log.exception("an inbox listener failed")
        return ids

    async def unprocessed(self, limit: int, *, event_types: Collection[str] | None = None) -> list[InboxRow]:
        """The oldest unprocessed events, in order; only those of ``event_types`` if given."""
        where = ""
        parameters: list[Any] = [limit]
        if event_types is not None:
            if not event_types:
                return []
            where = f"AND event_type IN ({placeholders(len(event_types))}) "
            parameters = [*event_types, limit]
        rows = await self._db.fetch_all(
            f"SELECT {_INBOX_COLUMNS} FROM push_inbox WHERE processed_at IS NULL {where}ORDER BY id LIMIT ?",
            parameters,
        )
        return [_inbox_row(row) for row in rows]

    async def unprocessed_before(
        self, before_id: int, event_types: Collection[str], limit: int
    ) -> list[InboxRow]:
        """Up to ``limit`` of the newest unprocessed events of ``event_types`` older than row ``before_id``,
        oldest first (what an event taken ahead of them may need to know)."""
        if not event_types:
            return []
        rows = await self._db.fetch_all(
            f"SELECT {_INBOX_COLUMNS} FROM push_inbox WHERE processed_at IS NULL "
            f"AND event_type IN ({placeholders(len(event_types))}) AND id < ? ORDER BY id DESC LIMIT ?",
            [*event_types, before_id, limit],
        )
        return [_inbox_row(row) for row in reversed(rows)]

    async def last_received_at(self, community_id: str) -> float | None:
        """When an event of this community was last stored (Unix seconds), while its row is kept."""
        row = await self._db.fetch_one(
            "SELECT MAX(received_at) FROM push_inbox WHERE community_id = ?", (community_id,)
        )
        return None if row is None or row[0] is None else float(row[0])

    async def depth(self) -> int:
        """Events stored but not processed yet."""
        row = await self._db.fetch_one("SELECT COUNT(*) FROM push_inbox WHERE processed_at IS NULL")
        return 0 if row is None else int(row[0])

    async def prune(self, processed_before: float) -> int:
        """Delete events processed before ``processed_before``; how many went."""
        cursor = await self._db.write(
            "DELETE FROM push_inbox WHERE processed_at IS NOT NULL AND processed_at < ?", (processed_before,)
        )
        return cursor.rowcount
