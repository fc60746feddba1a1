"""Build the push pipeline for a bot: delivery through the bot's own REST client, listener from settings.

The pipeline always runs (slash commands publish their own alerts and card updates through it); only the
HTTP listener depends on ``[server] enabled``.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from bot.config import Settings
from bot.push.discord_sender import DiscordPySender
from bot.push.pipeline import PushPipeline
from bot.storage import Storage
from bot.timing import IdleWait

if TYPE_CHECKING:
    from bot.app import CadBot


class _BotHttp:
    """discord.py's REST client as the bot has it *now* (tests and reconnects may swap ``bot.http``)."""

    def __init__(self, bot: CadBot) -> None:
        self._bot = bot

    def request(self, *args: Any, **kwargs: Any) -> Any:
        return self._bot.http.request(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        # The rest (the rate-limit bookkeeping the sender reads) from the same current client.
        return getattr(self._bot.http, name)


def build_pipeline(
    settings: Settings, storage: Storage, bot: CadBot, *, idle_wait: IdleWait | None = None
) -> PushPipeline:
    def bot_idle_wait(awaitable: Awaitable[Any]) -> Awaitable[Any]:
        # Read at wait time, so a harness can declare idle waits after the bot object exists.
        hook = idle_wait or bot.idle_wait
        return hook(awaitable) if hook is not None else awaitable

    pipeline = PushPipeline(
        storage,
        DiscordPySender(_BotHttp(bot)),  # type: ignore[arg-type]
        idle_wait=bot_idle_wait,
        discord_connected=bot.is_ready,
    )
    if settings.server.enabled:
        pipeline.attach_server(pipeline.create_server(settings.server, discord_connected=bot.is_ready))
    return pipeline
