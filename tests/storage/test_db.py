"""Database: opening, pragmas, numbered migrations, transactions — all on real SQLite files."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from bot.storage.db import (
    BUSY_TIMEOUT_MS,
    MIGRATIONS_DIR,
    Database,
    DatabaseError,
    DatabaseUnavailableError,
    MigrationError,
    StatementError,
    is_storage_failure,
    load_migrations,
    split_statements,
)

SHIPPED = load_migrations()


def _write(folder: Path, name: str, sql: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(sql, encoding="utf-8")


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _user_version(path: Path) -> int:
    assert path.is_file()
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


async def _pragma(db: Database, name: str) -> object:
    rows = list(await db.conn.execute_fetchall(f"PRAGMA {name}"))
    return rows[0][0]


# ------------------------------------------------------------------------------------------- shipped schema


def test_shipped_migrations_are_numbered_from_one_without_gaps() -> None:
    assert [migration.version for migration in SHIPPED] == list(range(1, len(SHIPPED) + 1))
    assert SHIPPED[0].name == "0001_core.sql"
    assert all(path.name[:4].isdigit() for path in MIGRATIONS_DIR.glob("*.sql"))


async def test_open_creates_folder_and_migrates_an_empty_database(db_path: Path) -> None:
    assert not db_path.parent.exists()
    db = await Database.open(db_path)
    try:
        assert await db.schema_version() == len(SHIPPED)
    finally:
        await db.close()
    assert _user_version(db_path) == len(SHIPPED)
    assert {"guild_config", "event_route", "command_role", "user_link"} <= _tables(db_path)


async def test_connection_settings(db_path: Path) -> None:
    async with await Database.open(db_path) as db:
        assert await _pragma(db, "journal_mode") == "wal"
        assert await _pragma(db, "foreign_keys") == 1
        assert await _pragma(db, "synchronous") == 1  # NORMAL
        assert await _pragma(db, "busy_timeout") == BUSY_TIMEOUT_MS


async def test_reopening_is_idempotent_and_keeps_data(db_path: Path) -> None:
    async with await Database.open(db_path) as db, db.transaction() as conn:
        await conn.execute("INSERT INTO guild_config (guild_id, updated_at) VALUES (1, 'now')")
    for _ in range(2):
        async with await Database.open(db_path) as db:
            assert await db.schema_version() == len(SHIPPED)
            rows = list(await db.conn.execute_fetchall("SELECT guild_id FROM guild_config"))
            assert [row[0] for row in rows] == [1]


async def test_async_with_closes_the_connection(db_path: Path) -> None:
    async with await Database.open(db_path) as db:
        assert db.is_open
    assert not db.is_open
    with pytest.raises(DatabaseError, match="closed"):
        _ = db.conn
    await db.close()  # a second close is harmless


async def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    path.write_bytes(b"this is a text file, not an SQLite database " * 100)
    with pytest.raises(
        DatabaseError, match=r"cannot use the database .*bot\.sqlite3: file is not a database"
    ):
        await Database.open(path)


async def test_unusable_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(DatabaseError, match="cannot create the database folder"):
        await Database.open(blocker / "bot.sqlite3")


async def test_two_processes_opening_a_new_file_at_once_both_succeed(db_path: Path) -> None:
    # The bot and the admin CLI may start together; each migration re-checks the version under the write lock.
    first, second = await asyncio.gather(Database.open(db_path), Database.open(db_path))
    try:
        assert await first.schema_version() == await second.schema_version() == len(SHIPPED)
    finally:
        await first.close()
        await second.close()


async def test_many_processes_racing_to_create_the_same_file_all_succeed(tmp_path: Path) -> None:
    # Racing to switch a new file to WAL made SQLite answer "database is locked" without waiting (about one
    # round in ten here); each opener now waits for the other instead of failing.
    for round_number in range(40):
        path = tmp_path / f"race-{round_number}.sqlite3"
        opened = await asyncio.gather(*(Database.open(path) for _ in range(4)))
        try:
            assert {await db.schema_version() for db in opened} == {len(SHIPPED)}
        finally:
            for db in opened:
                await db.close()


async def test_panic_cards_migration_keeps_every_card_and_card_post(tmp_path: Path) -> None:
    """0004 rebuilds push_card (a new kind): cards, their ids and the outbox rows that point at them survive."""
    before = tmp_path / "before"
    for migration in SHIPPED[:3]:
        _write(before, migration.name, (MIGRATIONS_DIR / migration.name).read_text(encoding="utf-8"))
    path = tmp_path / "upgraded.sqlite3"
    async with await Database.open(path, migrations_dir=before) as db, db.transaction() as conn:
        await conn.execute("INSERT INTO guild_config (guild_id, updated_at) VALUES (1, 'now')")
        for call_id in (311, 312, 313):
            await conn.execute(
                "INSERT INTO push_card (guild_id, kind, call_id, channel_id, state, message_id, created_at, "
                "updated_at) VALUES (1, 'dispatch', ?, 10, '{}', ?, 0, 0)",
                (call_id, 500 + call_id if call_id == 311 else None),
            )
        await conn.execute("DELETE FROM push_card WHERE call_id = 313")
        await conn.execute(
            "INSERT INTO push_outbox (guild_id, channel_id, category, card_id, embed, accepted_at, created_at, "
            "status, message_id) VALUES (1, 10, 'dispatch', 1, NULL, 0, 0, 'sent', 811), "
            "(1, 10, 'units', NULL, '{}', 0, 0, 'pending', NULL), "
            "(1, 10, 'dispatch', 2, NULL, 0, 0, 'pending', NULL)"
        )

    async with await Database.open(path) as db:
        assert await db.schema_version() == len(SHIPPED)
        outbox = [
            tuple(row)
            for row in await db.conn.execute_fetchall(
                "SELECT id, card_id, status, message_id FROM push_outbox ORDER BY id"
            )
        ]
        assert outbox == [(1, 1, "sent", 811), (2, None, "pending", None), (3, 2, "pending", None)]
        cards = [
            tuple(row)
            for row in await db.conn.execute_fetchall(
                "SELECT id, kind, call_id, message_id FROM push_card ORDER BY id"
            )
        ]
        assert cards == [(1, "dispatch", 311, 811), (2, "dispatch", 312, None)]
        async with db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO push_card (guild_id, kind, call_id, channel_id, state, created_at, updated_at) "
                "VALUES (1, 'panic', 1234, 10, '{}', 0, 0)"
            )
            assert cursor.lastrowid == 4  # the deleted card's id 3 is not handed out again
            with pytest.raises(sqlite3.IntegrityError):
                await conn.execute(
                    "INSERT INTO push_card (guild_id, kind, call_id, channel_id, state, created_at, updated_at) "
                    "VALUES (1, 'bogus', 1, 10, '{}', 0, 0)"
                )
            # The outbox still follows its cards.
            await conn.execute("DELETE FROM push_card WHERE id = 2")
        remaining = await db.conn.execute_fetchall("SELECT id FROM push_outbox ORDER BY id")
        assert [row[0] for row in remaining] == [1, 2]
        assert list(await db.conn.execute_fetchall("PRAGMA foreign_key_check")) == []


# ------------------------------------------------------------------------------------------- migration runner


async def test_migrations_apply_in_order_each_building_on_the_last(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    _write(folder, "0002_add_colour.sql", "ALTER TABLE thing ADD COLUMN colour TEXT;")
    _write(folder, "0001_thing.sql", "CREATE TABLE thing (id INTEGER PRIMARY KEY);")
    path = tmp_path / "ordered.sqlite3"
    async with await Database.open(path, migrations_dir=folder) as db:
        assert await db.schema_version() == 2
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO thing (id, colour) VALUES (1, 'red')")

    # A later release adds 0003: only it runs on the existing database.
    _write(folder, "0003_more.sql", "ALTER TABLE thing ADD COLUMN size INTEGER;")
    async with await Database.open(path, migrations_dir=folder) as db:
        assert await db.schema_version() == 3
        rows = list(await db.conn.execute_fetchall("SELECT id, colour, size FROM thing"))
        assert [tuple(row) for row in rows] == [(1, "red", None)]


async def test_failed_migration_rolls_back_and_keeps_the_version(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    _write(folder, "0001_base.sql", "CREATE TABLE base (id INTEGER PRIMARY KEY);")
    # The first statement succeeds, the second fails: the first must not survive either.
    _write(
        folder, "0002_broken.sql", "CREATE TABLE half (id INTEGER);\nINSERT INTO missing_table VALUES (1);"
    )
    path = tmp_path / "broken.sqlite3"
    with pytest.raises(MigrationError, match=r"0002_broken\.sql.*stays at schema version 1"):
        await Database.open(path, migrations_dir=folder)
    assert _user_version(path) == 1
    assert _tables(path) == {"base"}

    _write(folder, "0002_broken.sql", "CREATE TABLE half (id INTEGER);")
    async with await Database.open(path, migrations_dir=folder) as db:
        assert await db.schema_version() == 2
    assert _tables(path) == {"base", "half"}


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"0001_a.sql": "SELECT 1;", "0003_c.sql": "SELECT 1;"}, "expected migration 0002"),
        ({"0002_b.sql": "SELECT 1;"}, "expected migration 0001"),
        ({"0001_a.sql": "SELECT 1;", "0001_b.sql": "SELECT 1;"}, "expected migration 0002"),
        ({"1_a.sql": "SELECT 1;"}, "NNNN_lower_case_name.sql"),
        ({"0001_a.sql": "CREATE TABLE t (id INTEGER)"}, "unterminated"),
    ],
)
def test_inconsistent_migration_files_are_rejected(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    for name, sql in files.items():
        _write(tmp_path, name, sql)
    with pytest.raises(MigrationError, match=message):
        load_migrations(tmp_path)


async def test_database_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {len(SHIPPED) + 5}")
    with pytest.raises(MigrationError, match="newer bot"):
        await Database.open(path)


def test_split_statements_respects_strings_comments_and_triggers() -> None:
    script = """
    -- a comment; with a semicolon
    CREATE TABLE t (note TEXT DEFAULT 'a;b');
    /* block; comment */
    CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN
        UPDATE t SET note = 'x;y' WHERE rowid = new.rowid;
    END;
    INSERT INTO t DEFAULT VALUES;
    -- trailing comment
    """
    statements = split_statements(script)
    assert len(statements) == 3
    assert statements[0].endswith("DEFAULT 'a;b');")
    assert statements[1].startswith("/* block; comment */\n    CREATE TRIGGER")
    assert statements[1].endswith("END;")
    assert statements[2] == "INSERT INTO t DEFAULT VALUES;"


# ------------------------------------------------------------------------------------------- transactions


async def test_transaction_commits_or_rolls_back(db_path: Path) -> None:
    async with await Database.open(db_path) as db:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO guild_config (guild_id, updated_at) VALUES (1, 'now')")
        with pytest.raises(RuntimeError):
            async with db.transaction() as conn:
                await conn.execute("INSERT INTO guild_config (guild_id, updated_at) VALUES (2, 'now')")
                raise RuntimeError("boom")
        rows = list(await db.conn.execute_fetchall("SELECT guild_id FROM guild_config"))
        assert [row[0] for row in rows] == [1]


async def test_nested_transaction_is_a_savepoint(db_path: Path) -> None:
    async with await Database.open(db_path) as db:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO guild_config (guild_id, updated_at) VALUES (1, 'now')")
            with pytest.raises(RuntimeError):
                async with db.transaction() as inner:
                    await inner.execute("INSERT INTO guild_config (guild_id, updated_at) VALUES (2, 'now')")
                    raise RuntimeError("inner fails")
            async with db.transaction() as inner:
                await inner.execute("INSERT INTO guild_config (guild_id, updated_at) VALUES (3, 'now')")
        rows = list(await db.conn.execute_fetchall("SELECT guild_id FROM guild_config ORDER BY guild_id"))
        assert [row[0] for row in rows] == [1, 3]


async def test_concurrent_transactions_do_not_share_a_rollback(db_path: Path) -> None:
    """Task B's write must not land inside task A's open transaction and vanish with A's rollback."""
    async with await Database.open(db_path) as db:
        a_has_written = asyncio.Event()
        release_a = asyncio.Event()

        async def task_a() -> None:
            with pytest.raises(RuntimeError):
                async with db.transaction() as conn:
                    await conn.execute("INSERT INTO guild_config (guild_id, updated_at) VALUES (1, 'a')")
                    a_has_written.set()
                    await release_a.wait()
                    raise RuntimeError("A gives up")

        async def task_b() -> None:
            await a_has_written.wait()
            async with db.transaction() as conn:
                await conn.execute("INSERT INTO guild_config (guild_id, updated_at) VALUES (2, 'b')")

        a = asyncio.create_task(task_a())
        b = asyncio.create_task(task_b())
        await a_has_written.wait()
        # Let B run up to its lock wait; it must not be able to finish while A holds the transaction.
        for _ in range(20):
            await asyncio.sleep(0)
        assert not b.done()
        release_a.set()
        await asyncio.gather(a, b)
        rows = list(await db.conn.execute_fetchall("SELECT guild_id FROM guild_config"))
        assert [row[0] for row in rows] == [2]


