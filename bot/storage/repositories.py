"""Per-guild settings in SQLite: CAD connection, event routes, command roles, linked accounts.

Every method is scoped by ``guild_id`` (except lookups that must search across guilds, which say so),
so one guild's data never reaches another. Several guilds may share one CAD community.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import aiosqlite
from pydantic import SecretStr

from bot.cad.models import CadCredentials
from bot.storage.db import Database
from bot.storage.models import Category, CommandGroup, GuildConfig, PushTransport, RouteConfig, UserLink
from bot.storage.secrets import KeyVault
from bot.timing import DateTimeClock, utc_now

# SQLite integers are signed 64-bit; Discord snowflakes fit with room to spare.
MAX_DISCORD_ID = 2**63 - 1
MAX_COOLDOWN_S = 86_400
MAX_ERROR_LENGTH = 500

# Aliases so annotations inside classes that define a method named ``list`` still mean the builtin.
_Routes = list[RouteConfig]
_Guilds = list[GuildConfig]


def _timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).isoformat()


def _check_id(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_DISCORD_ID:
        raise ValueError(f"{what} must be a Discord ID (a positive integer), got {value!r}")
    return value


def _check_optional_id(value: int | None, what: str) -> int | None:
    return None if value is None else _check_id(value, what)


def _check_server_id(server_id: int) -> int:
    if isinstance(server_id, bool) or not isinstance(server_id, int) or server_id < 0:
        raise ValueError(f"the server ID must be a whole number such as 1, got {server_id!r}")
    return server_id


def _row_dict(row: Mapping[str, Any] | aiosqlite.Row) -> dict[str, Any]:
    return {key: row[key] for key in row.keys()}  # noqa: SIM118 - sqlite3.Row is not iterable by key


async def _ensure_guild_row(conn: aiosqlite.Connection, guild_id: int, now: datetime) -> None:
    """Create the guild's parent row if missing (routes, roles and links reference it)."""
    await conn.execute(
        "INSERT INTO guild_config (guild_id, updated_at) VALUES (?, ?) ON CONFLICT (guild_id) DO NOTHING",
        (guild_id, _timestamp(now)),
    )


async def _touch_guild(conn: aiosqlite.Connection, guild_id: int, now: datetime) -> None:
    """Create the guild's row or mark it as changed now."""
    await conn.execute(
        "INSERT INTO guild_config (guild_id, updated_at) VALUES (?, ?) "
        "ON CONFLICT (guild_id) DO UPDATE SET updated_at = excluded.updated_at",
        (guild_id, _timestamp(now)),
    )


