"""What the admin cogs (/setup, /config, /status) share: the runtime admin check and small Discord helpers.

Every admin command is hidden from non-admins by ``default_permissions(manage_guild=True)``, but a server owner
can override that per command in Server Settings > Integrations; the runtime check keeps the CAD credentials
safe even then, and it is repeated on modal submits and button presses, which Discord does not gate at all.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import discord
from discord import app_commands

from bot.formatting.admin import PushTarget
from bot.tree import UserCheckFailure

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)

# What the bot needs in a route's channel to post an alert there (read history/mentions are extras that only
# matter for live-card edits and unmentionable ping roles).
POST_PERMISSIONS = ("view_channel", "send_messages", "embed_links")
# GET_VERSION is a read the CAD client retries: /setup and /status give up after one client timeout plus the
# retry back-offs of quick failures (0.5 s + 1 s), so an admin hears of a hung CAD after one timeout instead of
# after every retry's.
RETRY_SLACK_S = 2.0


def is_admin(interaction: discord.Interaction[Any]) -> bool:
    """Manage Server in this channel, as Discord resolved it for this very interaction."""
    return interaction.guild_id is not None and interaction.permissions.manage_guild


def require_admin(interaction: discord.Interaction[Any]) -> None:
    if interaction.guild_id is None:
        raise UserCheckFailure("This command only works inside a server.")
    if not is_admin(interaction):
        raise app_commands.MissingPermissions(["manage_guild"])


async def _admin_predicate(interaction: discord.Interaction[Any]) -> bool:
    require_admin(interaction)
    return True


admin_only = app_commands.check(_admin_predicate)
"""Runtime Manage Server check for a command (pair it with ``default_permissions(manage_guild=True)``)."""


def missing_post_permissions(channel: discord.abc.GuildChannel, me: discord.Member | None) -> list[str]:
    """The permissions from :data:`POST_PERMISSIONS` the bot lacks in ``channel`` (all of them if unknown)."""
    if me is None:
        return list(POST_PERMISSIONS)
    permissions = channel.permissions_for(me)
    return [name for name in POST_PERMISSIONS if not getattr(permissions, name)]


def push_target(services: Services) -> PushTarget:
    server = services.settings.server
    return PushTarget(
        listener_enabled=server.enabled, listener_port=server.port, public_url=server.public_url
    )


@runtime_checkable
class ForgetsPushKeys(Protocol):
    """A push pipeline that caches which guilds a push key belongs to and can drop that cache."""

    def invalidate_key_cache(self) -> None: ...


@runtime_checkable
class KnowsLastEvent(Protocol):
    """A push pipeline that remembers when it last accepted an event for a community (Unix seconds)."""

    async def last_event_received_at(self, community_id: str) -> float | None: ...


def reconcile_push_sessions(services: Services) -> None:
    """Open or close websocket sessions now that a guild's setup changed (the registry also does it every
    30 s, for the admin CLI)."""
    hub = services.pipeline.hub if services.pipeline is not None else None
    if hub is not None:
        hub.reconcile_soon()


def forget_push_keys(services: Services) -> None:
    """After the stored key changed or went away, stop accepting events under the old key at once."""
    pipeline = services.pipeline
    if isinstance(pipeline, ForgetsPushKeys):
        pipeline.invalidate_key_cache()