# ------------------------------------------------------------------------- lone statements and the write lock


async def _guild_ids(db: Database) -> list[int]:
    rows = await db.conn.execute_fetchall("SELECT guild_id FROM guild_config ORDER BY rowid")
    return [row[0] for row in rows]


async def test_a_lone_write_commits_on_its_own_and_reports_what_it_changed(db_path: Path) -> None:
    async with await Database.open(db_path) as db:
        cursor = await db.write("INSERT INTO guild_config (guild_id, updated_at) VALUES (?, 'now')", (1,))
        assert cursor.rowcount == 1
        rows = await db.write_returning(
            "INSERT INTO guild_config (guild_id, updated_at) VALUES (2, 'now'), (3, 'now') RETURNING guild_id"
        )
        assert sorted(row[0] for row in rows) == [2, 3]
        assert not db.conn.in_transaction
    # Committed: another connection sees them.
    with sqlite3.connect(db_path) as other:
        assert [row[0] for row in other.execute("SELECT guild_id FROM guild_config ORDER BY guild_id")] == [
            1,
            2,
            3,
        ]


async def test_a_lone_write_inside_a_transaction_joins_it_and_a_failed_one_undoes_only_itself(
    db_path: Path,
) -> None:
    async with await Database.open(db_path) as db:
        with pytest.raises(RuntimeError):
            async with db.transaction():
                await db.write("INSERT INTO guild_config (guild_id, updated_at) VALUES (1, 'now')")
                raise RuntimeError("the transaction gives up")
        assert await _guild_ids(db) == []

        async with db.transaction():
            await db.write("INSERT INTO guild_config (guild_id, updated_at) VALUES (1, 'now')")
            with pytest.raises(StatementError):
                await db.write("INSERT INTO guild_config (guild_id, updated_at) VALUES (1, 'again')")
            await db.write("INSERT INTO guild_config (guild_id, updated_at) VALUES (2, 'now')")
        assert await _guild_ids(db) == [1, 2]


