"""The SQLite database: one aiosqlite connection per process, WAL, numbered migrations.

Schema changes live in ``migrations/NNNN_name.sql`` and are applied in order, each in its own
transaction together with ``PRAGMA user_version``, so a failed migration leaves the version where it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sqlite3
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import aiosqlite

from bot.timing import MonotonicClock

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
MEMORY = ":memory:"
# Long enough to ride out the admin CLI writing while the bot runs (or the reverse), short enough to
# surface a genuinely stuck lock.
BUSY_TIMEOUT_MS = 10_000

# RETURNING (multi-row inserts that report their ids in one round trip) arrived in SQLite 3.35.
MIN_SQLITE_VERSION = (3, 35, 0)

_MIGRATION_FILE = re.compile(r"^(?P<version>\d{4})_[a-z0-9_]+\.sql$")


class DatabaseError(Exception):
    """The database cannot be opened or used; the message says what to do.

    The one error type of ``bot.storage``: SQLite's own exceptions never leave the package, so callers catch
    this (or one of its kinds) and nothing else.
    """


class MigrationError(DatabaseError):
    """The migration files are inconsistent or one of them failed to apply."""


class DatabaseUnavailableError(DatabaseError):
    """SQLite refused because of the database, not the statement: disk full, read-only file, I/O error, locked,
    corrupt (:func:`is_storage_failure`). The same statement succeeds once the database is healthy again."""


class StatementError(DatabaseError):
    """SQLite refused the statement itself (a constraint, a missing table, a syntax or API misuse): a bug or a
    lost race, not an outage."""


def split_statements(script: str) -> list[str]:
    """Split an SQL script into single statements (``execute`` runs one; ``executescript`` would commit).

    Uses SQLite's own completeness test, so semicolons inside strings, comments and trigger bodies are safe.
    """
    statements: list[str] = []
    pending = ""
    pieces = script.split(";")
    for index, piece in enumerate(pieces):
        pending += piece
        if index < len(pieces) - 1:
            pending += ";"
        if pending.endswith(";") and sqlite3.complete_statement(pending):
            if _has_code(pending):
                statements.append(pending.strip())
            pending = ""
    if _has_code(pending):
        raise ValueError(f"SQL ends with an unterminated statement: {pending.strip()[:80]!r}")
    return statements


def _has_code(sql: str) -> bool:
    """True if ``sql`` holds more than whitespace, ``--`` comments and semicolons."""
    without_comments = re.sub(r"--[^\n]*", "", sql)
    without_comments = re.sub(r"/\*.*?\*/", "", without_comments, flags=re.DOTALL)
    return bool(without_comments.strip(" \t\r\n;"))


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Read every ``NNNN_name.sql`` in ``directory``; versions must run 1, 2, 3, ... without gaps.

    Blocking file I/O: call it through ``asyncio.to_thread`` from async code.
    """
    migrations: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_FILE.match(path.name)
        if match is None:
            raise MigrationError(f"{path}: migration files must be named NNNN_lower_case_name.sql")
        try:
            statements = split_statements(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise MigrationError(f"{path}: {exc}") from None
        migrations.append(Migration(int(match["version"]), path.name, tuple(statements)))
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise MigrationError(
                f"{directory}: expected migration {expected:04d} but found {migration.name} "
                "(numbers must start at 0001 and have no gaps or duplicates)"
            )
    return migrations


# SQLite's primary result codes that mean the database cannot take writes, whatever the statement was:
# PERM, BUSY, LOCKED, NOMEM, READONLY, IOERR, CORRUPT, FULL, CANTOPEN, PROTOCOL, NOTADB.
_STORAGE_FAILURE_CODES = frozenset({3, 5, 6, 7, 8, 10, 11, 13, 14, 15, 26})


def is_storage_failure(error: BaseException) -> bool:
    """True for errors that say the database cannot take writes (disk full, read-only, I/O error, locked,
    corrupt), as opposed to a statement the caller got wrong (constraint, syntax, misuse)."""
    if not isinstance(error, sqlite3.Error):
        return False
    code = getattr(error, "sqlite_errorcode", None)
    return isinstance(code, int) and (code & 0xFF) in _STORAGE_FAILURE_CODES


def translate_sqlite_error(error: sqlite3.Error) -> DatabaseError:
    """SQLite's exception as this package's own kind (the original stays its ``__cause__``). The text is
    SQLite's own ("database or disk is full"), which never contains a statement's parameters."""
    kind = DatabaseUnavailableError if is_storage_failure(error) else StatementError
    return kind(str(error) or type(error).__name__)


@dataclass(frozen=True, slots=True)
class WriteFailure:
    error: str
    at: float  # time.monotonic()


class WriteHealth:
    """Whether the last write reached the database: ``SELECT 1`` succeeds on a full disk, writes do not.

    Every write through :class:`Database` reports here; :attr:`failing` stays True from a failed write until
    the next write that changes rows succeeds. The error text is SQLite's own ("database or disk is full"),
    never a parameter.
    """

    def __init__(self, clock: MonotonicClock = time.monotonic) -> None:
        self._clock = clock
        self.last_failure: WriteFailure | None = None
        self.last_success_at: float | None = None
        self.failing = False

    def succeeded(self) -> None:
        self.last_success_at = self._clock()
        if self.failing:
            self.failing = False
            log.info("database writes succeed again")

    def failed(self, error: BaseException) -> None:
        if not self.failing:
            log.error("database write failed: %s", error)
        self.failing = True
        self.last_failure = WriteFailure(str(error)[:200] or type(error).__name__, self._clock())

    def seconds_since(self, moment: float) -> float:
        return max(0.0, self._clock() - moment)

    @contextlib.contextmanager
    def tracking(self, changes: Callable[[], int]) -> Iterator[None]:
        """Around one write: a storage failure is recorded (and re-raised); success is recorded only if rows
        changed (``changes`` is the connection's running total), since a no-op commit writes nothing to disk
        and proves nothing about it."""
        before = changes()
        try:
            yield
        except BaseException as exc:
            if is_storage_failure(exc):
                self.failed(exc)
            raise
        if changes() != before:
            self.succeeded()


# However long urgent writes keep coming, background work waiting for a quiet moment looks again this often.
_MAX_QUIET_POLL_S = 0.05
# Background work waiting for the urgent writers to finish looks at its interrupt at least this often.
_INTERRUPT_CHECK_S = 0.02


class WriteLock:
    """The database's write lock: first come, first served, except that urgent writers go first.

    Urgent is for writes someone outside is waiting on (the push listener acknowledges an event only once
    its inbox row is committed); background writers (processor, delivery) can wait one commit longer. The
    lock passes straight to the next waiter on release, so nobody can barge in between. Background writers
    are not starved: the one urgent writer (the inbox group commit) asks again only after releasing, by which
    time the waiting background writer has been handed the lock.

    Background work can also step aside before it even asks: :meth:`urgent_quiet` waits (for a bounded time)
    until no urgent write is pending, since all of them share one event loop and one database thread.
    """

    def __init__(self) -> None:
        self._held = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._background: deque[asyncio.Future[None]] = deque()
        self._urgent_pending = 0
        self._no_urgent = asyncio.Event()
        self._no_urgent.set()
        self._last_urgent_done = float("-inf")

    async def acquire(self, *, urgent: bool = False) -> None:
        if not self._held:
            self._held = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._urgent if urgent else self._background
        queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Cancelled just after the lock was handed to us: pass it on instead of keeping it forever.
                self.release()
            else:
                with contextlib.suppress(ValueError):
                    queue.remove(waiter)
            raise

    def release(self) -> None:
        if not self._held:
            raise RuntimeError("the write lock is not held")
        for queue in (self._urgent, self._background):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return
        self._held = False

    @asynccontextmanager
    async def held(self, *, urgent: bool = False) -> AsyncIterator[None]:
        if urgent:
            self._urgent_pending += 1
            self._no_urgent.clear()
        try:
            await self.acquire(urgent=urgent)
            try:
                yield
            finally:
                self.release()
        finally:
            if urgent:
                self._urgent_pending -= 1
                if not self._urgent_pending:
                    self._last_urgent_done = asyncio.get_running_loop().time()
                    self._no_urgent.set()

    async def urgent_quiet(
        self, max_wait_s: float, quiet_s: float = 0.0, *, interrupt: asyncio.Event | None = None
    ) -> bool:
        """Return once no urgent write is pending and none finished within ``quiet_s``, or after ``max_wait_s``
        at the latest, or once ``interrupt`` is set (more urgent work came); True if it waited."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait_s
        waited = False
        # Polled rather than woken by every urgent write (a flood of them would cost a wake-up each), and less
        # often the longer the flood lasts: each look is a turn of the event loop the urgent writers share.
        poll_s = quiet_s
        while True:
            now = loop.time()
            if now >= deadline or (interrupt is not None and interrupt.is_set()):
                return waited
            if quiet_s <= 0:
                if not self._urgent_pending:
                    return waited
                # Woken by the last urgent writer (or the deadline); the interrupt is looked at meanwhile.
                until = deadline if interrupt is None else min(deadline, now + _INTERRUPT_CHECK_S)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(until):
                        await self._no_urgent.wait()
            else:
                calm_at = (now if self._urgent_pending else self._last_urgent_done) + quiet_s
                if calm_at <= now:
                    return waited
                wake_at = min(max(calm_at, now + poll_s), deadline)
                if interrupt is None:
                    await asyncio.sleep(wake_at - now)
                else:  # the same wait, cut short by the interrupt
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout_at(wake_at):
                            await interrupt.wait()
                poll_s = min(poll_s * 2, _MAX_QUIET_POLL_S)
            waited = True


class Database:
    """The process's one SQLite connection. Repositories read with :meth:`fetch_all` / :meth:`fetch_one` and
    write with :meth:`transaction` and :meth:`write`; all of them raise :class:`DatabaseError` for SQLite's
    errors.

    Every write must happen inside :meth:`transaction` or through :meth:`write`: the connection is shared by
    all coroutines, and the lock they take keeps one coroutine's statements out of another's transaction.
    """

    def __init__(self, conn: aiosqlite.Connection, path: str) -> None:
        self._conn: aiosqlite.Connection | None = conn
        self.path = path
        self._write_lock = WriteLock()
        self._transaction_owner: asyncio.Task[object] | None = None
        self._savepoint_depth = 0
        self.writes = WriteHealth()

    @classmethod
    async def open(cls, path: str | Path, *, migrations_dir: Path | None = None) -> Database:
        """Open (creating folder and file if needed), configure, and migrate the database at ``path``."""
        location = str(path)
        if sqlite3.sqlite_version_info < MIN_SQLITE_VERSION:
            raise DatabaseError(
                f"this Python uses SQLite {sqlite3.sqlite_version}; the bot needs "
                f"{'.'.join(map(str, MIN_SQLITE_VERSION))} or newer (a newer Python or OS image has it)"
            )
        migrations = await asyncio.to_thread(load_migrations, migrations_dir or MIGRATIONS_DIR)
        if location != MEMORY:
            try:
                await asyncio.to_thread(Path(location).parent.mkdir, parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseError(
                    f"cannot create the database folder for {location}: {exc.strerror}"
                ) from None
        try:
            conn = await aiosqlite.connect(location, isolation_level=None)
        except sqlite3.Error as exc:
            raise DatabaseError(f"cannot open the database {location}: {exc}") from None
        database = cls(conn, location)
        try:
            await database._configure()
            await database._migrate(migrations)
        except sqlite3.Error as exc:  # not a database file, unreadable, locked by another process
            await database.close()
            raise DatabaseError(f"cannot use the database {location}: {exc}") from exc
        except BaseException:
            await database.close()
            raise
        return database

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def conn(self) -> aiosqlite.Connection:
        """The connection, for code in ``bot/storage`` only."""
        if self._conn is None:
            raise DatabaseError("the database is closed")
        return self._conn

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    async def close(self) -> None:
        """Close the connection; calling it again does nothing."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            # Keeps the query planner's statistics fresh; SQLite recommends it before closing.
            await conn.execute("PRAGMA optimize")
        except sqlite3.Error as exc:
            log.debug("PRAGMA optimize skipped: %s", exc)
        await conn.close()

    async def schema_version(self) -> int:
        rows = await self.conn.execute_fetchall("PRAGMA user_version")
        return int(next(iter(rows))[0])

    async def fetch_all(self, sql: str, parameters: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        """The rows a reading statement returns (raises :class:`DatabaseError`, never ``sqlite3.Error``)."""
        try:
            return list(await self.conn.execute_fetchall(sql, tuple(parameters)))
        except sqlite3.Error as exc:
            raise translate_sqlite_error(exc) from exc

    async def fetch_one(self, sql: str, parameters: Iterable[Any] = ()) -> aiosqlite.Row | None:
        """The first row a reading statement returns, or None."""
        rows = await self.fetch_all(sql, parameters)
        return rows[0] if rows else None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Run the block's statements atomically: commit on success, roll back on any exception.

        Nested use from the same task becomes a savepoint, so a repository method that opens a
        transaction can be called from inside another one. An SQLite error that ends the block leaves as a
        :class:`DatabaseError`; the block's own exceptions pass through unchanged.
        """
        conn = self.conn
        task = asyncio.current_task()
        try:
            if task is not None and self._transaction_owner is task:
                async with self._savepoint(conn):
                    yield conn
                return
            async with self._write_lock.held():
                self._transaction_owner = task
                try:
                    with self.writes.tracking(self._total_changes):
                        # IMMEDIATE takes the write lock now; a deferred transaction that later needs to write
                        # can fail with SQLITE_BUSY at once, without waiting for busy_timeout.
                        await conn.execute("BEGIN IMMEDIATE")
                        try:
                            yield conn
                            await conn.execute("COMMIT")
                        except BaseException:
                            await conn.rollback()
                            raise
                finally:
                    self._transaction_owner = None
        except sqlite3.Error as exc:
            raise translate_sqlite_error(exc) from exc

    async def write(
        self, sql: str, parameters: Iterable[Any] = (), *, urgent: bool = False
    ) -> aiosqlite.Cursor:
        """Run one writing statement atomically, in one round trip to the database thread.

        Inside this task's :meth:`transaction` it joins that transaction (a failed statement undoes only
        itself, as a savepoint would). Otherwise it runs on its own under the write lock: SQLite makes a lone
        statement its own transaction, exactly as BEGIN IMMEDIATE + statement + COMMIT, without their two
        extra round trips. ``urgent`` serves it before waiting background writers (see :class:`WriteLock`).
        """
        conn = self.conn
        try:
            if self._owns_transaction():
                return await conn.execute(sql, tuple(parameters))
            async with self._write_lock.held(urgent=urgent):
                with self.writes.tracking(self._total_changes):
                    return await conn.execute(sql, tuple(parameters))
        except sqlite3.Error as exc:
            raise translate_sqlite_error(exc) from exc

    async def write_returning(
        self, sql: str, parameters: Iterable[Any] = (), *, urgent: bool = False
    ) -> list[aiosqlite.Row]:
        """:meth:`write` for a statement with a ``RETURNING`` clause: the rows it returned."""
        conn = self.conn
        try:
            if self._owns_transaction():
                return list(await conn.execute_fetchall(sql, tuple(parameters)))
            async with self._write_lock.held(urgent=urgent):
                with self.writes.tracking(self._total_changes):
                    return list(await conn.execute_fetchall(sql, tuple(parameters)))
        except sqlite3.Error as exc:
            raise translate_sqlite_error(exc) from exc

    async def yield_to_urgent_writes(
        self, max_wait_s: float, *, quiet_s: float = 0.0, interrupt: asyncio.Event | None = None
    ) -> bool:
        """For background work between steps: let urgent writes (and what waits on them) go first.

        Waits until no urgent write is pending and none finished within ``quiet_s``, but at most
        ``max_wait_s``, so background work slows down under a flood of urgent writes and never stops; and no
        longer than a moment once ``interrupt`` is set (work more urgent than the writes came). Always yields
        to the event loop at least once (after the urgent writer's own continuation, which was queued first).
        True if it waited for urgent writes.
        """
        waited = await self._write_lock.urgent_quiet(max_wait_s, quiet_s, interrupt=interrupt)
        await asyncio.sleep(0)
        return waited

    def _total_changes(self) -> int:
        return self.conn.total_changes

    def _owns_transaction(self) -> bool:
        task = asyncio.current_task()
        return task is not None and self._transaction_owner is task

    @asynccontextmanager
    async def _savepoint(self, conn: aiosqlite.Connection) -> AsyncIterator[None]:
        self._savepoint_depth += 1
        name = f"nested_{self._savepoint_depth}"
        try:
            await conn.execute(f"SAVEPOINT {name}")
            try:
                yield
            except BaseException:
                await conn.execute(f"ROLLBACK TO {name}")
                await conn.execute(f"RELEASE {name}")
                raise
            await conn.execute(f"RELEASE {name}")
        finally:
            self._savepoint_depth -= 1

    async def _configure(self) -> None:
        conn = self.conn
        conn.row_factory = aiosqlite.Row
        # busy_timeout first, so switching to WAL waits for another process instead of failing.
        await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = await self._switch_to_wal(conn)
        if mode != "wal" and self.path != MEMORY:
            log.warning(
                "SQLite refused WAL mode for %s (journal mode is %s); is it on a network file system?",
                self.path,
                mode,
            )
        await conn.execute("PRAGMA synchronous = NORMAL")
        await conn.execute("PRAGMA foreign_keys = ON")

    @staticmethod
    async def _switch_to_wal(conn: aiosqlite.Connection) -> str:
        """``PRAGMA journal_mode = WAL``, waiting for another process that is doing the same.

        SQLite answers "database is locked" at once, without its busy handler, when two connections race to
        change the journal mode of a new file (the bot and the admin CLI starting together): try again for up to
        the busy timeout before giving up.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BUSY_TIMEOUT_MS / 1000
        delay = 0.01
        while True:
            try:
                rows = await conn.execute_fetchall("PRAGMA journal_mode = WAL")
                return str(next(iter(rows))[0]).lower()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or loop.time() + delay > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)

    async def _migrate(self, migrations: list[Migration]) -> None:
        current = await self.schema_version()
        latest = migrations[-1].version if migrations else 0
        if current > latest:
            raise MigrationError(
                f"the database {self.path} has schema version {current}, but this version of the bot only "
                f"knows up to {latest}; run a newer bot or restore a backup made by this version"
            )
        for migration in migrations:
            if migration.version > current:
                await self._apply(migration)

    async def _apply(self, migration: Migration) -> None:
        conn = self.conn
        async with self._write_lock.held():
            await conn.execute("BEGIN IMMEDIATE")
            try:
                # Another process (the admin CLI beside the bot) may have applied it while we waited.
                if await self.schema_version() >= migration.version:
                    await conn.execute("COMMIT")
                    return
                for statement in migration.statements:
                    await conn.execute(statement)
                # Not a bound parameter: PRAGMA does not accept them; the value is an int we parsed.
                await conn.execute(f"PRAGMA user_version = {migration.version:d}")
                await conn.execute("COMMIT")
            except sqlite3.Error as exc:
                await conn.rollback()
                raise MigrationError(
                    f"migration {migration.name} failed and was rolled back ({exc}); "
                    f"the database stays at schema version {migration.version - 1}"
                ) from exc
            except BaseException:
                await conn.rollback()
                raise
        log.info(
            "database %s migrated to schema version %d (%s)", self.path, migration.version, migration.name
        )
