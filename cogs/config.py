"""/config: where push events go, who gets pinged, who may use which commands, and checks of it all.

Every verb writes through the storage repositories and answers ephemerally with what changed. ``/config test``
posts a clearly labelled sample to each routed channel and records the outcome on the route, the same place
the delivery worker records its own failures, so /config show and /status tell one story.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import UserFacingError
from bot.formatting import admin as replies
from bot.storage.models import Category, CommandGroup, RouteConfig
from bot.tree import report_interaction_error
from cogs._admin import (
    forget_push_keys,
    missing_post_permissions,
    reconcile_push_sessions,
    require_admin,
)
from cogs._shared import NO_MENTIONS, guild_id_of, services, to_embed

log = logging.getLogger(__name__)

MAX_COOLDOWN_S = 3600
RESET_TIMEOUT_S = 60.0

CATEGORY_CHOICES = [
    app_commands.Choice(name=replies.category_label(category), value=category.value) for category in Category
]
GROUP_CHOICES = [
    app_commands.Choice(name=f"{group.value} ({replies.GROUP_LABELS[group]})", value=group.value)
    for group in CommandGroup
]


def _guild(interaction: discord.Interaction[Any]) -> discord.Guild:
    if interaction.guild is None:
        raise UserFacingError("This command only works inside a server.")
    return interaction.guild


async def _reply(interaction: discord.Interaction[Any], content: str) -> None:
    await interaction.response.send_message(content, ephemeral=True, allowed_mentions=NO_MENTIONS)


class ResetConfirmation(discord.ui.View):
    """Two buttons under the /config reset warning; only the admin who asked may answer."""

    def __init__(self, invoker_id: int, guild_id: int) -> None:
        super().__init__(timeout=RESET_TIMEOUT_S)
        self.invoker_id = invoker_id
        self.guild_id = guild_id
        self.prompt: discord.Interaction[Any] | None = None

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        if interaction.user.id != self.invoker_id:
            await _reply(interaction, replies.RESET_NOT_YOURS)
            return False
        # Permissions may have been taken away since the prompt was shown.
        require_admin(interaction)
        return True

    async def _finish(self, interaction: discord.Interaction[Any], content: str) -> None:
        self.stop()
        await interaction.response.edit_message(content=content, view=None, allowed_mentions=NO_MENTIONS)

    @discord.ui.button(
        label="Reset everything", style=discord.ButtonStyle.danger, custom_id="config:reset:yes"
    )
    async def confirm(self, interaction: discord.Interaction[Any], button: discord.ui.Button[Any]) -> None:
        svc = services(interaction)
        existed = await svc.storage.guilds.reset(self.guild_id)
        forget_push_keys(svc)
        reconcile_push_sessions(svc)  # a websocket session only this guild used closes
        log.info("guild %s configuration reset by user %s", self.guild_id, interaction.user.id)
        await self._finish(interaction, replies.RESET_DONE if existed else replies.RESET_NOTHING)

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary, custom_id="config:reset:no")
    async def cancel(self, interaction: discord.Interaction[Any], button: discord.ui.Button[Any]) -> None:
        await self._finish(interaction, replies.RESET_CANCELLED)

    async def on_timeout(self) -> None:
        if self.prompt is None:
            return
        try:
            await self.prompt.edit_original_response(
                content=replies.RESET_EXPIRED, view=None, allowed_mentions=NO_MENTIONS
            )
        except discord.HTTPException:
            log.debug("could not mark the /config reset prompt as expired (dismissed or token gone)")

    async def on_error(
        self, interaction: discord.Interaction[Any], error: Exception, item: discord.ui.Item[Any], /
    ) -> None:
        await report_interaction_error(interaction, error)


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class Config(
    commands.GroupCog, group_name="config", group_description="Set up where CAD alerts go (admins)."
):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        require_admin(interaction)
        return True

    # -------------------------------------------------------------------------------------- routes

    @app_commands.command(name="route", description="Pick the channel one kind of CAD event is posted in.")
    @app_commands.describe(
        category="Which events", channel="Where to post them (leave empty to stop posting)"
    )
    @app_commands.choices(category=CATEGORY_CHOICES)
    async def route(
        self, interaction: discord.Interaction[Any], category: str, channel: discord.TextChannel | None = None
    ) -> None:
        guild = _guild(interaction)
        chosen = Category(category)
        route = await services(interaction).storage.routes.set_channel(
            guild.id, chosen, channel.id if channel else None
        )
        missing = missing_post_permissions(channel, guild.me) if channel is not None else []
        await _reply(interaction, replies.route_set_message(chosen, route.channel_id, missing, route.enabled))

    @app_commands.command(name="toggle", description="Switch one kind of CAD event on or off.")
    @app_commands.describe(category="Which events", state="on posts them, off stops them")
    @app_commands.choices(category=CATEGORY_CHOICES)
    async def toggle(
        self, interaction: discord.Interaction[Any], category: str, state: Literal["on", "off"]
    ) -> None:
        chosen = Category(category)
        route = await services(interaction).storage.routes.set_enabled(
            guild_id_of(interaction), chosen, state == "on"
        )
        await _reply(interaction, replies.toggle_message(chosen, route.enabled, route.channel_id))

    @app_commands.command(name="ping", description="Pick the role new 911 calls or panic alerts ping.")
    @app_commands.describe(category="911 or panic", role="The role to ping (leave empty to stop pinging)")
    @app_commands.choices(category=CATEGORY_CHOICES)
    async def ping(
        self, interaction: discord.Interaction[Any], category: str, role: discord.Role | None = None
    ) -> None:
        chosen = Category(category)
        if role is not None and chosen not in replies.PINGABLE_CATEGORIES:
            raise UserFacingError(replies.ping_refused_message(chosen))
        if role is not None and role.is_default():
            raise UserFacingError("Pick a specific role to ping, not @everyone.")
        await services(interaction).storage.routes.set_ping_role(
            guild_id_of(interaction), chosen, role.id if role else None
        )
        await _reply(interaction, replies.ping_message(chosen, role.id if role else None))

    # -------------------------------------------------------------------------------------- commands

    @app_commands.command(name="role", description="Require a role for a group of commands.")
    @app_commands.describe(group="Which commands", role="The role they need (leave empty for the default)")
    @app_commands.choices(group=GROUP_CHOICES)
    async def role(
        self, interaction: discord.Interaction[Any], group: str, role: discord.Role | None = None
    ) -> None:
        chosen = CommandGroup(group)
        await services(interaction).storage.roles.set(
            guild_id_of(interaction), chosen, role.id if role else None
        )
        await _reply(interaction, replies.role_message(chosen, role.id if role else None))

    @app_commands.command(name="cooldown", description="Seconds a member must wait between /911 calls.")
    @app_commands.describe(seconds="0 to 3600; 0 turns the cooldown off")
    async def cooldown(
        self, interaction: discord.Interaction[Any], seconds: app_commands.Range[int, 0, MAX_COOLDOWN_S]
    ) -> None:
        await services(interaction).storage.guilds.set_cooldown(guild_id_of(interaction), seconds)
        await _reply(interaction, replies.cooldown_message(seconds))

    # -------------------------------------------------------------------------------------- overview

    @app_commands.command(name="show", description="Show this server's CAD connection, routes and roles.")
    async def show(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        svc = services(interaction)
        guild_id = guild_id_of(interaction)
        config = await svc.storage.guilds.get(guild_id)
        tier = svc.cad.cached_tier(config.community_id) if config and config.community_id else None
        overview = replies.ConfigOverview(
            config=config,
            tier=tier,
            routes=await svc.storage.routes.list(guild_id),
            roles=await svc.storage.roles.list(guild_id),
            linked_members=await svc.storage.links.count(guild_id),
        )
        await interaction.followup.send(
            embed=to_embed(replies.config_show_embed(overview)), ephemeral=True, allowed_mentions=NO_MENTIONS
        )

    @app_commands.command(name="reset", description="Forget this server's CAD connection and every setting.")
    async def reset(self, interaction: discord.Interaction[Any]) -> None:
        view = ResetConfirmation(interaction.user.id, guild_id_of(interaction))
        await interaction.response.send_message(
            replies.RESET_PROMPT, view=view, ephemeral=True, allowed_mentions=NO_MENTIONS
        )
        view.prompt = interaction

    # -------------------------------------------------------------------------------------- test

    @app_commands.command(name="test", description="Post a sample alert in every routed channel.")
    async def test(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        guild = _guild(interaction)
        svc = services(interaction)
        config = await svc.storage.guilds.get(guild.id)
        label = (config.community_id if config and config.community_id else None) or guild.name
        routes = [route for route in (await svc.storage.routes.list(guild.id)).values() if route.channel_id]
        now = datetime.now(UTC)
        checks = [await self._check_route(interaction, guild, route, label, now) for route in routes]
        await interaction.followup.send(
            embed=to_embed(replies.route_checks_embed(checks)), ephemeral=True, allowed_mentions=NO_MENTIONS
        )

    async def _check_route(
        self,
        interaction: discord.Interaction[Any],
        guild: discord.Guild,
        route: RouteConfig,
        community_label: str,
        now: datetime,
    ) -> replies.RouteCheck:
        assert route.channel_id is not None
        problem = await self._post_sample(guild, route.channel_id, route.category, community_label, now)
        routes = services(interaction).storage.routes
        if problem is None:
            await routes.clear_failure(guild.id, route.category)
        else:
            await routes.mark_failed(guild.id, route.category, f"/config test: {problem}")
        return replies.RouteCheck(
            category=route.category,
            channel_id=route.channel_id,
            enabled=route.enabled,
            posted=problem is None,
            problem=problem,
        )

    async def _post_sample(
        self, guild: discord.Guild, channel_id: int, category: Category, community_label: str, now: datetime
    ) -> str | None:
        """Post one sample; None when it worked, else why it didn't, in words an admin can act on."""
        channel = guild.get_channel(channel_id)
        if channel is None:
            return replies.deleted_channel_problem(channel_id)
        if not isinstance(channel, discord.TextChannel | discord.Thread):
            return f"#{channel.name} is not a text channel; pick another with `/config route`"
        missing = missing_post_permissions(channel, guild.me)
        if missing:
            return replies.missing_permissions_problem(channel.name, missing)
        embed = replies.sample_alert_embed(category, community_label, now)
        try:
            # Never pings: a test must not wake the 911 role.
            await channel.send(embed=to_embed(embed), allowed_mentions=NO_MENTIONS)
        except discord.NotFound:
            return replies.deleted_channel_problem(channel_id)
        except discord.Forbidden as exc:
            return f"Discord refused the post in #{channel.name} ({exc.text or 'missing access'}); check my permissions there"
        except discord.HTTPException as exc:
            log.warning("/config test post to channel %s failed: HTTP %s", channel_id, exc.status)
            return f"Discord answered HTTP {exc.status}; try again in a moment"
        return None


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Config(bot))
