"""SQL of the push pipeline: inbox of accepted events, per-channel outbox, live cards, unit names.

Every write is atomic on its own (one statement through :meth:`Database.write`, or a
:meth:`Database.transaction`), and a caller can wrap several of these methods in :meth:`PushStore.atomic` to
have them commit (or vanish) together. The processor writes everything a batch of inbox rows caused (outbox
rows, card changes, unit names, the rows marked processed) with :meth:`PushStore.apply_changes` in one
transaction, which is what makes a crash at any point safe. Writes use as few round trips to SQLite's thread
as they can: the connection is shared, and a push event's acknowledgement waits for its turn on it.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

import aiosqlite
from pydantic import BaseModel, ConfigDict

from bot.storage.db import Database
from bot.storage.models import Priority, delivery_priority

log = logging.getLogger(__name__)

WallClock = Callable[[], float]
InboxListener = Callable[[Sequence["InboxEntry"]], None]

_NONCE_PREFIX_KEY = "nonce_prefix"
_WRITE_PROBE_KEY = "write_probe"
MAX_ERROR_LENGTH = 300


class StaleCardError(Exception):
    """A card the caller read is gone (deleted by housekeeping meanwhile); read again and redo the work."""


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True)


class InboxEntry(_Row):
    """An accepted event, before it has an id. ``body`` is the envelope without its key."""

    received_at: float
    event_type: str
    community_id: str | None
    guild_ids: tuple[int, ...]
    body: dict[str, Any]


class InboxRow(InboxEntry):
    id: int


class OutboxRow(_Row):
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


class CardRow(_Row):
    id: int
    guild_id: int
    kind: str
    call_id: int
    community_id: str | None
    channel_id: int
    state: dict[str, Any]
    version: int
    rendered_version: int
    message_id: int | None
    finished: bool
    attempts: int
    next_attempt_at: float
    last_error: str | None
    created_at: float
    updated_at: float

    @property
    def priority(self) -> Priority:
        """A card's posts and edits are as urgent as its call's category (a 911 call's card before dispatch)."""
        return delivery_priority(self.kind)


class CardSnapshot(_Row):
    """A card as the processor needs it: the row, and whether a post of it still waits in the outbox."""

    card: CardRow
    post_pending: bool


# (guild_id, kind, call_id): a card's identity before it has an id.
StoredCardKey = tuple[int, str, int]


@dataclass(frozen=True, slots=True)
class NewCard:
    guild_id: int
    kind: str
    call_id: int
    community_id: str | None
    channel_id: int
    state: Mapping[str, Any]
    finished: bool


@dataclass(frozen=True, slots=True)
class CardUpdate:
    """A card's new state; ``version_increment`` counts the visible changes (each makes an edit owed)."""

    card_id: int
    state: Mapping[str, Any]
    finished: bool
    version_increment: int


@dataclass(frozen=True, slots=True)
class OutboxDraft:
    """An outbox row to write: an embed, or the first post of a card (``card_id``, or ``new_card`` for a card
    created in the same :class:`PushChanges`, whose id is not known yet)."""

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


@dataclass(slots=True)
class PushChanges:
    """Everything a batch of processed events changes, written together by :meth:`PushStore.apply_changes`.

    Order matters where it shows: outbox rows are written in list order (a channel's messages go out by id).
    """

    new_cards: list[NewCard] = field(default_factory=list)
    card_updates: list[CardUpdate] = field(default_factory=list)
    outbox: list[OutboxDraft] = field(default_factory=list)
    unit_names: dict[str, dict[int, str]] = field(default_factory=dict)
    processed: list[tuple[int, str]] = field(default_factory=list)


class PendingHead(_Row):
    """What a channel's next message is made of: its most urgent pending rows (one priority, oldest first, a
    claimed batch's rows among them), and the id of its oldest pending row whatever its priority."""

    rows: tuple[OutboxRow, ...]
    oldest_id: int | None


class DueLane(_Row):
    """A channel's ``post`` (outbox) or ``edit`` (live cards) work: its most urgent priority and when its next
    request may go (``due_at`` <= now: at once)."""

    channel_id: int
    lane: str
    priority: int
    due_at: float


class OutboxStats(_Row):
    """Deliveries still owed (outbox rows plus live-card edits) and when the oldest of them was created."""

    depth: int
    oldest_created_at: float | None


_OUTBOX_COLUMNS = (
    "id, guild_id, channel_id, category, priority, card_id, embed, ping_role_id, accepted_at, created_at, status, "
    "batch_id, solo, attempts, next_attempt_at, message_id, last_error"
)
_CARD_COLUMNS = (
    "id, guild_id, kind, call_id, community_id, channel_id, state, version, rendered_version, message_id, "
    "finished, attempts, next_attempt_at, last_error, created_at, updated_at"
)
# A card edit is owed while its message exists and the stored state is newer than what Discord shows.
_EDIT_OWED = "message_id IS NOT NULL AND version > rendered_version"
_POST_PENDING = (
    "EXISTS (SELECT 1 FROM push_outbox AS o WHERE o.card_id = push_card.id AND o.status = 'pending')"
)
_INSERT_OUTBOX = (
    "INSERT INTO push_outbox "
    "(guild_id, channel_id, category, priority, card_id, embed, ping_role_id, accepted_at, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# A card's priority in SQL, from the same function as everything else's (the kinds are push_card's CHECK list).
_CARD_PRIORITY = (
    "CASE kind "
    + " ".join(f"WHEN '{kind}' THEN {int(delivery_priority(kind))}" for kind in ("panic", "911", "dispatch"))
    + f" ELSE {int(Priority.ROUTINE)} END"
)
_INSERT_CARD = (
    "INSERT INTO push_card "
    "(guild_id, kind, call_id, community_id, channel_id, state, finished, created_at, updated_at)"
)
# The retry schedule is kept: a burst of changes during an outage must not become a burst of requests.
_UPDATE_CARD_STATE = (
    "UPDATE push_card SET state = ?, finished = ?, updated_at = ?, version = version + ? WHERE id = ?"
)
_UPSERT_UNIT_NAME = (
    "INSERT INTO push_unit_name (community_id, ident_id, label, updated_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (community_id, ident_id) DO UPDATE SET label = excluded.label, updated_at = excluded.updated_at"
)


def _dumps(value: Any) -> str:
    # ASCII escapes keep lone surrogates (valid JSON, invalid UTF-8) storable; they are repaired when parsed.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True)


def _clip(error: str) -> str:
    error = " ".join(error.split()) or "unknown error"
    return error if len(error) <= MAX_ERROR_LENGTH else error[: MAX_ERROR_LENGTH - 1] + "…"


def _placeholders(count: int) -> str:
    return ", ".join("?" for _ in range(count))


def _value_rows(count: int, width: int) -> str:
    """``(?, ?), (?, ?)`` for a multi-row VALUES: ``count`` rows of ``width`` parameters."""
    row = f"({_placeholders(width)})"
    return ", ".join(row for _ in range(count))


@functools.lru_cache(maxsize=64)
def _insert_inbox_sql(count: int) -> str:
    # Built once per batch size: the inbox commit runs for every acknowledgement.
    return (
        "INSERT INTO push_inbox (received_at, event_type, community_id, guild_ids, body) "
        f"VALUES {_value_rows(count, 5)} RETURNING id"
    )


# Rows per multi-row statement: far below SQLite's 32,766 parameters, and a bounded statement-cache entry.
_ROWS_PER_STATEMENT = 200
# The most events one inbox group commit may carry (it is one statement).
MAX_INBOX_ROWS_PER_COMMIT = _ROWS_PER_STATEMENT


def _outbox(row: aiosqlite.Row) -> OutboxRow:
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


_INBOX_COLUMNS = "id, received_at, event_type, community_id, guild_ids, body"


def _inbox_row(row: aiosqlite.Row) -> InboxRow:
    return InboxRow(
        id=row["id"],
        received_at=row["received_at"],
        event_type=row["event_type"],
        community_id=row["community_id"],
        guild_ids=tuple(json.loads(row["guild_ids"])),
        body=json.loads(row["body"]),
    )


def _card(row: aiosqlite.Row) -> CardRow:
    return CardRow(
        id=row["id"],
        guild_id=row["guild_id"],
        kind=row["kind"],
        call_id=row["call_id"],
        community_id=row["community_id"],
        channel_id=row["channel_id"],
        state=json.loads(row["state"]),
        version=row["version"],
        rendered_version=row["rendered_version"],
        message_id=row["message_id"],
        finished=bool(row["finished"]),
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class PushStore:
    def __init__(self, db: Database, *, clock: WallClock = time.time) -> None:
        self._db = db
        self._clock = clock
        self._inbox_listeners: list[InboxListener] = []

    def atomic(self) -> AbstractAsyncContextManager[aiosqlite.Connection]:
        """One transaction around several calls (nested calls become savepoints)."""
        return self._db.transaction()

    async def yield_to_inbox(
        self, max_wait_s: float, *, quiet_s: float = 0.0, interrupt: asyncio.Event | None = None
    ) -> bool:
        """Background work between steps: let inbox commits (acknowledgements) go first, for up to
        ``max_wait_s``; with ``quiet_s``, until none has happened for that long; not much longer once
        ``interrupt`` is set. True if it waited."""
        return await self._db.yield_to_urgent_writes(max_wait_s, quiet_s=quiet_s, interrupt=interrupt)

    async def _all(self, sql: str, parameters: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        return list(await self._db.conn.execute_fetchall(sql, tuple(parameters)))

    async def _one(self, sql: str, parameters: Iterable[Any] = ()) -> aiosqlite.Row | None:
        rows = await self._all(sql, parameters)
        return rows[0] if rows else None

    async def ping(self) -> None:
        """Raise if the database cannot answer (health check)."""
        await self._all("SELECT 1")

    async def write_probe(self) -> None:
        """One small committed write (health check): raises, and is recorded as failing, while writes fail."""
        await self._db.write(
            "INSERT INTO push_meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (_WRITE_PROBE_KEY, repr(self._clock())),
        )

    async def nonce_prefix(self) -> str:
        """Random text unique to this database, so two databases behind one bot never share a nonce."""
        async with self._db.transaction() as conn:
            rows = list(
                await conn.execute_fetchall("SELECT value FROM push_meta WHERE key = ?", (_NONCE_PREFIX_KEY,))
            )
            if rows:
                return str(rows[0]["value"])
            prefix = secrets.token_hex(4)
            await conn.execute(
                "INSERT INTO push_meta (key, value) VALUES (?, ?)", (_NONCE_PREFIX_KEY, prefix)
            )
            return prefix

    # -- inbox -------------------------------------------------------------------------------------

    def add_inbox_listener(self, listener: InboxListener) -> None:
        """Have ``listener`` told of every group of events once it is committed (it must not block or raise)."""
        self._inbox_listeners.append(listener)

    async def add_inbox(self, entries: Sequence[InboxEntry]) -> list[int]:
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
                _dumps(list(entry.guild_ids)),
                _dumps(entry.body),
            )
        rows = await self._db.write_returning(_insert_inbox_sql(len(entries)), parameters, urgent=True)
        # RETURNING's row order is unspecified; the ids themselves ascend in VALUES order (AUTOINCREMENT).
        ids = sorted(int(row[0]) for row in rows)
        if len(ids) != len(entries):
            raise RuntimeError(f"stored {len(ids)} inbox rows for {len(entries)} events")
        for listener in self._inbox_listeners:
            try:
                listener(entries)
            except (
                Exception
            ):  # stored is stored: a listener's bug must not turn the acknowledgement into a 503
                log.exception("an inbox listener failed")
        return ids

    async def unprocessed_inbox(
        self, limit: int, *, event_types: Collection[str] | None = None
    ) -> list[InboxRow]:
        """The oldest unprocessed events, in order; only those of ``event_types`` if given."""
        where = ""
        parameters: list[Any] = [limit]
        if event_types is not None:
            if not event_types:
                return []
            where = f"AND event_type IN ({_placeholders(len(event_types))}) "
            parameters = [*event_types, limit]
        rows = await self._all(
            f"SELECT {_INBOX_COLUMNS} FROM push_inbox WHERE processed_at IS NULL {where}ORDER BY id LIMIT ?",
            parameters,
        )
        return [_inbox_row(row) for row in rows]

    async def unprocessed_inbox_before(
        self, before_id: int, event_types: Collection[str], limit: int
    ) -> list[InboxRow]:
        """Up to ``limit`` of the newest unprocessed events of ``event_types`` older than row ``before_id``,
        oldest first (what an event taken ahead of them may need to know)."""
        if not event_types:
            return []
        rows = await self._all(
            f"SELECT {_INBOX_COLUMNS} FROM push_inbox WHERE processed_at IS NULL "
            f"AND event_type IN ({_placeholders(len(event_types))}) AND id < ? ORDER BY id DESC LIMIT ?",
            [*event_types, before_id, limit],
        )
        return [_inbox_row(row) for row in reversed(rows)]

    async def mark_inbox_processed(self, inbox_id: int, outcome: str) -> None:
        await self._db.write(
            "UPDATE push_inbox SET processed_at = ?, outcome = ? WHERE id = ?",
            (self._clock(), outcome, inbox_id),
        )

    async def last_received_at(self, community_id: str) -> float | None:
        """When an event of this community was last stored (Unix seconds), while its row is kept."""
        row = await self._one(
            "SELECT MAX(received_at) FROM push_inbox WHERE community_id = ?", (community_id,)
        )
        return None if row is None or row[0] is None else float(row[0])

    async def inbox_depth(self) -> int:
        row = await self._one("SELECT COUNT(*) FROM push_inbox WHERE processed_at IS NULL")
        return 0 if row is None else int(row[0])

    async def card_edits_owed(self) -> int:
        """Live cards whose latest state Discord does not show yet (an edit is owed, now or after a back-off)."""
        row = await self._one(f"SELECT COUNT(*) FROM push_card WHERE {_EDIT_OWED}")
        return 0 if row is None else int(row[0])

    # -- outbox ------------------------------------------------------------------------------------

    async def add_outbox(
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
                None if embed is None else _dumps(dict(embed)),
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
        rows = await self._all(
            "SELECT b.channel_id, 'post' AS lane, b.priority, "
            "(SELECT o.next_attempt_at FROM push_outbox AS o WHERE o.channel_id = b.channel_id "
            "AND o.status = 'pending' AND o.priority = b.priority ORDER BY o.id LIMIT 1) AS due_at "
            "FROM (SELECT channel_id, MIN(priority) AS priority FROM push_outbox WHERE status = 'pending' "
            "GROUP BY channel_id) AS b "
            f"UNION ALL SELECT channel_id, 'edit', MIN({_CARD_PRIORITY}), MIN(next_attempt_at) FROM push_card "
            f"WHERE {_EDIT_OWED} GROUP BY channel_id"
        )
        return [
            DueLane(channel_id=row[0], lane=row[1], priority=row[2], due_at=row[3])
            for row in rows
            if row[3] is not None
        ]

    async def pending_head(self, channel_id: int, limit: int) -> PendingHead:
        """The channel's most urgent pending rows (up to ``limit``, of one priority, oldest first) and its
        oldest pending row's id."""
        rows = await self._all(
            f"SELECT {_OUTBOX_COLUMNS}, (SELECT MIN(id) FROM push_outbox "
            "WHERE channel_id = ? AND status = 'pending') AS oldest_id FROM push_outbox "
            "WHERE channel_id = ? AND status = 'pending' ORDER BY priority, id LIMIT ?",
            (channel_id, channel_id, limit),
        )
        if not rows:
            return PendingHead(rows=(), oldest_id=None)
        head = [_outbox(row) for row in rows]
        return PendingHead(
            rows=tuple(row for row in head if row.priority == head[0].priority),
            oldest_id=rows[0]["oldest_id"],
        )

    async def pending_from(self, channel_id: int, row_id: int, limit: int) -> list[OutboxRow]:
        """Pending rows of the channel with the priority of row ``row_id``, from that row on, oldest first."""
        rows = await self._all(
            f"SELECT {_OUTBOX_COLUMNS} FROM push_outbox WHERE channel_id = ? AND status = 'pending' "
            "AND priority = (SELECT priority FROM push_outbox WHERE id = ?) AND id >= ? ORDER BY id LIMIT ?",
            (channel_id, row_id, row_id, limit),
        )
        return [_outbox(row) for row in rows]

    async def batch_rows(self, batch_id: int) -> list[OutboxRow]:
        rows = await self._all(
            f"SELECT {_OUTBOX_COLUMNS} FROM push_outbox "
            "WHERE batch_id = ? AND status = 'pending' ORDER BY id",
            (batch_id,),
        )
        return [_outbox(row) for row in rows]

    async def set_batch(self, row_ids: Sequence[int], batch_id: int) -> None:
        """Fix which rows form one message, before it is sent (so a resend is byte-for-byte the same)."""
        await self._db.write(
            f"UPDATE push_outbox SET batch_id = ? WHERE id IN ({_placeholders(len(row_ids))}) "
            "AND status = 'pending'",
            (batch_id, *row_ids),
        )

    async def split_batch(self, row_ids: Sequence[int]) -> None:
        """Send these rows one per message from now on (one of them made Discord reject the batch)."""
        await self._db.write(
            f"UPDATE push_outbox SET batch_id = NULL, solo = 1 WHERE id IN ({_placeholders(len(row_ids))})",
            tuple(row_ids),
        )

    async def mark_sent(self, row_ids: Sequence[int], message_id: int) -> None:
        await self._db.write(
            "UPDATE push_outbox SET status = 'sent', message_id = ?, finished_at = ?, last_error = NULL "
            f"WHERE id IN ({_placeholders(len(row_ids))})",
            (message_id, self._clock(), *row_ids),
        )

    async def mark_retry(
        self, row_ids: Sequence[int], error: str, next_attempt_at: float, *, failed_attempt: bool = True
    ) -> None:
        """Try these rows again at ``next_attempt_at``; ``failed_attempt`` False for a wait the server asked for
        (a rate limit), which is not an error and does not lengthen later back-offs."""
        await self._db.write(
            "UPDATE push_outbox SET attempts = attempts + ?, last_error = ?, next_attempt_at = ? "
            f"WHERE id IN ({_placeholders(len(row_ids))})",
            (int(failed_attempt), _clip(error), next_attempt_at, *row_ids),
        )

    async def mark_failed(self, row_ids: Sequence[int], error: str) -> None:
        await self._db.write(
            "UPDATE push_outbox SET status = 'failed', attempts = attempts + 1, last_error = ?, "
            f"finished_at = ? WHERE id IN ({_placeholders(len(row_ids))}) AND status = 'pending'",
            (_clip(error), self._clock(), *row_ids),
        )

    async def fail_channel(self, channel_id: int, error: str) -> int:
        """Give up on everything owed to a channel Discord refuses us (deleted, or permissions lost).

        Returns how many queued messages were dropped; live cards keep their state but stop owing edits.
        """
        now = self._clock()
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE push_outbox SET status = 'failed', last_error = ?, finished_at = ? "
                "WHERE channel_id = ? AND status = 'pending'",
                (_clip(error), now, channel_id),
            )
            dropped = cursor.rowcount
            await conn.execute(
                "UPDATE push_card SET rendered_version = version, last_error = ? "
                f"WHERE channel_id = ? AND {_EDIT_OWED}",
                (_clip(error), channel_id),
            )
            return dropped

    async def outbox_stats(self) -> OutboxStats:
        row = await self._one(
            "SELECT "
            "(SELECT COUNT(*) FROM push_outbox WHERE status = 'pending') + "
            f"(SELECT COUNT(*) FROM push_card WHERE {_EDIT_OWED}), "
            "(SELECT MIN(created_at) FROM push_outbox WHERE status = 'pending'), "
            f"(SELECT MIN(updated_at) FROM push_card WHERE {_EDIT_OWED})"
        )
        if row is None:
            return OutboxStats(depth=0, oldest_created_at=None)
        candidates = [value for value in (row[1], row[2]) if value is not None]
        return OutboxStats(depth=int(row[0]), oldest_created_at=min(candidates) if candidates else None)

    async def outbox_rows(self, *, guild_id: int | None = None, status: str | None = None) -> list[OutboxRow]:
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
        rows = await self._all(f"SELECT {_OUTBOX_COLUMNS} FROM push_outbox {where}ORDER BY id", parameters)
        return [_outbox(row) for row in rows]

    # -- live cards --------------------------------------------------------------------------------

    async def get_card(self, guild_id: int, kind: str, call_id: int) -> CardRow | None:
        row = await self._one(
            f"SELECT {_CARD_COLUMNS} FROM push_card WHERE guild_id = ? AND kind = ? AND call_id = ?",
            (guild_id, kind, call_id),
        )
        return None if row is None else _card(row)

    async def get_card_by_id(self, card_id: int) -> CardRow | None:
        row = await self._one(f"SELECT {_CARD_COLUMNS} FROM push_card WHERE id = ?", (card_id,))
        return None if row is None else _card(row)

    async def open_cards(self, guild_id: int, kind: str) -> list[CardRow]:
        rows = await self._all(
            f"SELECT {_CARD_COLUMNS} FROM push_card WHERE guild_id = ? AND kind = ? AND finished = 0 "
            "ORDER BY id",
            (guild_id, kind),
        )
        return [_card(row) for row in rows]

    async def card_snapshots(self, keys: Collection[StoredCardKey]) -> list[CardSnapshot]:
        """The cards with these keys (missing ones are left out), each with whether its post is pending."""
        snapshots: list[CardSnapshot] = []
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _ROWS_PER_STATEMENT):
            chunk = unique[start : start + _ROWS_PER_STATEMENT]
            rows = await self._all(
                # A join, not a row-value IN: SQLite scans the whole table for the latter.
                f"WITH wanted (guild_id, kind, call_id) AS (VALUES {_value_rows(len(chunk), 3)}) "
                f"SELECT {_CARD_COLUMNS}, {_POST_PENDING} AS post_pending "
                "FROM wanted JOIN push_card USING (guild_id, kind, call_id)",
                [value for key in chunk for value in key],
            )
            snapshots += (
                CardSnapshot(card=_card(row), post_pending=bool(row["post_pending"])) for row in rows
            )
        return snapshots

    async def open_card_snapshots(self, guild_id: int, kind: str) -> list[CardSnapshot]:
        """A guild's unfinished cards of one kind, oldest first, each with whether its post is pending."""
        rows = await self._all(
            f"SELECT {_CARD_COLUMNS}, {_POST_PENDING} AS post_pending FROM push_card "
            "WHERE guild_id = ? AND kind = ? AND finished = 0 ORDER BY id",
            (guild_id, kind),
        )
        return [CardSnapshot(card=_card(row), post_pending=bool(row["post_pending"])) for row in rows]

    async def create_card(
        self,
        *,
        guild_id: int,
        kind: str,
        call_id: int,
        community_id: str | None,
        channel_id: int,
        state: Mapping[str, Any],
        finished: bool,
    ) -> int:
        now = self._clock()
        cursor = await self._db.write(
            f"{_INSERT_CARD} VALUES {_value_rows(1, 9)}",
            (guild_id, kind, call_id, community_id, channel_id, _dumps(dict(state)), int(finished), now, now),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    async def update_card_state(
        self, card_id: int, state: Mapping[str, Any], *, finished: bool, visible: bool = True
    ) -> None:
        """Store a card's new state; ``visible`` changes bump the version so an edit becomes owed."""
        await self._db.write(
            _UPDATE_CARD_STATE, (_dumps(dict(state)), int(finished), self._clock(), int(visible), card_id)
        )

    async def card_post_pending(self, card_id: int) -> bool:
        """True while a post of this card waits in the outbox."""
        row = await self._one(
            "SELECT 1 FROM push_outbox WHERE card_id = ? AND status = 'pending' LIMIT 1", (card_id,)
        )
        return row is not None

    async def due_card_edits(self, channel_id: int, now: float, limit: int) -> list[CardRow]:
        """Cards of the channel owing an edit now, most urgent kind first (panic alerts, 911 calls, dispatch), then
        longest waiting first."""
        rows = await self._all(
            f"SELECT {_CARD_COLUMNS} FROM push_card WHERE channel_id = ? AND {_EDIT_OWED} "
            f"AND next_attempt_at <= ? ORDER BY {_CARD_PRIORITY}, updated_at, id LIMIT ?",
            (channel_id, now, limit),
        )
        return [_card(row) for row in rows]

    async def card_shown(self, card_id: int, rendered_version: int, message_id: int) -> None:
        """Discord now shows ``rendered_version`` of the card in ``message_id``."""
        await self._db.write(
            "UPDATE push_card SET message_id = ?, rendered_version = MAX(rendered_version, ?), "
            "attempts = 0, next_attempt_at = 0, last_error = NULL WHERE id = ?",
            (message_id, rendered_version, card_id),
        )

    async def card_retry(
        self, card_id: int, error: str, next_attempt_at: float, *, failed_attempt: bool = True
    ) -> None:
        """Edit the card again at ``next_attempt_at`` (``failed_attempt`` as for :meth:`mark_retry`)."""
        await self._db.write(
            "UPDATE push_card SET attempts = attempts + ?, last_error = ?, next_attempt_at = ? WHERE id = ?",
            (int(failed_attempt), _clip(error), next_attempt_at, card_id),
        )

    async def card_give_up(self, card_id: int, error: str) -> None:
        """Stop owing edits for the card's current version (a later change will try again)."""
        await self._db.write(
            "UPDATE push_card SET rendered_version = version, last_error = ?, attempts = 0, "
            "next_attempt_at = 0 WHERE id = ?",
            (_clip(error), card_id),
        )

    async def card_message_lost(self, card_id: int) -> None:
        """The card's message was deleted: forget it, so the next post makes a new one."""
        await self._db.write(
            "UPDATE push_card SET message_id = NULL, rendered_version = 0, attempts = 0, "
            "next_attempt_at = 0 WHERE id = ?",
            (card_id,),
        )

    # -- unit directory ----------------------------------------------------------------------------

    async def unit_names(self, community_id: str) -> dict[int, str]:
        rows = await self._all(
            "SELECT ident_id, label FROM push_unit_name WHERE community_id = ?", (community_id,)
        )
        return {int(row["ident_id"]): str(row["label"]) for row in rows}

    async def remember_unit_names(self, community_id: str, names: Mapping[int, str]) -> None:
        if not names:
            return
        now = self._clock()
        async with self._db.transaction() as conn:
            await conn.executemany(
                _UPSERT_UNIT_NAME, [(community_id, ident, label, now) for ident, label in names.items()]
            )

    # -- processor batches -------------------------------------------------------------------------

    async def apply_changes(self, changes: PushChanges) -> None:
        """Write everything a batch of events changed, in one transaction (or the caller's), in few round trips:
        new cards, card states, outbox rows (in order), unit names, and the inbox rows marked processed.

        Raises :class:`StaleCardError` (rolling everything back) if a card to update no longer exists.
        """
        now = self._clock()
        async with self._db.transaction() as conn:
            new_card_ids: dict[StoredCardKey, int] = {}
            for start in range(0, len(changes.new_cards), _ROWS_PER_STATEMENT):
                chunk = changes.new_cards[start : start + _ROWS_PER_STATEMENT]
                parameters: list[Any] = []
                for card in chunk:
                    parameters += (
                        card.guild_id,
                        card.kind,
                        card.call_id,
                        card.community_id,
                        card.channel_id,
                        _dumps(dict(card.state)),
                        int(card.finished),
                        now,
                        now,
                    )
                rows = await conn.execute_fetchall(
                    f"{_INSERT_CARD} VALUES {_value_rows(len(chunk), 9)} RETURNING id, guild_id, kind, call_id",
                    parameters,
                )
                new_card_ids.update(
                    ((int(row["guild_id"]), str(row["kind"]), int(row["call_id"])), int(row["id"]))
                    for row in rows
                )
            # The rest are independent of each other: sent together, they cost one round trip, not four.
            statements: list[Awaitable[aiosqlite.Cursor]] = []
            if changes.card_updates:
                statements.append(
                    conn.executemany(
                        _UPDATE_CARD_STATE,
                        [
                            (
                                _dumps(dict(update.state)),
                                int(update.finished),
                                now,
                                update.version_increment,
                                update.card_id,
                            )
                            for update in changes.card_updates
                        ],
                    )
                )
            if changes.outbox:
                statements.append(
                    conn.executemany(
                        _INSERT_OUTBOX,
                        [
                            (
                                draft.guild_id,
                                draft.channel_id,
                                draft.category,
                                int(delivery_priority(draft.category)),
                                new_card_ids[draft.new_card] if draft.new_card is not None else draft.card_id,
                                None if draft.embed is None else _dumps(dict(draft.embed)),
                                draft.ping_role_id,
                                draft.accepted_at,
                                now,
                            )
                            for draft in changes.outbox
                        ],
                    )
                )
            names = [
                (community_id, ident, label, now)
                for community_id, learnt in changes.unit_names.items()
                for ident, label in learnt.items()
            ]
            if names:
                statements.append(conn.executemany(_UPSERT_UNIT_NAME, names))
            if changes.processed:
                statements.append(
                    conn.executemany(
                        "UPDATE push_inbox SET processed_at = ?, outcome = ? WHERE id = ?",
                        [(now, outcome, inbox_id) for inbox_id, outcome in changes.processed],
                    )
                )
            cursors = await asyncio.gather(*statements)
            if changes.card_updates and cursors[0].rowcount != len(changes.card_updates):
                # Housekeeping deleted a card between the caller's read and this write.
                raise StaleCardError("a live card changed by this batch no longer exists")

    # -- housekeeping ------------------------------------------------------------------------------

    async def prune(self, *, finished_before: float, cards_before: float) -> int:
        """Delete processed inbox rows and finished outbox rows older than ``finished_before``, and
        finished cards untouched since ``cards_before``; returns how many rows went."""
        async with self._db.transaction() as conn:
            removed = 0
            cursor = await conn.execute(
                "DELETE FROM push_inbox WHERE processed_at IS NOT NULL AND processed_at < ?",
                (finished_before,),
            )
            removed += cursor.rowcount
            cursor = await conn.execute(
                "DELETE FROM push_outbox WHERE status != 'pending' AND finished_at < ?", (finished_before,)
            )
            removed += cursor.rowcount
            cursor = await conn.execute(
                f"DELETE FROM push_card WHERE finished = 1 AND updated_at < ? AND NOT ({_EDIT_OWED}) "
                "AND id NOT IN (SELECT card_id FROM push_outbox WHERE status = 'pending' AND card_id IS NOT NULL)",
                (cards_before,),
            )
            removed += cursor.rowcount
            return removed
