"""Page through pre-rendered embeds with ◀ Prev / Next ▶ buttons that only the invoker can press.

Pages are embed dicts from ``bot.formatting`` (already final text); the view only chooses which one to show.
A single page is sent without buttons. When the view times out, the buttons are removed from the message so
nobody presses a control that no longer answers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import discord

from bot.formatting.limits import EmbedDict, clamp_embed
from bot.tree import report_interaction_error

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 300.0
PREV_LABEL = "◀ Prev"
NEXT_LABEL = "Next ▶"
DEFAULT_REFUSAL = "Only the person who ran this command can page it."
SHARED_NOTE = "Posted in the channel."

_NO_MENTIONS = discord.AllowedMentions.none()


def page_embed(page: EmbedDict) -> discord.Embed:
    return discord.Embed.from_dict(clamp_embed(page))


class Paginator(discord.ui.View):
    """Buttons over ``pages``; ``owner_id`` is the only member whose presses count."""

    def __init__(
        self,
        pages: Sequence[EmbedDict],
        *,
        owner_id: int,
        timeout: float | None = DEFAULT_TIMEOUT_S,
        refusal: str = DEFAULT_REFUSAL,
    ) -> None:
        if not pages:
            raise ValueError("a paginator needs at least one page")
        super().__init__(timeout=timeout)
        self.pages = list(pages)
        self.owner_id = owner_id
        self.refusal = refusal
        self.index = 0
        self.message: discord.Message | None = None
        self._sync_buttons()

    @property
    def current(self) -> discord.Embed:
        return page_embed(self.pages[self.index])

    def _sync_buttons(self) -> None:
        self.previous_page.disabled = self.index == 0
        self.next_page.disabled = self.index >= len(self.pages) - 1
        self.position.label = f"{self.index + 1}/{len(self.pages)}"

    async def _show(self, interaction: discord.Interaction[Any], index: int) -> None:
        self.index = max(0, min(len(self.pages) - 1, index))
        self._sync_buttons()
        await interaction.response.edit_message(embed=self.current, view=self, allowed_mentions=_NO_MENTIONS)

    @discord.ui.button(label=PREV_LABEL, style=discord.ButtonStyle.secondary)
    async def previous_page(
        self, interaction: discord.Interaction[Any], button: discord.ui.Button[Any]
    ) -> None:
        await self._show(interaction, self.index - 1)

    # A label, not a control: it shows where you are, so it is always disabled.
    @discord.ui.button(label="1/1", style=discord.ButtonStyle.secondary, disabled=True)
    async def position(self, interaction: discord.Interaction[Any], button: discord.ui.Button[Any]) -> None:
        await interaction.response.defer()

    @discord.ui.button(label=NEXT_LABEL, style=discord.ButtonStyle.secondary)
    async def next_page(self, interaction: discord.Interaction[Any], button: discord.ui.Button[Any]) -> None:
        await self._show(interaction, self.index + 1)

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        if interaction.user.id == self.owner_id:
            return True
        await interaction.response.send_message(self.refusal, ephemeral=True, allowed_mentions=_NO_MENTIONS)
        return False

    async def on_timeout(self) -> None:
        message, self.message = self.message, None
        if message is None:
            return
        try:
            await message.edit(view=None)
        except discord.HTTPException as exc:
            # Dismissed or deleted messages cannot be edited; the buttons went with them.
            log.debug("could not remove expired page buttons from message %s: %s", message.id, exc)

    async def on_error(
        self, interaction: discord.Interaction[Any], error: Exception, item: discord.ui.Item[Any], /
    ) -> None:
        await report_interaction_error(interaction, error)


async def send_pages(
    interaction: discord.Interaction[Any],
    pages: Sequence[EmbedDict],
    *,
    public: bool = False,
    refusal: str = DEFAULT_REFUSAL,
    view_timeout_s: float | None = DEFAULT_TIMEOUT_S,
) -> Paginator | None:
    """Answer an interaction deferred *ephemerally* with ``pages``; buttons only when there is more than one.

    ``public`` posts the pages as a new channel message and turns the private "thinking" reply into a short
    note: deferring privately first means a refusal before this point is never shown to the channel.
    Returns the paginator (``None`` for a single page) so callers and tests can inspect it.
    """
    if not pages:
        raise ValueError("send_pages needs at least one page")
    if public:
        # The first follow-up after a deferral would inherit its privacy, so the deferral is answered first.
        await interaction.edit_original_response(content=SHARED_NOTE, allowed_mentions=_NO_MENTIONS)
    if len(pages) == 1:
        await interaction.followup.send(
            embed=page_embed(pages[0]), ephemeral=not public, allowed_mentions=_NO_MENTIONS
        )
        return None
    paginator = Paginator(pages, owner_id=interaction.user.id, timeout=view_timeout_s, refusal=refusal)
    paginator.message = await interaction.followup.send(
        embed=paginator.current,
        view=paginator,
        ephemeral=not public,
        allowed_mentions=_NO_MENTIONS,
        wait=True,
    )
    return paginator
