"""Per-guild settings as the rest of the bot sees them: plain pydantic models, no SQL, no secrets."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Category(StrEnum):
    """Where a push event is posted; each guild routes every category to at most one channel."""

    CALLS_911 = "911"
    PANIC = "panic"
    DISPATCH = "dispatch"
    UNITS = "units"
    RECORDS = "records"
    OTHER = "other"


class CommandGroup(StrEnum):
    """Slash-command groups a guild can restrict to one role."""

    CALLS_911 = "911"
    UNITS = "units"
    LOOKUP = "lookup"
    MAP = "map"
    DISPATCH = "dispatch"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class GuildConfig(_Frozen):
    """A guild's CAD connection. Says whether an API key is set; the key itself never leaves storage."""

    guild_id: int
    community_id: str | None = None
    server_id: int = 1
    has_api_key: bool = False
    cooldown_911_s: int = 30
    push_key_hash: str | None = None
    updated_at: datetime

    @property
    def is_configured(self) -> bool:
        """True when the guild can make CAD requests (community and key both set)."""
        return self.community_id is not None and self.has_api_key


class RouteConfig(_Frozen):
    """Where one category of push events goes in one guild; a missing row reads as this default."""

    guild_id: int
    category: Category
    channel_id: int | None = None
    enabled: bool = True
    ping_role_id: int | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None

    @property
    def delivers(self) -> bool:
        """True when events of this category should be posted (a channel is set and the route is on)."""
        return self.channel_id is not None and self.enabled


class UserLink(_Frozen):
    """A Discord member linked to their Sonoran CAD account, within one guild."""

    guild_id: int
    user_id: int
    account_uuid: str
    username: str | None = None
    api_id: str | None = None
    linked_at: datetime
