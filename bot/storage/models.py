"""Per-guild settings as the rest of the bot sees them: plain pydantic models, no SQL, no secrets."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import IntEnum, StrEnum

from pydantic import BaseModel, ConfigDict


class Category(StrEnum):
    """Where a push event is posted; each guild routes every category to at most one channel."""

    CALLS_911 = "911"
    PANIC = "panic"
    DISPATCH = "dispatch"
    UNITS = "units"
    RECORDS = "records"
    OTHER = "other"


class Priority(IntEnum):
    """How urgently a delivery must reach Discord: lower goes first (see :func:`delivery_priority`)."""

    PANIC = 0
    CALLS_911 = 1
    DISPATCH = 2
    ROUTINE = 3

    @property
    def urgent(self) -> bool:
        """Panic alerts and 911 calls: they may use the capacity routine traffic leaves free for them."""
        return self <= Priority.CALLS_911


_PRIORITY: Mapping[str, Priority] = {
    Category.PANIC: Priority.PANIC,
    Category.CALLS_911: Priority.CALLS_911,
    Category.DISPATCH: Priority.DISPATCH,
}


def delivery_priority(category: Category | str) -> Priority:
    """The one place a delivery's urgency is decided: panic first, then 911 calls, then dispatch, then the rest.

    It follows the category of the event (a live card has its call's category), so every delivery of one
    category has the same priority and a category's messages keep their order however the categories are
    interleaved. That is why a cleared panic is as urgent as a raised one (an all-clear that trails a flood
    would keep people rushing to a unit that is fine) and a 911 call's removal as urgent as the call.
    """
    return _PRIORITY.get(category, Priority.ROUTINE)


class CommandGroup(StrEnum):
    """Slash-command groups a guild can restrict to one role."""

    CALLS_911 = "911"
    UNITS = "units"
    LOOKUP = "lookup"
    MAP = "map"
    DISPATCH = "dispatch"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class PushTransport(StrEnum):
    """How a guild receives the CAD's push events."""

    HTTP = "http"  # the listener (the CAD's server entry, or FiveM's pushEventForwardUrl)
    WEBSOCKET = "websocket"  # the bot's own session on Sonoran's API websocket hub


class GuildConfig(_Frozen):
    """A guild's CAD connection. Says whether an API key is set; the key itself never leaves storage."""

    guild_id: int
    community_id: str | None = None
    server_id: int = 1
    has_api_key: bool = False
    cooldown_911_s: int = 30
    push_key_hash: str | None = None
    push_transport: PushTransport = PushTransport.HTTP
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
