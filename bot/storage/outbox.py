"""The outbox (``push_outbox``): messages owed to Discord, per channel, most urgent first.

A row carries one embed, or the first post of a live card. Rows that go out together in one message are
fixed as a batch before it is sent, so a resend is byte for byte the same. The delivery schedule
(:meth:`Outbox.due_lanes`) and the totals (:meth:`Outbox.stats`) count live-card edits as deliveries too:
a channel has a ``post`` lane (these rows) and an ``edit`` lane (its cards, see ``bot.storage.cards``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from bot.storage._sql import StoredRow, clip, dumps, placeholders
from bot.storage.cards import CARD_PRIORITY, EDIT_OWED, StoredCardKey
from bot.storage.db import Database
from bot.storage.models import delivery_priority
from bot.timing import WallClock

_OUTBOX_COLUMNS = (
    "id, guild_id, channel_id, category, priority, card_id, embed, ping_role_id, accepted_at, created_at, status, "
    "batch_id, solo, attempts, next_attempt_at, message_id, last_error"
)
_INSERT_OUTBOX = (
    "INSERT INTO push_outbox "
    "(guild_id, channel_id, category, priority, card_id, embed, ping_role_id, accepted_at, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class OutboxRow(StoredRow):
    id: int
    guild_id: int
    channel_id: int
    category: str
    priority: int
    card_id: int | None
    embed: dict[str, Any] | None
    ping_role_id: int | None
    accepted_at: float
    created_at: float
    status: str
    batch_id: int | None
    solo: bool
    attempts: int
    next_attempt_at: float
    message_id: int | None
    last_error: str | None


class PendingHead(StoredRow):
    """What a channel's next message is made of: its most urgent pending rows (one priority, oldest first, a
    claimed batch's rows among them), and the id of its oldest pending row whatever its priority."""

    rows: tuple[OutboxRow, ...]
    oldest_id: int | None


class DueLane(StoredRow):
    """A channel's ``post`` (outbox) or ``edit`` (live cards) work: its most urgent priority and when its next
    request may go (``due_at`` <= now: at once)."""

    channel_id: int
    lane: str
    priority: int
    due_at: float


class OutboxStats(StoredRow):
    """Deliveries still owed (outbox rows plus live-card edits) and when the oldest of them was created."""

    depth: int
    oldest_created_at: float | None


@dataclass(frozen=True, slots=True)
class OutboxDraft:
    """An outbox row to write: an embed, or the first post of a card (``card_id``, or ``new_card`` for a card
    created in the same batch, whose id is not known yet)."""

    guild_id: int
    channel_id: int
    category: str
    accepted_at: float
    embed: Mapping[str, Any] | None = None
    card_id: int | None = None
    new_card: StoredCardKey | None = None
    ping_role_id: int | None = None

    def __post_init__(self) -> None:
        carried = (self.embed is not None) + (self.card_id is not None) + (self.new_card is not None)
        if carried != 1:
            raise ValueError("an outbox row carries either an embed or a card")


