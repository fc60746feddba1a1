"""Helpers every cog uses: services, guild credentials, linked accounts, and the permission model.

Permission model (checked before any CAD call):
- ``911``: everyone, unless a role is set with ``/config role 911``.
- ``units``: any member (they only ever touch their own unit; the CAD must know their account: a /link, or on
  CAD v2 the Discord account linked in their CAD settings), unless a role is set.
- ``lookup``, ``map``, ``dispatch``: server admins (Manage Server) until a role is set; then that role or admins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.cad.models import CadCredentials
from bot.errors import NotConfiguredError
from bot.formatting.admin import GROUP_LABELS
from bot.formatting.limits import EmbedDict, clamp_embed
from bot.services.members import UnitTarget, member_target
from bot.storage.models import CommandGroup, UserLink
from bot.tree import UserCheckFailure

if TYPE_CHECKING:
    from bot.app import CadBot, Services

ADMIN_ONLY_BY_DEFAULT = {CommandGroup.LOOKUP, CommandGroup.MAP, CommandGroup.DISPATCH}


def services(interaction: discord.Interaction[Any]) -> Services:
    client: CadBot = interaction.client
    return client.services


def guild_id_of(interaction: discord.Interaction[Any]) -> int:
    if interaction.guild_id is None:
        raise UserCheckFailure("This command only works inside a server.")
    return interaction.guild_id


async def guild_credentials(interaction: discord.Interaction[Any]) -> CadCredentials:
    """This guild's CAD credentials, or a clear 'run /setup' refusal."""
    creds = await services(interaction).storage.guilds.get_credentials(guild_id_of(interaction))
    if creds is None:
        raise NotConfiguredError()
    return creds


async def acting_member(interaction: discord.Interaction[Any]) -> tuple[UnitTarget, UserLink | None]:
    """How CAD requests name the member acting, and their stored link if any: the link, else (CAD v2) their
    Discord user ID; on v1 a member without a link is asked to /link (``NotLinkedError``)."""
    link = await services(interaction).storage.links.get(guild_id_of(interaction), interaction.user.id)
    return member_target(services(interaction).cad, link, interaction.user.id), link


def is_admin(interaction: discord.Interaction[Any]) -> bool:
    member = interaction.user
    return isinstance(member, discord.Member) and member.guild_permissions.manage_guild


async def check_group(interaction: discord.Interaction[Any], group: CommandGroup) -> bool:
    """Raise a member-facing refusal naming what is missing; True when allowed."""
    guild_id = guild_id_of(interaction)
    role_id = await services(interaction).storage.roles.get(guild_id, group)
    label = GROUP_LABELS[group]
    if role_id is None:
        if group in ADMIN_ONLY_BY_DEFAULT and not is_admin(interaction):
            raise UserCheckFailure(
                f"Only server admins can use {label} until an admin picks a role with "
                f"`/config role {group.value}`."
            )
        return True
    member = interaction.user
    has_role = isinstance(member, discord.Member) and any(role.id == role_id for role in member.roles)
    if has_role or is_admin(interaction):
        return True
    role = interaction.guild.get_role(role_id) if interaction.guild else None
    name = f"**@{role.name}**" if role else "the role an admin set for them"
    raise UserCheckFailure(f"You need {name} to use {label}.")


def requires_group(group: CommandGroup) -> Any:
    """``@requires_group(CommandGroup.LOOKUP)`` on a command or a GroupCog's ``interaction_check``."""

    async def predicate(interaction: discord.Interaction[Any]) -> bool:
        return await check_group(interaction, group)

    return app_commands.check(predicate)


def to_embed(embed: EmbedDict) -> discord.Embed:
    return discord.Embed.from_dict(clamp_embed(embed))


NO_MENTIONS = discord.AllowedMentions.none()