async def test_a_lone_write_never_lands_inside_another_tasks_transaction(db_path: Path) -> None:
    async with await Database.open(db_path) as db:
        a_has_written = asyncio.Event()
        release_a = asyncio.Event()

        async def task_a() -> None:
            with pytest.raises(RuntimeError):
                async with db.transaction() as conn:
                    await conn.execute("INSERT INTO guild_config (guild_id, updated_at) VALUES (1, 'a')")
                    a_has_written.set()
                    await release_a.wait()
                    raise RuntimeError("A gives up")

        a = asyncio.create_task(task_a())
        await a_has_written.wait()
        b = asyncio.create_task(
            db.write("INSERT INTO guild_config (guild_id, updated_at) VALUES (2, 'b')", urgent=True)
        )
        for _ in range(20):
            await asyncio.sleep(0)
        assert not b.done()
        release_a.set()
        await asyncio.gather(a, b)
        assert await _guild_ids(db) == [2]


async def test_urgent_writes_are_served_before_background_writers_already_waiting(db_path: Path) -> None:
    async with await Database.open(db_path) as db:
        release = asyncio.Event()
        holding = asyncio.Event()

        async def holder() -> None:
            async with db.transaction():
                holding.set()
                await release.wait()

        committed: list[str] = []

        async def background(name: str) -> None:
            async with db.transaction() as conn:
                await conn.execute(
                    "INSERT INTO guild_config (guild_id, updated_at) VALUES (NULL, ?)", (name,)
                )
            committed.append(name)

        async def urgent() -> None:
            await db.write(
                "INSERT INTO guild_config (guild_id, updated_at) VALUES (NULL, 'ack')", urgent=True
            )
            committed.append("ack")

        held = asyncio.create_task(holder())
        await holding.wait()
        waiting = [asyncio.create_task(background(name)) for name in ("first", "second")]
        for _ in range(5):
            await asyncio.sleep(0)
        acknowledging = asyncio.create_task(urgent())
        for _ in range(5):
            await asyncio.sleep(0)
        release.set()
        await asyncio.gather(held, *waiting, acknowledging)
        # The urgent write asked last but went first; background writers kept their own order.
        assert committed == ["ack", "first", "second"]
        rows = await db.conn.execute_fetchall("SELECT updated_at FROM guild_config ORDER BY guild_id")
        assert [row[0] for row in rows] == ["ack", "first", "second"]


