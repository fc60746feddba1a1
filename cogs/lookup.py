"""/lookup name, /lookup plate, /lookup record: search CAD records and page through what was found.

Results are private to the member by default (they are police records); ``public`` posts them in the channel,
where only the member who searched can page them. Refusals and "no records" always stay private.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.cad.errors import CadEmptySearchError
from bot.cad.interface import CadApi
from bot.cad.models import CadCredentials, CustomRecord, LookupSearchType
from bot.cad.plans import plan_explained, refuse_if_plan_too_low
from bot.formatting import listings
from bot.storage.models import CommandGroup
from bot.ui.pagination import send_pages
from cogs._shared import NO_MENTIONS, check_group, guild_credentials, services

# The CAD sets no limit; a name or plate longer than this is a typo, not a search.
NAME_MAX = 64
PLATE_MAX = 16
RECORD_ID_MAX = 2**31 - 1

REFUSAL = "Only the person who ran this lookup can page it."

PUBLIC_HELP = "Post the results in this channel instead of only showing them to you"

FetchRecords = Callable[[CadApi, CadCredentials], Awaitable[list[CustomRecord]]]


@app_commands.guild_only()
class Lookup(commands.GroupCog, group_name="lookup", group_description="Search CAD records."):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        return await check_group(interaction, CommandGroup.LOOKUP)

    @app_commands.command(name="name", description="Find characters and records by a person's name.")
    @app_commands.describe(
        first="First name (partial names match)",
        last="Last name (partial names match)",
        middle="Middle initial",
        public=PUBLIC_HELP,
    )
    async def by_name(
        self,
        interaction: discord.Interaction[Any],
        first: app_commands.Range[str, 1, NAME_MAX],
        last: app_commands.Range[str, 1, NAME_MAX],
        middle: app_commands.Range[str, 1, NAME_MAX] | None = None,
        public: bool = False,
    ) -> None:
        query = listings.name_query(first, last, middle)
        await self._search(
            interaction,
            "LOOKUP",
            query,
            public,
            blank=not any(part.strip() for part in (first, last, middle or "")),
            fetch=lambda cad, creds: _records_by_name(cad, creds, first, last, middle or ""),
        )

    @app_commands.command(name="plate", description="Find vehicles and records by licence plate.")
    @app_commands.describe(plate="The plate, or part of it", public=PUBLIC_HELP)
    async def by_plate(
        self,
        interaction: discord.Interaction[Any],
        plate: app_commands.Range[str, 1, PLATE_MAX],
        public: bool = False,
    ) -> None:
        await self._search(
            interaction,
            "LOOKUP",
            listings.plate_query(plate),
            public,
            blank=not plate.strip(),
            fetch=lambda cad, creds: _records_by_plate(cad, creds, plate),
        )

    @app_commands.command(name="record", description="Open one record by its number.")
    @app_commands.describe(number="The record number shown in the CAD", public=PUBLIC_HELP)
    async def by_record(
        self,
        interaction: discord.Interaction[Any],
        number: app_commands.Range[int, 0, RECORD_ID_MAX],
        public: bool = False,
    ) -> None:
        await self._search(
            interaction,
            "LOOKUP_INT",
            listings.record_query(number),
            public,
            blank=False,
            fetch=lambda cad, creds: cad.lookup_int(creds, search_type=LookupSearchType.NUMBER, value=number),
        )

    async def _search(
        self,
        interaction: discord.Interaction[Any],
        request_type: str,
        query: str,
        public: bool,
        *,
        blank: bool,
        fetch: FetchRecords,
    ) -> None:
        # Refusals that need no CAD call are answered at once, without a "thinking" pause.
        if blank:
            raise CadEmptySearchError("every search field is blank", request_type=request_type)
        creds = await guild_credentials(interaction)
        cad = services(interaction).cad
        refuse_if_plan_too_low(cad, creds, request_type)
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with plan_explained(cad, creds):
            records = await fetch(cad, creds)
        pages = listings.lookup_pages(records, query)
        if not pages:
            await interaction.followup.send(
                listings.no_records_message(query), ephemeral=True, allowed_mentions=NO_MENTIONS
            )
            return
        await send_pages(interaction, pages, public=public, refusal=REFUSAL)


async def _records_by_name(
    cad: CadApi, creds: CadCredentials, first: str, last: str, middle: str
) -> list[CustomRecord]:
    result = await cad.lookup(creds, first=first, last=last, mi=middle)
    return list(result.records)


async def _records_by_plate(cad: CadApi, creds: CadCredentials, plate: str) -> list[CustomRecord]:
    result = await cad.lookup(creds, plate=plate)
    return list(result.records)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Lookup(bot))