def _outbox_row(row: aiosqlite.Row) -> OutboxRow:
    embed = row["embed"]
    return OutboxRow(
        id=row["id"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        category=row["category"],
        priority=row["priority"],
        card_id=row["card_id"],
        embed=json.loads(embed) if embed is not None else None,
        ping_role_id=row["ping_role_id"],
        accepted_at=row["accepted_at"],
        created_at=row["created_at"],
        status=row["status"],
        batch_id=row["batch_id"],
        solo=bool(row["solo"]),
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        message_id=row["message_id"],
        last_error=row["last_error"],
    )


def insert_drafts(
    conn: aiosqlite.Connection,
    drafts: Sequence[OutboxDraft],
    new_card_ids: Mapping[StoredCardKey, int],
    now: float,
) -> Awaitable[aiosqlite.Cursor]:
    """Queue rows inside the caller's transaction, in list order (a channel's messages go out by id), to be
    awaited with the batch's other statements; ``new_card_ids`` resolves drafts of cards created in it."""
    return conn.executemany(
        _INSERT_OUTBOX,
        [
            (
                draft.guild_id,
                draft.channel_id,
                draft.category,
                int(delivery_priority(draft.category)),
                new_card_ids[draft.new_card] if draft.new_card is not None else draft.card_id,
                None if draft.embed is None else dumps(dict(draft.embed)),
                draft.ping_role_id,
                draft.accepted_at,
                now,
            )
            for draft in drafts
        ],
    )


class Outbox:
    def __init__(self, db: Database, *, clock: WallClock) -> None:
        self._db = db
        self._clock = clock

    async def add(
        self,
        *,
        guild_id: int,
        channel_id: int,
        category: str,
        accepted_at: float,
        embed: Mapping[str, Any] | None = None,
        card_id: int | None = None,
        ping_role_id: int | None = None,
    ) -> int:
        """Queue one embed (or a live card's first post) for a channel."""
        if (embed is None) == (card_id is None):
            raise ValueError("an outbox row carries either an embed or a card")
        cursor = await self._db.write(
            _INSERT_OUTBOX,
            (
                guild_id,
                channel_id,
                category,
                int(delivery_priority(category)),
                card_id,
                None if embed is None else dumps(dict(embed)),
                ping_role_id,
                accepted_at,
                self._clock(),
            ),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    async def due_lanes(self) -> list[DueLane]:
        """Every channel with deliveries owed: its outbox (``post``: the most urgent priority waiting, and when
        the oldest row of that priority may be sent) and its live-card edits (``edit``)."""
        rows = await self._db.fetch_all(
            "SELECT b.channel_id, 'post' AS lane, b.priority, "
            "(SELECT o.next_attempt_at FROM push_outbox AS o WHERE o.channel_id = b.channel_id "
            "AND o.status = 'pending' AND o.priority = b.priority ORDER BY o.id LIMIT 1) AS due_at "
            "FROM (SELECT channel_id, MIN(priority) AS priority FROM push_outbox WHERE status = 'pending' "
            "GROUP BY channel_id) AS b "
            f"UNION ALL SELECT channel_id, 'edit', MIN({CARD_PRIORITY}), MIN(next_attempt_at) FROM push_card "
            f"WHERE {EDIT_OWED} GROUP BY channel_id"
        )
        return [
            DueLane(channel_id=row[0], lane=row[1], priority=row[2], due_at=row[3])
            for row in rows
            if row[3] is not None
        ]

    async def pending_head(self, channel_id: int, limit: int) -> PendingHead:
        """The channel's most urgent pending rows (up to ``limit``, of one priority, oldest first) and its
        oldest pending row's id."""
        rows = await self._db.fetch_all(
            f"SELECT {_OUTBOX_COLUMNS}, (SELECT MIN(id) FROM push_outbox "
            "WHERE channel_id = ? AND status = 'pending') AS oldest_id FROM push_outbox "
            "WHERE channel_id = ? AND status = 'pending' ORDER BY priority, id LIMIT ?",
            (channel_id, channel_id, limit),
        )
        if not rows:
            return PendingHead(rows=(), oldest_id=None)
        head = [_outbox_row(row) for row in rows]
        return PendingHead(
            rows=tuple(row for row in head if row.priority == head[0].priority),
            oldest_id=rows[0]["oldest_id"],
        )

    async def pending_from(self, channel_id: int, row_id: int, limit: int) -> list[OutboxRow]:
        """Pending rows of the channel with the priority of row ``row_id``, from that row on, oldest first."""
        rows = await self._db.fetch_all(
            f"SELECT {_OUTBOX_COLUMNS} FROM push_outbox WHERE channel_id = ? AND status = 'pending' "
            "AND priority = (SELECT priority FROM push_outbox WHERE id = ?) AND id >= ? ORDER BY id LIMIT ?",
            (channel_id, row_id, row_id, limit),
        )
        return [_outbox_row(row) for row in rows]

    async def batch_rows(self, batch_id: int) -> list[OutboxRow]:
        rows = await self._db.fetch_all(
            f"SELECT {_OUTBOX_COLUMNS} FROM push_outbox "
            "WHERE batch_id = ? AND status = 'pending' ORDER BY id",
            (batch_id,),
        )
        return [_outbox_row(row) for row in rows]

    async def set_batch(self, row_ids: Sequence[int], batch_id: int) -> None:
        """Fix which rows form one message, before it is sent (so a resend is byte-for-byte the same)."""
        await self._db.write(
            f"UPDATE push_outbox SET batch_id = ? WHERE id IN ({placeholders(len(row_ids))}) "
            "AND status = 'pending'",
            (batch_id, *row_ids),
        )

    async def split_batch(self, row_ids: Sequence[int]) -> None:
        """Send these rows one per message from now on (one of them made Discord reject the batch)."""
        await self._db.write(
            f"UPDATE push_outbox SET batch_id = NULL, solo = 1 WHERE id IN ({placeholders(len(row_ids))})",
            tuple(row_ids),
        )

    async def mark_sent(self, row_ids: Sequence[int], message_id: int) -> None:
        await self._db.write(
            "UPDATE push_outbox SET status = 'sent', message_id = ?, finished_at = ?, last_error = NULL "
            f"WHERE id IN ({placeholders(len(row_ids))})",
            (message_id, self._clock(), *row_ids),
        )

    async def mark_retry(
        self, row_ids: Sequence[int], error: str, next_attempt_at: float, *, failed_attempt: bool = True
    ) -> None:
        """Try these rows again at ``next_attempt_at``; ``failed_attempt`` False for a wait the server asked for
        (a rate limit), which is not an error and does not lengthen later back-offs."""
        await self._db.write(
            "UPDATE push_outbox SET attempts = attempts + ?, last_error = ?, next_attempt_at = ? "
            f"WHERE id IN ({placeholders(len(row_ids))})",
            (int(failed_attempt), clip(error), next_attempt_at, *row_ids),
        )

    async def mark_failed(self, row_ids: Sequence[int], error: str) -> None:
        await self._db.write(
            "UPDATE push_outbox SET status = 'failed', attempts = attempts + 1, last_error = ?, "
            f"finished_at = ? WHERE id IN ({placeholders(len(row_ids))}) AND status = 'pending'",
            (clip(error), self._clock(), *row_ids),
        )

    async def fail_channel(self, channel_id: int, error: str) -> int:
        """Give up on every message queued for a channel Discord refuses us; how many were dropped."""
        cursor = await self._db.write(
            "UPDATE push_outbox SET status = 'failed', last_error = ?, finished_at = ? "
            "WHERE channel_id = ? AND status = 'pending'",
            (clip(error), self._clock(), channel_id),
        )
        return cursor.rowcount

    async def stats(self) -> OutboxStats:
        row = await self._db.fetch_one(
            "SELECT "
            "(SELECT COUNT(*) FROM push_outbox WHERE status = 'pending') + "
            f"(SELECT COUNT(*) FROM push_card WHERE {EDIT_OWED}), "
            "(SELECT MIN(created_at) FROM push_outbox WHERE status = 'pending'), "
            f"(SELECT MIN(updated_at) FROM push_card WHERE {EDIT_OWED})"
        )
        if row is None:
            return OutboxStats(depth=0, oldest_created_at=None)
        candidates = [value for value in (row[1], row[2]) if value is not None]
        return OutboxStats(depth=int(row[0]), oldest_created_at=min(candidates) if candidates else None)

    async def rows(self, *, guild_id: int | None = None, status: str | None = None) -> list[OutboxRow]:
        """Rows for inspection (tests, admin tools), oldest first."""
        clauses: list[str] = []
        parameters: list[Any] = []
        if guild_id is not None:
            clauses.append("guild_id = ?")
            parameters.append(guild_id)
        if status is not None:
            clauses.append("status = ?")
            parameters.append(status)
        where = f"WHERE {' AND '.join(clauses)} " if clauses else ""
        rows = await self._db.fetch_all(
            f"SELECT {_OUTBOX_COLUMNS} FROM push_outbox {where}ORDER BY id", parameters
        )
        return [_outbox_row(row) for row in rows]

    async def prune(self, finished_before: float) -> int:
        """Delete sent and failed rows finished before ``finished_before``; how many went."""
        cursor = await self._db.write(
            "DELETE FROM push_outbox WHERE status != 'pending' AND finished_at < ?", (finished_before,)
        )
        return cursor.rowcount