async def test_a_writer_cancelled_while_waiting_does_not_keep_the_lock(db_path: Path) -> None:
    async with await Database.open(db_path) as db:
        release = asyncio.Event()
        holding = asyncio.Event()

        async def holder() -> None:
            async with db.transaction():
                holding.set()
                await release.wait()

        held = asyncio.create_task(holder())
        await holding.wait()
        doomed = asyncio.create_task(
            db.write("INSERT INTO guild_config (guild_id, updated_at) VALUES (1, 'x')")
        )
        for _ in range(5):
            await asyncio.sleep(0)
        doomed.cancel()
        release.set()
        await held
        with pytest.raises(asyncio.CancelledError):
            await doomed
        async with asyncio.timeout(5):
            await db.write("INSERT INTO guild_config (guild_id, updated_at) VALUES (2, 'y')")
        assert await _guild_ids(db) == [2]


async def test_background_work_steps_aside_for_a_pending_urgent_write_but_never_for_ever(
    db_path: Path,
) -> None:
    async with await Database.open(db_path) as db:
        order: list[str] = []
        release = asyncio.Event()
        holding = asyncio.Event()

        async def holder() -> None:
            async with db.transaction():
                holding.set()
                await release.wait()

        async def urgent() -> None:
            await db.write(
                "INSERT INTO guild_config (guild_id, updated_at) VALUES (NULL, 'ack')", urgent=True
            )
            order.append("urgent")

        async def background() -> None:
            waited = await db.yield_to_urgent_writes(30.0)
            order.append(f"background (waited={waited})")

        held = asyncio.create_task(holder())
        await holding.wait()
        pending = asyncio.create_task(urgent())
        for _ in range(5):
            await asyncio.sleep(0)
        stepping_aside = asyncio.create_task(background())
        for _ in range(20):
            await asyncio.sleep(0)
        assert order == []  # the urgent write is still pending, so background work waits
        release.set()
        await asyncio.gather(held, pending, stepping_aside)
        assert order == ["urgent", "background (waited=True)"]

        # Bounded: with an urgent write pending for good, background work goes on after max_wait_s.
        release.clear()
        holding.clear()
        held = asyncio.create_task(holder())
        await holding.wait()
        pending = asyncio.create_task(urgent())
        for _ in range(5):
            await asyncio.sleep(0)
        async with asyncio.timeout(10):
            assert await db.yield_to_urgent_writes(0.01) is True
        assert not pending.done()
        release.set()
        await asyncio.gather(held, pending)
        # Nothing pending: no wait at all.
        assert await db.yield_to_urgent_writes(30.0) is False