class GuildRepository:
    """A guild's CAD connection: community ID, encrypted API key, server ID, 911 cooldown."""

    def __init__(self, db: Database, vault: KeyVault, *, now: DateTimeClock = utc_now) -> None:
        self._db = db
        self._vault = vault
        self._now = now

    async def get(self, guild_id: int) -> GuildConfig | None:
        row = await self._db.fetch_one(
            "SELECT guild_id, community_id, server_id, api_key_encrypted IS NOT NULL AS has_api_key, "
            "cooldown_911_s, push_key_hash, push_transport, updated_at "
            "FROM guild_config "
            "WHERE guild_id = ?",
            (guild_id,),
        )
        return None if row is None else GuildConfig.model_validate(_row_dict(row))

    async def set_cad(
        self, guild_id: int, community_id: str, api_key: str | SecretStr, server_id: int = 1
    ) -> GuildConfig:
        """Store the guild's CAD credentials, the key encrypted; raises MissingSecretKeyError without one."""
        _check_id(guild_id, "guild ID")
        _check_server_id(server_id)
        community = community_id.strip()
        if not community:
            raise ValueError("the community ID is empty")
        plain = (api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key).strip()
        if not plain:
            raise ValueError("the API key is empty")
        if any(character.isspace() for character in plain):
            raise ValueError("the API key must not contain spaces or line breaks")
        # Both raise before anything is written when BOT_SECRET_KEY is missing.
        encrypted = self._vault.encrypt(plain)
        key_hash = self._vault.push_key_hash(plain)
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO guild_config "
                "(guild_id, community_id, server_id, api_key_encrypted, push_key_hash, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (guild_id) DO UPDATE SET community_id = excluded.community_id, "
                "server_id = excluded.server_id, api_key_encrypted = excluded.api_key_encrypted, "
                "push_key_hash = excluded.push_key_hash, updated_at = excluded.updated_at",
                (guild_id, community, server_id, encrypted, key_hash, _timestamp(self._now())),
            )
        config = await self.get(guild_id)
        assert config is not None
        return config

    async def set_push_transport(self, guild_id: int, transport: PushTransport | str) -> None:
        """How the guild receives push events (``http`` or ``websocket``)."""
        _check_id(guild_id, "guild ID")
        chosen = PushTransport(transport)
        async with self._db.transaction() as conn:
            await _touch_guild(conn, guild_id, self._now())
            await conn.execute(
                "UPDATE guild_config SET push_transport = ? WHERE guild_id = ?", (chosen.value, guild_id)
            )

    async def websocket_guilds(self) -> list[tuple[int, CadCredentials]]:
        """Every guild set up to receive push events over the websocket, with its decrypted credentials.

        Raises MissingSecretKeyError / KeyDecryptionError when BOT_SECRET_KEY is absent or has changed.
        """
        rows = await self._db.fetch_all(
            "SELECT guild_id, community_id, server_id, api_key_encrypted FROM guild_config "
            "WHERE push_transport = 'websocket' AND community_id IS NOT NULL AND api_key_encrypted IS NOT NULL "
            "ORDER BY guild_id"
        )
        return [
            (
                row["guild_id"],
                CadCredentials(
                    community_id=row["community_id"],
                    api_key=SecretStr(self._vault.decrypt(bytes(row["api_key_encrypted"]))),
                    server_id=row["server_id"],
                ),
            )
            for row in rows
        ]

    async def get_credentials(self, guild_id: int) -> CadCredentials | None:
        """The guild's decrypted credentials, or None if not set up.

        Raises MissingSecretKeyError / KeyDecryptionError when BOT_SECRET_KEY is absent or has changed.
        """
        row = await self._db.fetch_one(
            "SELECT community_id, server_id, api_key_encrypted FROM guild_config WHERE guild_id = ?",
            (guild_id,),
        )
        if row is None or row["community_id"] is None or row["api_key_encrypted"] is None:
            return None
        api_key = self._vault.decrypt(bytes(row["api_key_encrypted"]))
        return CadCredentials(
            community_id=row["community_id"], api_key=SecretStr(api_key), server_id=row["server_id"]
        )

    async def set_cooldown(self, guild_id: int, seconds: int) -> None:
        _check_id(guild_id, "guild ID")
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not 0 <= seconds <= MAX_COOLDOWN_S:
            raise ValueError(
                f"the 911 cooldown must be between 0 and {MAX_COOLDOWN_S} seconds, got {seconds!r}"
            )
        async with self._db.transaction() as conn:
            await _touch_guild(conn, guild_id, self._now())
            await conn.execute(
                "UPDATE guild_config SET cooldown_911_s = ? WHERE guild_id = ?", (seconds, guild_id)
            )

    async def guilds_for_push_key(self, api_key: str | SecretStr) -> _Guilds:
        """Every guild whose key matches ``api_key`` case-insensitively (FiveM's rule), across all guilds.

        Without BOT_SECRET_KEY no key can have been stored, so nothing matches.
        """
        plain = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        if not plain.strip() or not self._vault.has_key:
            return []
        rows = await self._db.fetch_all(
            "SELECT guild_id, community_id, server_id, api_key_encrypted IS NOT NULL AS has_api_key, "
            "cooldown_911_s, push_key_hash, push_transport, updated_at "
            "FROM guild_config "
            "WHERE push_key_hash = ? ORDER BY guild_id",
            (self._vault.push_key_hash(plain),),
        )
        return [GuildConfig.model_validate(_row_dict(row)) for row in rows]

    async def all_push_key_hashes(self) -> set[str]:
        """Hashes of every stored key, e.g. to reject unknown push keys before touching a guild."""
        rows = await self._db.fetch_all(
            "SELECT DISTINCT push_key_hash FROM guild_config WHERE push_key_hash IS NOT NULL"
        )
        return {row[0] for row in rows}

    async def reset(self, guild_id: int) -> bool:
        """Forget the guild's config, routes, command roles and links; True if anything existed."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute("DELETE FROM guild_config WHERE guild_id = ?", (guild_id,))
            # Children go with it through ON DELETE CASCADE.
            return cursor.rowcount > 0


def _default_route(guild_id: int, category: Category) -> RouteConfig:
    return RouteConfig(guild_id=guild_id, category=category)


def _route(row: Any) -> RouteConfig:
    return RouteConfig.model_validate(_row_dict(row))


_SET_ROUTE_CHANNEL = (
    "INSERT INTO event_route (guild_id, category, channel_id) VALUES (?, ?, ?) "
    "ON CONFLICT (guild_id, category) DO UPDATE SET channel_id = excluded.channel_id, "
    "last_error = NULL, last_error_at = NULL"
)
_SET_ROUTE_ENABLED = (
    "INSERT INTO event_route (guild_id, category, enabled) VALUES (?, ?, ?) "
    "ON CONFLICT (guild_id, category) DO UPDATE SET enabled = excluded.enabled"
)
_SET_ROUTE_PING_ROLE = (
    "INSERT INTO event_route (guild_id, category, ping_role_id) VALUES (?, ?, ?) "
    "ON CONFLICT (guild_id, category) DO UPDATE SET ping_role_id = excluded.ping_role_id"
)


class RouteRepository:
    """Which channel each category of push events goes to, per guild, and the last delivery failure."""

    def __init__(self, db: Database, *, now: DateTimeClock = utc_now) -> None:
        self._db = db
        self._now = now

    async def _upsert(self, statement: str, guild_id: int, category: Category, value: Any) -> None:
        async with self._db.transaction() as conn:
            await _touch_guild(conn, guild_id, self._now())
            await conn.execute(statement, (guild_id, Category(category).value, value))

    async def set_channel(self, guild_id: int, category: Category, channel_id: int | None) -> RouteConfig:
        """Point the category at a channel (None turns it off). Clears the last failure: the admin acted."""
        _check_id(guild_id, "guild ID")
        _check_optional_id(channel_id, "channel ID")
        await self._upsert(_SET_ROUTE_CHANNEL, guild_id, category, channel_id)
        return await self.get(guild_id, category)

    async def set_enabled(self, guild_id: int, category: Category, enabled: bool) -> RouteConfig:
        _check_id(guild_id, "guild ID")
        await self._upsert(_SET_ROUTE_ENABLED, guild_id, category, int(bool(enabled)))
        return await self.get(guild_id, category)

    async def set_ping_role(self, guild_id: int, category: Category, role_id: int | None) -> RouteConfig:
        _check_id(guild_id, "guild ID")
        _check_optional_id(role_id, "role ID")
        await self._upsert(_SET_ROUTE_PING_ROLE, guild_id, category, role_id)
        return await self.get(guild_id, category)

    async def get(self, guild_id: int, category: Category) -> RouteConfig:
        """The route, or the default (no channel, enabled, no ping role) if never set."""
        category = Category(category)
        row = await self._db.fetch_one(
            "SELECT guild_id, category, channel_id, enabled, ping_role_id, last_error, last_error_at "
            "FROM event_route "
            "WHERE guild_id = ? AND category = ?",
            (guild_id, category.value),
        )
        return _default_route(guild_id, category) if row is None else _route(row)

    async def list(self, guild_id: int) -> dict[Category, RouteConfig]:
        """All six categories, in declaration order, defaults filled in."""
        rows = await self._db.fetch_all(
            "SELECT guild_id, category, channel_id, enabled, ping_role_id, last_error, last_error_at "
            "FROM event_route "
            "WHERE guild_id = ?",
            (guild_id,),
        )
        stored = {route.category: route for route in map(_route, rows)}
        return {category: stored.get(category) or _default_route(guild_id, category) for category in Category}

    async def mark_failed(self, guild_id: int, category: Category, reason: str) -> None:
        """Record why delivery to this route failed (shown to admins); a route never set is left alone."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE event_route SET last_error = ?, last_error_at = ? "
                "WHERE guild_id = ? AND category = ?",
                (_clip(reason), _timestamp(self._now()), guild_id, Category(category).value),
            )

    async def mark_failed_channel(self, channel_id: int, reason: str) -> _Routes:
        """Record a failure on every route pointing at ``channel_id`` (in any guild); returns them."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE event_route SET last_error = ?, last_error_at = ? WHERE channel_id = ?",
                (_clip(reason), _timestamp(self._now()), channel_id),
            )
        return await self._routes_for_channel(channel_id)

    async def clear_failure(self, guild_id: int, category: Category) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE event_route SET last_error = NULL, last_error_at = NULL "
                "WHERE guild_id = ? AND category = ?",
                (guild_id, Category(category).value),
            )

    async def clear_failure_channel(self, channel_id: int) -> _Routes:
        """Clear the failure on every route pointing at ``channel_id`` (e.g. after a delivery succeeded)."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE event_route SET last_error = NULL, last_error_at = NULL "
                "WHERE channel_id = ? AND last_error IS NOT NULL",
                (channel_id,),
            )
        return await self._routes_for_channel(channel_id)

    async def failed(self, guild_id: int) -> _Routes:
        """The guild's routes whose last delivery failed, oldest failure first."""
        rows = await self._db.fetch_all(
            "SELECT guild_id, category, channel_id, enabled, ping_role_id, last_error, last_error_at "
            "FROM event_route "
            "WHERE guild_id = ? AND last_error IS NOT NULL "
            "ORDER BY last_error_at, category",
            (guild_id,),
        )
        return [_route(row) for row in rows]

    async def _routes_for_channel(self, channel_id: int) -> _Routes:
        rows = await self._db.fetch_all(
            "SELECT guild_id, category, channel_id, enabled, ping_role_id, last_error, last_error_at "
            "FROM event_route "
            "WHERE channel_id = ? ORDER BY guild_id, category",
            (channel_id,),
        )
        return [_route(row) for row in rows]


