"""/status: is the CAD answering, are push events arriving, is anything stuck on its way to Discord.

Every part is gathered independently and a failure of one (the CAD timing out, say) is shown as that part's
state, never raised: /status is what an admin runs when something is already wrong.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.cad.errors import (
    CadCredentialsError,
    CadError,
    CadRateLimitedError,
    CadTimeoutError,
    CadUnavailableError,
)
from bot.formatting.admin import (
    CadProbe,
    QueueStats,
    StatusReport,
    StorageFailure,
    WebsocketState,
    status_embed,
)
from bot.storage import SecretKeyError
from bot.storage.models import PushTransport
from cogs._admin import RETRY_SLACK_S, KnowsLastEvent, admin_only
from cogs._shared import NO_MENTIONS, guild_id_of, services, to_embed

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)


async def probe_cad(svc: Services, guild_id: int) -> CadProbe:
    try:
        creds = await svc.storage.guilds.get_credentials(guild_id)
    except SecretKeyError as exc:
        return CadProbe(state="failed", problem=str(exc))
    if creds is None:
        return CadProbe(state="not_configured")
    timeout_s = svc.settings.cad.timeout_s
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout_s + RETRY_SLACK_S):
            tier = await svc.cad.get_version(creds)
    except (TimeoutError, CadTimeoutError):
        problem = (
            f"no answer within {timeout_s:g} s; the CAD may be down (status.sonorancad.com shows outages)"
        )
    except CadCredentialsError:
        problem = "the CAD rejected this server's credentials; run /setup again"
    except CadRateLimitedError:
        problem = "the CAD asked the bot to slow down; try /status again in a minute"
    except CadUnavailableError:
        problem = "the CAD could not be reached (outage or network problem; see status.sonorancad.com)"
    except CadError as exc:
        problem = exc.user_message
    else:
        return CadProbe(state="ok", tier=tier, latency_ms=(time.monotonic() - started) * 1000)
    log.info("/status: CAD check for guild %s failed: %s", guild_id, problem)
    return CadProbe(state="failed", problem=problem)


async def last_event_at(svc: Services, guild_id: int) -> datetime | None:
    """When the pipeline last accepted an event for this guild's community; None when it cannot tell."""
    pipeline = svc.pipeline
    config = await svc.storage.guilds.get(guild_id)
    if not isinstance(pipeline, KnowsLastEvent) or config is None or not config.community_id:
        return None
    received = await pipeline.last_event_received_at(config.community_id)
    return datetime.fromtimestamp(received, UTC) if received is not None else None


async def delivery_queues(
    svc: Services, guild_id: int
) -> tuple[QueueStats | None, QueueStats | None, StorageFailure | None]:
    """(this guild's pending deliveries, the whole bot's, failing database writes), None for each the
    pipeline cannot tell or that is fine."""
    pipeline = svc.pipeline
    if pipeline is None:
        return None, None, None
    now = time.time()
    depth, oldest = await pipeline.pending_deliveries(guild_id)
    guild_queue = QueueStats(depth=depth, oldest_age_s=None if oldest is None else max(0.0, now - oldest))
    health = await pipeline.health()
    bot_queue = (
        QueueStats(depth=health.outbox_depth, oldest_age_s=health.oldest_pending_age_s)
        if health.outbox_depth is not None
        else None
    )
    storage = (
        StorageFailure(error=health.last_write_error, age_s=health.last_write_failure_age_s or 0.0)
        if health.writes_failing and health.last_write_error is not None
        else None
    )
    return guild_queue, bot_queue, storage


def websocket_state(svc: Services, guild_id: int) -> WebsocketState | None:
    """This guild's websocket session as /status shows it; None when it has none."""
    hub = svc.pipeline.hub if svc.pipeline is not None else None
    found = hub.guild_state(guild_id) if hub is not None else None
    if found is None:
        return None
    status = found.status
    return WebsocketState(
        connected=status.connected,
        authenticated=status.authenticated,
        since=status.authenticated_since or status.connected_since,
        reconnects=status.reconnects,
        last_event_at=status.last_event_at,
        last_error=status.last_error,
        last_error_at=status.last_error_at,
        down_since=status.down_since,
        last_gap_s=status.last_gap_s,
        last_gap_started_at=status.last_gap_started_at,
        guilds_sharing=found.guilds_sharing,
    )


class Status(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @app_commands.command(name="status", description="Check the CAD connection and alert delivery (admins).")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @admin_only
    async def status(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        svc = services(interaction)
        guild_id = guild_id_of(interaction)
        cad, last_event, (guild_queue, bot_queue, storage) = await asyncio.gather(
            probe_cad(svc, guild_id), last_event_at(svc, guild_id), delivery_queues(svc, guild_id)
        )
        config = await svc.storage.guilds.get(guild_id)
        report = StatusReport(
            cad=cad,
            listener_enabled=svc.pipeline is not None and svc.settings.server.enabled,
            transport=config.push_transport if config is not None else PushTransport.HTTP,
            websocket=websocket_state(svc, guild_id),
            last_event_at=last_event,
            guild_queue=guild_queue,
            bot_queue=bot_queue,
            failed_routes=await svc.storage.routes.failed(guild_id),
            storage_failure=storage,
        )
        await interaction.followup.send(
            embed=to_embed(status_embed(report)), ephemeral=True, allowed_mentions=NO_MENTIONS
        )


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Status(bot))