async def test_an_interrupt_ends_the_wait_for_a_quiet_moment(db_path: Path) -> None:
    """Background work waiting for the urgent writers to go quiet stops waiting soon after its interrupt is set
    (more urgent work came), however far off the quiet moment still is."""
    async with await Database.open(db_path) as db:
        await db.write("INSERT INTO guild_config (guild_id, updated_at) VALUES (1, 'ack')", urgent=True)
        interrupt = asyncio.Event()
        waiting = asyncio.create_task(db.yield_to_urgent_writes(30.0, quiet_s=30.0, interrupt=interrupt))
        await asyncio.sleep(0.2)
        assert not waiting.done()  # the last urgent write was just now: quiet only in 30 s
        interrupt.set()
        async with asyncio.timeout(10):
            assert await waiting is True
        # Already set: no wait at all.
        assert await db.yield_to_urgent_writes(30.0, quiet_s=30.0, interrupt=interrupt) is False


async def test_a_sqlite_without_returning_is_refused_with_a_clear_message(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 31, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.31.1")
    with pytest.raises(DatabaseError, match=r"SQLite 3\.31\.1.*3\.35\.0 or newer"):
        await Database.open(db_path)
    assert not await asyncio.to_thread(db_path.exists)


# ------------------------------------------------------------------------- whether writes reach the disk


def _sqlite_error(db_path: Path, setup: str, statement: str) -> sqlite3.Error:
    with sqlite3.connect(db_path) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS t (x PRIMARY KEY)")
        conn.execute("INSERT OR IGNORE INTO t VALUES (1)")
        if setup:
            conn.execute(setup)
        try:
            conn.execute(statement)
        except sqlite3.Error as exc:
            return exc
    raise AssertionError(f"{statement} did not fail")


@pytest.mark.parametrize(
    ("setup", "statement", "storage_failure"),
    [
        ("PRAGMA query_only = 1", "INSERT INTO t VALUES (2)", True),  # read-only
        ("PRAGMA max_page_count = 1", "INSERT INTO t VALUES (randomblob(100000))", True),  # full
        ("", "INSERT INTO t VALUES (1)", False),  # a constraint: the statement's fault, not the disk's
        ("", "INSERT INTO nowhere VALUES (1)", False),  # no such table: a bug
        ("", "INSERT INTO t VALUES (", False),  # syntax
    ],
    ids=["read-only", "full", "constraint", "no-such-table", "syntax"],
)
def test_storage_failures_are_told_apart_from_bad_statements(
    db_path: Path, setup: str, statement: str, storage_failure: bool
) -> None:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    assert is_storage_failure(_sqlite_error(db_path, setup, statement)) is storage_failure


async def test_write_health_follows_the_last_write(db_path: Path) -> None:
    async with await Database.open(db_path) as db:
        writes = db.writes
        assert (writes.failing, writes.last_failure) == (False, None)
        await db.write("INSERT INTO guild_config (guild_id, updated_at) VALUES (1, 'now')")
        assert writes.last_success_at is not None and not writes.failing

        await db.conn.execute("PRAGMA query_only = 1")
        with pytest.raises(DatabaseUnavailableError):
            await db.write("INSERT INTO guild_config (guild_id, updated_at) VALUES (2, 'now')")
        assert writes.failing
        assert writes.last_failure is not None
        assert writes.last_failure.error == "attempt to write a readonly database"
        with pytest.raises(DatabaseUnavailableError):
            async with db.transaction() as conn:
                await conn.execute("INSERT INTO guild_config (guild_id, updated_at) VALUES (3, 'now')")
        with pytest.raises(DatabaseUnavailableError):
            await db.write_returning(
                "INSERT INTO guild_config (guild_id, updated_at) VALUES (4, 'now') RETURNING 1"
            )
        assert writes.failing

        # A statement's own mistake is not a storage failure, and does not clear one either.
        await db.conn.execute("PRAGMA query_only = 0")
        with pytest.raises(StatementError):
            await db.write("INSERT INTO guild_config (guild_id, updated_at) VALUES (1, 'again')")
        assert writes.failing
        with pytest.raises(RuntimeError):
            async with db.transaction():
                raise RuntimeError("the caller gives up")
        assert writes.failing

        # Nor does a write that changes nothing: a commit with nothing in it never touches the disk.
        await db.write("DELETE FROM guild_config WHERE guild_id = 99")
        async with db.transaction() as conn:
            await conn.execute("UPDATE guild_config SET updated_at = 'later' WHERE guild_id = 99")
        assert writes.failing

        async with db.transaction() as conn:
            await conn.execute("INSERT INTO guild_config (guild_id, updated_at) VALUES (5, 'now')")
        assert not writes.failing
        assert writes.last_failure.error == "attempt to write a readonly database"  # kept for reports


async def test_sqlite_errors_leave_storage_as_its_own_kinds(db_path: Path) -> None:
    """Callers catch DatabaseError alone: SQLite's exceptions become its kinds, the original kept as the cause."""
    async with await Database.open(db_path) as db:
        with pytest.raises(StatementError, match="no such table: nowhere") as missing:
            await db.fetch_all("SELECT * FROM nowhere")
        assert isinstance(missing.value.__cause__, sqlite3.OperationalError)
        with pytest.raises(StatementError, match="syntax error"):
            await db.fetch_one("SELEC 1")
        with pytest.raises(StatementError, match="no such table: elsewhere"):
            async with db.transaction() as conn:
                await conn.execute("INSERT INTO elsewhere VALUES (1)")

        await db.write("INSERT INTO guild_config (guild_id, updated_at) VALUES (1, 'now')")
        await db.conn.execute("PRAGMA query_only = 1")
        with pytest.raises(DatabaseUnavailableError, match="readonly") as readonly:
            async with db.transaction():
                await db.write("DELETE FROM guild_config")
        assert isinstance(readonly.value.__cause__, sqlite3.OperationalError)
        assert isinstance(readonly.value, DatabaseError)

        # The block's own exceptions are the caller's business and pass through untouched.
        await db.conn.execute("PRAGMA query_only = 0")
        with pytest.raises(KeyError):
            async with db.transaction():
                raise KeyError("mine")
        assert [row[0] for row in await db.fetch_all("SELECT guild_id FROM guild_config")] == [1]
