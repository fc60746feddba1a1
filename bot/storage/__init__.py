"""SQLite storage: the only package with SQL. Open one :class:`Storage` per process and inject it."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from pydantic import SecretStr

from bot.storage.db import Database, DatabaseError, MigrationError
from bot.storage.models import Category, CommandGroup, GuildConfig, RouteConfig, UserLink
from bot.storage.repositories import (
    CommandRoleRepository,
    GuildRepository,
    LinkRepository,
    RouteRepository,
)
from bot.storage.secrets import (
    InvalidSecretKeyError,
    KeyDecryptionError,
    KeyVault,
    MissingSecretKeyError,
    SecretKeyError,
)
from bot.timing import DateTimeClock, utc_now

__all__ = [
    "Category",
    "CommandGroup",
    "CommandRoleRepository",
    "Database",
    "DatabaseError",
    "GuildConfig",
    "GuildRepository",
    "InvalidSecretKeyError",
    "KeyDecryptionError",
    "KeyVault",
    "LinkRepository",
    "MigrationError",
    "MissingSecretKeyError",
    "RouteConfig",
    "RouteRepository",
    "SecretKeyError",
    "Storage",
    "UserLink",
]


class Storage:
    """The database plus every settings repository, sharing one connection and one key vault."""

    def __init__(self, db: Database, vault: KeyVault, *, now: DateTimeClock = utc_now) -> None:
        self.db = db
        self.vault = vault
        self.guilds = GuildRepository(db, vault, now=now)
        self.routes = RouteRepository(db, now=now)
        self.roles = CommandRoleRepository(db, now=now)
        self.links = LinkRepository(db, now=now)

    @classmethod
    async def open(
        cls, path: str | Path, secret_key: str | SecretStr | None, *, now: DateTimeClock = utc_now
    ) -> Storage:
        """Open and migrate the database. An invalid secret key fails here, before the database is touched."""
        vault = KeyVault(secret_key)
        db = await Database.open(path)
        return cls(db, vault, now=now)

    async def close(self) -> None:
        await self.db.close()

    async def __aenter__(self) -> Storage:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
