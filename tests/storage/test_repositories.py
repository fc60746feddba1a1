"""Repositories round-trip on a real SQLite file, survive a reopen, keep guilds apart and keys unreadable."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cad.models import CadCredentials
from bot.storage import (
    Category,
    CommandGroup,
    KeyDecryptionError,
    MissingSecretKeyError,
    RouteConfig,
    Storage,
)
from bot.storage.repositories import MAX_ERROR_LENGTH
from bot.storage.secrets import generate_secret_key
from tests.storage.conftest import StepClock

GUILD_A, GUILD_B, GUILD_C, GUILD_D = (
    111_000_000_000_000_001,
    222_000_000_000_000_002,
    333_000_000_000_000_003,
    444,
)
API_KEY = "Zx9-SECRET-key-0001-abcdef"
OTHER_KEY = "Qw8-OTHER-key-0002-fedcba"


async def _reopen(db_path: Path, secret_key: str | None, clock: StepClock) -> Storage:
    return await Storage.open(db_path, secret_key, now=clock)


# ----------------------------------------------------------------------------------------------- guilds


async def test_unknown_guild_has_no_config(storage: Storage) -> None:
    assert await storage.guilds.get(GUILD_A) is None
    assert await storage.guilds.get_credentials(GUILD_A) is None


async def test_set_cad_round_trips_and_survives_reopen(
    storage: Storage, db_path: Path, secret_key: str, clock: StepClock
) -> None:
    config = await storage.guilds.set_cad(GUILD_A, " community-7 ", f" {API_KEY}\n", server_id=2)
    assert config.guild_id == GUILD_A
    assert config.community_id == "community-7"
    assert config.server_id == 2
    assert config.has_api_key
    assert config.push_key_hash == storage.vault.push_key_hash(API_KEY)
    assert config.updated_at == clock()
    assert config.is_configured
    await storage.close()

    reopened = await _reopen(db_path, secret_key, clock)
    try:
        assert await reopened.guilds.get(GUILD_A) == config
        credentials = await reopened.guilds.get_credentials(GUILD_A)
        assert isinstance(credentials, CadCredentials)
        assert credentials.community_id == "community-7"
        assert credentials.api_key.get_secret_value() == API_KEY
        assert credentials.server_id == 2
    finally:
        await reopened.close()


async def test_set_cad_replaces_the_previous_key(storage: Storage, clock: StepClock) -> None:
    await storage.guilds.set_cad(GUILD_A, "c1", API_KEY)
    clock.advance(60)
    config = await storage.guilds.set_cad(GUILD_A, "c2", OTHER_KEY)
    assert config.community_id == "c2"
    assert config.server_id == 1
    assert config.updated_at == clock()
    credentials = await storage.guilds.get_credentials(GUILD_A)
    assert credentials is not None and credentials.api_key.get_secret_value() == OTHER_KEY
    assert await storage.guilds.guilds_for_push_key(API_KEY) == []


async def test_the_key_is_not_stored_in_clear(storage: Storage, db_path: Path) -> None:
    await storage.guilds.set_cad(GUILD_A, "community-7", API_KEY)
    rows = list(await storage.db.conn.execute_fetchall("SELECT * FROM guild_config"))
    column_bytes = b"".join(
        value if isinstance(value, bytes) else str(value).encode() for value in rows[0] if value is not None
    )
    await storage.close()
    # The closed database (main file plus any WAL/shm leftovers) as raw bytes.
    file_bytes = b"".join(path.read_bytes() for path in db_path.parent.glob(db_path.name + "*"))
    assert b"community-7" in file_bytes  # the read itself works: non-secret data is visible
    for needle in (API_KEY, API_KEY.upper(), API_KEY.lower()):
        assert needle.encode() not in column_bytes
        assert needle.encode() not in file_bytes
        assert needle.encode("utf-16-le") not in file_bytes


async def test_storing_a_key_needs_the_secret_key(db_path: Path, clock: StepClock) -> None:
    keyless = await Storage.open(db_path, None, now=clock)
    try:
        with pytest.raises(MissingSecretKeyError, match="generate-secret-key"):
            await keyless.guilds.set_cad(GUILD_A, "community-7", API_KEY)
        assert await keyless.guilds.get(GUILD_A) is None
        assert await keyless.guilds.guilds_for_push_key(API_KEY) == []
    finally:
        await keyless.close()


async def test_reading_a_key_with_a_changed_secret_key_is_a_clear_error(
    storage: Storage, db_path: Path, clock: StepClock
) -> None:
    await storage.guilds.set_cad(GUILD_A, "community-7", API_KEY)
    await storage.close()
    for secret in (generate_secret_key(), None):
        other = await _reopen(db_path, secret, clock)
        try:
            # Non-secret settings stay readable whatever the key.
            config = await other.guilds.get(GUILD_A)
            assert config is not None and config.has_api_key
            with pytest.raises((KeyDecryptionError, MissingSecretKeyError)) as caught:
                await other.guilds.get_credentials(GUILD_A)
            assert API_KEY not in str(caught.value)
            assert await other.guilds.guilds_for_push_key(API_KEY) == []
        finally:
            await other.close()


@pytest.mark.parametrize(
    ("community", "key", "server_id", "message"),
    [
        ("c", "", 1, "API key is empty"),
        ("c", "   ", 1, "API key is empty"),
        ("c", "two words", 1, "must not contain spaces"),
        ("  ", API_KEY, 1, "community ID is empty"),
        ("c", API_KEY, -1, "server ID"),
    ],
)
async def test_set_cad_rejects_bad_input_without_echoing_the_key(
    storage: Storage, community: str, key: str, server_id: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        await storage.guilds.set_cad(GUILD_A, community, key, server_id)
    if key.strip():
        assert key not in str(caught.value)
    assert await storage.guilds.get(GUILD_A) is None


async def test_server_id_and_cooldown(storage: Storage, clock: StepClock) -> None:
    await storage.guilds.set_cooldown(GUILD_A, 90)
    config = await storage.guilds.get(GUILD_A)
    assert config is not None
    assert (config.cooldown_911_s, config.server_id, config.has_api_key, config.community_id) == (
        90,
        1,
        False,
        None,
    )
    assert not config.is_configured

    clock.advance(5)
    await storage.guilds.set_cad(GUILD_A, "c", API_KEY, server_id=3)
    config = await storage.guilds.get(GUILD_A)
    assert config is not None
    assert (config.cooldown_911_s, config.server_id, config.updated_at) == (90, 3, clock())
    credentials = await storage.guilds.get_credentials(GUILD_A)
    assert credentials is not None and credentials.server_id == 3

    for bad in (-1, 86_401, True):
        with pytest.raises(ValueError, match="cooldown"):
            await storage.guilds.set_cooldown(GUILD_A, bad)
    with pytest.raises(ValueError, match="Discord ID"):
        await storage.guilds.set_cooldown(0, 30)


async def test_push_key_finds_every_sharing_guild_and_nothing_else(storage: Storage) -> None:
    await storage.guilds.set_cad(GUILD_A, "community-7", API_KEY)
    await storage.guilds.set_cad(GUILD_B, "community-7", API_KEY, server_id=2)
    await storage.guilds.set_cad(GUILD_C, "community-9", OTHER_KEY)
    await storage.guilds.set_cooldown(GUILD_D, 10)  # a guild with settings but no key

    shared = await storage.guilds.guilds_for_push_key(API_KEY)
    assert [config.guild_id for config in shared] == [GUILD_A, GUILD_B]
    assert [config.server_id for config in shared] == [1, 2]
    # FiveM compares keys case-insensitively; a sender may add whitespace.
    assert await storage.guilds.guilds_for_push_key(API_KEY.lower()) == shared
    assert await storage.guilds.guilds_for_push_key(f" {API_KEY.upper()} ") == shared

    assert [c.guild_id for c in await storage.guilds.guilds_for_push_key(OTHER_KEY)] == [GUILD_C]
    assert await storage.guilds.guilds_for_push_key("not-a-key") == []
    assert await storage.guilds.guilds_for_push_key(API_KEY[:-1]) == []
    assert await storage.guilds.guilds_for_push_key("") == []

    assert await storage.guilds.all_push_key_hashes() == {
        storage.vault.push_key_hash(API_KEY),
        storage.vault.push_key_hash(OTHER_KEY),
    }


async def test_reset_forgets_one_guild_entirely(storage: Storage) -> None:
    for guild in (GUILD_A, GUILD_B):
        await storage.guilds.set_cad(guild, "community-7", API_KEY)
        await storage.routes.set_channel(guild, Category.PANIC, 900 + guild)
        await storage.roles.set(guild, CommandGroup.LOOKUP, 800 + guild)
        await storage.links.link(guild, 42, "acc-1")

    assert await storage.guilds.reset(GUILD_A) is True
    assert await storage.guilds.get(GUILD_A) is None
    assert (await storage.routes.get(GUILD_A, Category.PANIC)).channel_id is None
    assert await storage.roles.get(GUILD_A, CommandGroup.LOOKUP) is None
    assert await storage.links.get(GUILD_A, 42) is None
    assert [c.guild_id for c in await storage.guilds.guilds_for_push_key(API_KEY)] == [GUILD_B]
    for table in ("event_route", "command_role", "user_link"):
        rows = list(await storage.db.conn.execute_fetchall(f"SELECT guild_id FROM {table}"))  # noqa: S608
        assert {row[0] for row in rows} == {GUILD_B}

    assert (await storage.routes.get(GUILD_B, Category.PANIC)).channel_id == 900 + GUILD_B
    assert await storage.roles.get(GUILD_B, CommandGroup.LOOKUP) == 800 + GUILD_B
    assert await storage.links.get(GUILD_B, 42) is not None
    assert await storage.guilds.reset(GUILD_A) is False


# ----------------------------------------------------------------------------------------------- routes


async def test_route_defaults_when_never_set(storage: Storage) -> None:
    route = await storage.routes.get(GUILD_A, Category.CALLS_911)
    assert route == RouteConfig(guild_id=GUILD_A, category=Category.CALLS_911)
    assert (route.channel_id, route.enabled, route.ping_role_id, route.last_error) == (None, True, None, None)
    assert not route.delivers
    routes = await storage.routes.list(GUILD_A)
    assert list(routes) == list(Category)
    assert [r.category for r in routes.values()] == list(Category)


async def test_route_settings_round_trip_and_survive_reopen(
    storage: Storage, db_path: Path, secret_key: str, clock: StepClock
) -> None:
    await storage.routes.set_channel(GUILD_A, Category.CALLS_911, 5001)
    await storage.routes.set_ping_role(GUILD_A, Category.CALLS_911, 6001)
    await storage.routes.set_enabled(GUILD_A, Category.UNITS, False)
    route = await storage.routes.set_channel(GUILD_A, Category.UNITS, 5002)
    assert (route.channel_id, route.enabled, route.delivers) == (5002, False, False)
    # Plain strings are accepted where a Category is expected (cogs receive them from Discord).
    await storage.routes.set_channel(GUILD_A, "records", 5003)  # type: ignore[arg-type]
    await storage.close()

    reopened = await _reopen(db_path, secret_key, clock)
    try:
        routes = await reopened.routes.list(GUILD_A)
        assert routes[Category.CALLS_911].channel_id == 5001
        assert routes[Category.CALLS_911].ping_role_id == 6001
        assert routes[Category.CALLS_911].delivers
        assert (routes[Category.UNITS].channel_id, routes[Category.UNITS].enabled) == (5002, False)
        assert routes[Category.RECORDS].channel_id == 5003
        assert routes[Category.PANIC] == RouteConfig(guild_id=GUILD_A, category=Category.PANIC)

        await reopened.routes.set_ping_role(GUILD_A, Category.CALLS_911, None)
        await reopened.routes.set_channel(GUILD_A, Category.RECORDS, None)
        await reopened.routes.set_enabled(GUILD_A, Category.UNITS, True)
        routes = await reopened.routes.list(GUILD_A)
        assert routes[Category.CALLS_911].ping_role_id is None
        assert routes[Category.RECORDS].channel_id is None
        assert routes[Category.UNITS].enabled
        # Routes alone create the guild's row, without any CAD settings.
        config = await reopened.guilds.get(GUILD_A)
        assert config is not None and not config.has_api_key
    finally:
        await reopened.close()


async def test_routes_do_not_cross_guilds(storage: Storage) -> None:
    await storage.routes.set_channel(GUILD_A, Category.PANIC, 5001)
    assert (await storage.routes.get(GUILD_B, Category.PANIC)).channel_id is None
    assert all(route.channel_id is None for route in (await storage.routes.list(GUILD_B)).values())


async def test_bad_category_and_ids_are_rejected(storage: Storage) -> None:
    with pytest.raises(ValueError, match="bogus"):
        await storage.routes.set_channel(GUILD_A, "bogus", 5001)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="channel ID"):
        await storage.routes.set_channel(GUILD_A, Category.PANIC, -5)
    with pytest.raises(ValueError, match="role ID"):
        await storage.routes.set_ping_role(GUILD_A, Category.PANIC, 0)
    assert await storage.guilds.get(GUILD_A) is None


async def test_failures_are_recorded_listed_and_cleared(storage: Storage, clock: StepClock) -> None:
    await storage.routes.set_channel(GUILD_A, Category.CALLS_911, 5001)
    await storage.routes.set_channel(GUILD_A, Category.PANIC, 5001)
    await storage.routes.set_channel(GUILD_A, Category.UNITS, 5002)
    await storage.routes.set_channel(GUILD_B, Category.CALLS_911, 7001)
    assert await storage.routes.failed(GUILD_A) == []

    failed_at = clock.advance(10)
    await storage.routes.mark_failed(GUILD_A, Category.UNITS, "Missing   Permissions\n(50013)")
    clock.advance(10)
    affected = await storage.routes.mark_failed_channel(5001, "Unknown Channel")
    assert {(r.guild_id, r.category) for r in affected} == {
        (GUILD_A, Category.CALLS_911),
        (GUILD_A, Category.PANIC),
    }
    assert all(r.last_error == "Unknown Channel" and r.last_error_at == clock() for r in affected)

    failed = await storage.routes.failed(GUILD_A)
    assert [r.category for r in failed] == [Category.UNITS, Category.CALLS_911, Category.PANIC]
    assert failed[0].last_error == "Missing Permissions (50013)"
    assert failed[0].last_error_at == failed_at
    assert await storage.routes.failed(GUILD_B) == []

    await storage.routes.clear_failure(GUILD_A, Category.UNITS)
    cleared = await storage.routes.clear_failure_channel(5001)
    assert all(r.last_error is None and r.last_error_at is None for r in cleared)
    assert await storage.routes.failed(GUILD_A) == []

    # Pointing a route at a channel again (the admin fixed it) clears its failure.
    await storage.routes.mark_failed(GUILD_A, Category.PANIC, "Missing Access")
    await storage.routes.set_channel(GUILD_A, Category.PANIC, 5001)
    assert await storage.routes.failed(GUILD_A) == []


async def test_failure_reason_is_clipped_and_unset_routes_are_left_alone(storage: Storage) -> None:
    await storage.routes.mark_failed(GUILD_A, Category.OTHER, "never configured")
    assert await storage.guilds.get(GUILD_A) is None
    await storage.routes.set_channel(GUILD_A, Category.OTHER, 5001)
    await storage.routes.mark_failed(GUILD_A, Category.OTHER, "x" * 5000)
    route = await storage.routes.get(GUILD_A, Category.OTHER)
    assert route.last_error is not None and len(route.last_error) == MAX_ERROR_LENGTH


# ------------------------------------------------------------------------------------------ command roles


async def test_command_roles_round_trip(
    storage: Storage, db_path: Path, secret_key: str, clock: StepClock
) -> None:
    assert await storage.roles.list(GUILD_A) == dict.fromkeys(CommandGroup)
    await storage.roles.set(GUILD_A, CommandGroup.CALLS_911, 9001)
    await storage.roles.set(GUILD_A, CommandGroup.MAP, 9002)
    await storage.roles.set(GUILD_A, CommandGroup.MAP, 9003)
    await storage.roles.set(GUILD_B, CommandGroup.UNITS, 9004)
    await storage.close()

    reopened = await _reopen(db_path, secret_key, clock)
    try:
        roles = await reopened.roles.list(GUILD_A)
        assert list(roles) == list(CommandGroup)
        assert roles[CommandGroup.CALLS_911] == 9001
        assert roles[CommandGroup.MAP] == 9003
        assert roles[CommandGroup.UNITS] is None
        assert await reopened.roles.get(GUILD_A, CommandGroup.LOOKUP) is None
        assert await reopened.roles.get(GUILD_B, CommandGroup.UNITS) == 9004

        await reopened.roles.set(GUILD_A, CommandGroup.MAP, None)
        assert await reopened.roles.get(GUILD_A, CommandGroup.MAP) is None
        with pytest.raises(ValueError, match="nope"):
            await reopened.roles.set(GUILD_A, "nope", 1)  # type: ignore[arg-type]
    finally:
        await reopened.close()


# ----------------------------------------------------------------------------------------------- links


async def test_links_round_trip(storage: Storage, db_path: Path, secret_key: str, clock: StepClock) -> None:
    link = await storage.links.link(GUILD_A, 42, " ABCDEF-0001 ", username="Officer Jones", api_id="42")
    assert (link.guild_id, link.user_id, link.account_uuid) == (GUILD_A, 42, "abcdef-0001")
    assert (link.username, link.api_id, link.linked_at) == ("Officer Jones", "42", clock())
    await storage.links.link(GUILD_A, 43, "abcdef-0002")
    await storage.close()

    reopened = await _reopen(db_path, secret_key, clock)
    try:
        assert await reopened.links.get(GUILD_A, 42) == link
        assert await reopened.links.find_by_account(GUILD_A, "ABCDEF-0001") == link
        assert await reopened.links.count(GUILD_A) == 2

        clock.advance(30)
        relinked = await reopened.links.link(GUILD_A, 42, "abcdef-0003")
        assert (relinked.account_uuid, relinked.username, relinked.linked_at) == (
            "abcdef-0003",
            None,
            clock(),
        )
        assert await reopened.links.find_by_account(GUILD_A, "abcdef-0001") is None

        assert await reopened.links.unlink(GUILD_A, 42) is True
        assert await reopened.links.unlink(GUILD_A, 42) is False
        assert await reopened.links.get(GUILD_A, 42) is None
        assert await reopened.links.count(GUILD_A) == 1
        assert await reopened.links.find_by_account(GUILD_A, "  ") is None
    finally:
        await reopened.close()


async def test_an_account_moves_to_the_member_who_linked_it_last(storage: Storage) -> None:
    await storage.links.link(GUILD_A, 42, "acc-1")
    await storage.links.link(GUILD_A, 43, "ACC-1")
    assert await storage.links.get(GUILD_A, 42) is None
    found = await storage.links.find_by_account(GUILD_A, "acc-1")
    assert found is not None and found.user_id == 43


async def test_links_do_not_cross_guilds(storage: Storage) -> None:
    await storage.links.link(GUILD_A, 42, "acc-1")
    await storage.links.link(GUILD_B, 42, "acc-2")
    await storage.links.link(GUILD_B, 43, "acc-1")  # same account in another guild: both links stand
    a = await storage.links.get(GUILD_A, 42)
    assert a is not None and a.account_uuid == "acc-1"
    found = await storage.links.find_by_account(GUILD_A, "acc-1")
    assert found is not None and found.user_id == 42
    assert await storage.links.find_by_account(GUILD_A, "acc-2") is None
    assert await storage.links.count(GUILD_B) == 2
    assert await storage.links.unlink(GUILD_C, 42) is False
    with pytest.raises(ValueError, match="account UUID is empty"):
        await storage.links.link(GUILD_A, 44, "   ")