def _clip(reason: str) -> str:
    reason = " ".join(reason.split()) or "unknown error"
    return reason if len(reason) <= MAX_ERROR_LENGTH else reason[: MAX_ERROR_LENGTH - 1] + "…"


class CommandRoleRepository:
    """The role required to use each slash-command group (none = everyone may)."""

    def __init__(self, db: Database, *, now: DateTimeClock = utc_now) -> None:
        self._db = db
        self._now = now

    async def set(self, guild_id: int, group: CommandGroup, role_id: int | None) -> None:
        _check_id(guild_id, "guild ID")
        _check_optional_id(role_id, "role ID")
        group = CommandGroup(group)
        async with self._db.transaction() as conn:
            await _touch_guild(conn, guild_id, self._now())
            if role_id is None:
                await conn.execute(
                    "DELETE FROM command_role WHERE guild_id = ? AND command_group = ?",
                    (guild_id, group.value),
                )
            else:
                await conn.execute(
                    "INSERT INTO command_role (guild_id, command_group, role_id) VALUES (?, ?, ?) "
                    "ON CONFLICT (guild_id, command_group) DO UPDATE SET role_id = excluded.role_id",
                    (guild_id, group.value, role_id),
                )

    async def get(self, guild_id: int, group: CommandGroup) -> int | None:
        row = await self._db.fetch_one(
            "SELECT role_id FROM command_role WHERE guild_id = ? AND command_group = ?",
            (guild_id, CommandGroup(group).value),
        )
        return None if row is None else int(row["role_id"])

    async def list(self, guild_id: int) -> dict[CommandGroup, int | None]:
        """Every group, in declaration order; None where no role is required."""
        rows = await self._db.fetch_all(
            "SELECT command_group, role_id FROM command_role WHERE guild_id = ?", (guild_id,)
        )
        stored = {CommandGroup(row["command_group"]): int(row["role_id"]) for row in rows}
        return {group: stored.get(group) for group in CommandGroup}


