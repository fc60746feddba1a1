"""/blips list|add|edit|remove: custom blips on the CAD's live map (Sonoran CAD Pro).

Input is checked before anything reaches the CAD: coordinates within the map's bounds, a ``#rrggbb`` colour,
a radius that is not negative, a tooltip the map can show, and an edit that actually changes something.
"""

from __future__ import annotations

import re
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.cad.models import Blip, BlipCoordinates
from bot.cad.plans import plan_explained, refuse_if_plan_too_low
from bot.errors import UserFacingError
from bot.formatting import listings
from bot.formatting.text import neutralise, truncate
from bot.storage.models import CommandGroup
from bot.ui.pagination import send_pages
from cogs._shared import NO_MENTIONS, check_group, guild_credentials, services

# Far beyond any game map in use (GTA V spans about +-10000), yet it stops typos like 1e12 reaching the CAD.
MAP_BOUND = 100_000.0
TOOLTIP_MAX = 100
ICON_MAX = 200
SUBTYPE_MAX = 50
BLIP_ID_MAX = 2**31 - 1

Coordinate = app_commands.Range[float, -MAP_BOUND, MAP_BOUND]
Radius = app_commands.Range[float, 0.0, MAP_BOUND]
Tooltip = app_commands.Range[str, 1, TOOLTIP_MAX]
Icon = app_commands.Range[str, 1, ICON_MAX]
Subtype = app_commands.Range[str, 1, SUBTYPE_MAX]
BlipId = app_commands.Range[int, 0, BLIP_ID_MAX]

_HEX_COLOUR = re.compile(r"#?([0-9a-fA-F]{6})")


class HexColour(app_commands.Transformer):
    """``#ff8800`` (the ``#`` is optional, any case) -> ``#ff8800``; anything else gets a clear refusal."""

    @property
    def max_length(self) -> int:
        return 16

    async def transform(self, interaction: discord.Interaction[Any], value: Any) -> str:
        match = _HEX_COLOUR.fullmatch(str(value).strip())
        if match is None:
            shown = truncate(neutralise(str(value)), 20)
            raise UserFacingError(
                f"“{shown}” isn't a colour the map understands; use # and six hex digits, like #ff0000 for red."
            )
        return "#" + match.group(1).lower()


Colour = app_commands.Transform[str, HexColour]

_OPTION_HELP = {
    "x": "Map X coordinate",
    "y": "Map Y coordinate",
    "radius": "Circle radius in map units (0 for a point)",
    "color": "Colour as #rrggbb, e.g. #ff0000",
    "icon": "Icon name or image URL",
    "tooltip": "Text shown when hovering the blip (up to 100 characters)",
    "subtype": "Blip subtype, as your CAD's map defines it",
}


@app_commands.guild_only()
class Blips(commands.GroupCog, group_name="blips", group_description="Custom blips on the CAD live map."):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        return await check_group(interaction, CommandGroup.MAP)

    @app_commands.command(name="list", description="List the custom blips on the live map.")
    async def list_blips(self, interaction: discord.Interaction[Any]) -> None:
        creds = await guild_credentials(interaction)
        cad = services(interaction).cad
        refuse_if_plan_too_low(cad, creds, "GET_BLIPS")
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with plan_explained(cad, creds):
            blips = await cad.get_blips(creds)
        pages = listings.blips_pages(blips)
        if not pages:
            await interaction.followup.send(
                listings.no_blips_message(), ephemeral=True, allowed_mentions=NO_MENTIONS
            )
            return
        await send_pages(interaction, pages)

    @app_commands.command(name="add", description="Put a new blip on the live map.")
    @app_commands.describe(**_OPTION_HELP)
    async def add_blip(
        self,
        interaction: discord.Interaction[Any],
        x: Coordinate,
        y: Coordinate,
        radius: Radius | None = None,
        color: Colour | None = None,
        icon: Icon | None = None,
        tooltip: Tooltip | None = None,
        subtype: Subtype | None = None,
    ) -> None:
        blip = Blip(
            coordinates=BlipCoordinates(x=x, y=y),
            radius=radius,
            color=color or "",
            icon=_stripped(icon) or "",
            tooltip=_stripped(tooltip),
            sub_type=_stripped(subtype),
        )
        creds = await guild_credentials(interaction)
        cad = services(interaction).cad
        refuse_if_plan_too_low(cad, creds, "ADD_BLIP")
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with plan_explained(cad, creds):
            added = await cad.add_blip(creds, blip)
        await interaction.followup.send(
            listings.blip_added_message(added), ephemeral=True, allowed_mentions=NO_MENTIONS
        )

    @app_commands.command(name="edit", description="Change a blip: give only what should change.")
    @app_commands.describe(id="The blip's number (see /blips list)", **_OPTION_HELP)
    async def edit_blip(
        self,
        interaction: discord.Interaction[Any],
        id: BlipId,
        x: Coordinate | None = None,
        y: Coordinate | None = None,
        radius: Radius | None = None,
        color: Colour | None = None,
        icon: Icon | None = None,
        tooltip: Tooltip | None = None,
        subtype: Subtype | None = None,
    ) -> None:
        changes = blip_changes(
            x=x, y=y, radius=radius, color=color, icon=icon, tooltip=tooltip, subtype=subtype
        )
        creds = await guild_credentials(interaction)
        cad = services(interaction).cad
        refuse_if_plan_too_low(cad, creds, "MODIFY_BLIP")
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with plan_explained(cad, creds):
            await cad.modify_blip(creds, id, **changes)
        await interaction.followup.send(
            listings.blip_updated_message(id, changes), ephemeral=True, allowed_mentions=NO_MENTIONS
        )

    @app_commands.command(name="remove", description="Take a blip off the live map.")
    @app_commands.describe(id="The blip's number (see /blips list)")
    async def remove_blip(self, interaction: discord.Interaction[Any], id: BlipId) -> None:
        creds = await guild_credentials(interaction)
        cad = services(interaction).cad
        refuse_if_plan_too_low(cad, creds, "REMOVE_BLIP")
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with plan_explained(cad, creds):
            await cad.remove_blip(creds, [id])
        await interaction.followup.send(
            listings.blip_removed_message(id), ephemeral=True, allowed_mentions=NO_MENTIONS
        )


def _stripped(text: str | None) -> str | None:
    if text is None:
        return None
    return text.strip() or None


def blip_changes(
    *,
    x: float | None,
    y: float | None,
    radius: float | None,
    color: str | None,
    icon: str | None,
    tooltip: str | None,
    subtype: str | None,
) -> dict[str, Any]:
    """The ``MODIFY_BLIP`` fields for what a member asked to change; refuses an edit that changes nothing."""
    if (x is None) != (y is None):
        # The CAD takes a position as one {x, y} object; half of one would move the blip somewhere unintended.
        raise UserFacingError("To move a blip, give both x and y.")
    changes: dict[str, Any] = {}
    if x is not None and y is not None:
        changes["coordinates"] = {"x": x, "y": y}
    if radius is not None:
        changes["radius"] = radius
    for key, value in (("color", color), ("icon", icon), ("tooltip", tooltip), ("sub_type", subtype)):
        cleaned = _stripped(value)
        if cleaned is not None:
            changes[key] = cleaned
    if not changes:
        raise UserFacingError(
            "Nothing to change: give at least one of x and y, radius, color, icon, tooltip or subtype."
        )
    return changes


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Blips(bot))