def _normalise_account(account_uuid: str) -> str:
    account = account_uuid.strip().lower()
    if not account:
        raise ValueError("the account UUID is empty")
    return account


class LinkRepository:
    """Discord members linked to their CAD accounts, per guild."""

    def __init__(self, db: Database, *, now: DateTimeClock = utc_now) -> None:
        self._db = db
        self._now = now

    async def link(
        self,
        guild_id: int,
        user_id: int,
        account_uuid: str,
        *,
        username: str | None = None,
        api_id: str | None = None,
    ) -> UserLink:
        """Link (or re-link) the member to the account.

        An account belongs to one member per guild: linking it moves it away from any other member,
        since linking requires proof of owning the account and the latest proof wins.
        """
        _check_id(guild_id, "guild ID")
        _check_id(user_id, "user ID")
        account = _normalise_account(account_uuid)
        now = self._now()
        async with self._db.transaction() as conn:
            await _ensure_guild_row(conn, guild_id, now)
            await conn.execute(
                "DELETE FROM user_link WHERE guild_id = ? AND account_uuid = ? AND user_id != ?",
                (guild_id, account, user_id),
            )
            await conn.execute(
                "INSERT INTO user_link (guild_id, user_id, account_uuid, username, api_id, linked_at) "
                "VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (guild_id, user_id) DO UPDATE SET account_uuid = excluded.account_uuid, "
                "username = excluded.username, api_id = excluded.api_id, linked_at = excluded.linked_at",
                (guild_id, user_id, account, username, api_id, _timestamp(now)),
            )
        linked = await self.get(guild_id, user_id)
        assert linked is not None
        return linked

    async def get(self, guild_id: int, user_id: int) -> UserLink | None:
        row = await self._db.fetch_one(
            "SELECT guild_id, user_id, account_uuid, username, api_id, linked_at "
            "FROM user_link "
            "WHERE guild_id = ? AND user_id = ?",
            (guild_id, user_id),
        )
        return None if row is None else UserLink.model_validate(_row_dict(row))

    async def unlink(self, guild_id: int, user_id: int) -> bool:
        """Remove the member's link; False if there was none."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM user_link WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
            )
            return cursor.rowcount > 0

    async def find_by_account(self, guild_id: int, account_uuid: str) -> UserLink | None:
        """The member of this guild linked to the CAD account (UUIDs compare case-insensitively)."""
        account = account_uuid.strip().lower()
        if not account:
            return None
        row = await self._db.fetch_one(
            "SELECT guild_id, user_id, account_uuid, username, api_id, linked_at "
            "FROM user_link "
            "WHERE guild_id = ? AND account_uuid = ?",
            (guild_id, account),
        )
        return None if row is None else UserLink.model_validate(_row_dict(row))

    async def count(self, guild_id: int) -> int:
        row = await self._db.fetch_one("SELECT COUNT(*) FROM user_link WHERE guild_id = ?", (guild_id,))
        return 0 if row is None else int(row[0])
