"""What the production factory builds from the settings alone (``python -m bot run`` calls it without options)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from cryptography.fernet import Fernet

from bot.app import create_bot
from bot.cad.client import CadClient
from bot.cad.v2 import CadV2Client
from bot.config import Settings
from bot.storage import Storage


async def test_without_the_listener_the_bot_still_has_its_pipeline_and_websocket_sessions(
    tmp_path: Path,
) -> None:
    settings = Settings(server={"enabled": False}, database={"path": tmp_path / "bot.sqlite3"})
    storage = await Storage.open(tmp_path / "bot.sqlite3", Fernet.generate_key().decode())
    try:
        async with aiohttp.ClientSession() as session:
            bot = create_bot(settings, storage, session)
            pipeline = bot.services.pipeline
            assert pipeline is not None and pipeline.server is None  # no port opened
            assert pipeline.hub is not None  # websocket guilds still get their events
            assert isinstance(bot.services.cad, CadV2Client)  # the default API
            await bot.close()
    finally:
        await storage.close()


async def test_api_version_1_builds_the_v1_client(tmp_path: Path) -> None:
    settings = Settings(cad={"api_version": 1}, database={"path": tmp_path / "bot.sqlite3"})
    storage = await Storage.open(tmp_path / "bot.sqlite3", Fernet.generate_key().decode())
    try:
        async with aiohttp.ClientSession() as session:
            bot = create_bot(settings, storage, session, with_pipeline=False)
            assert isinstance(bot.services.cad, CadClient) and bot.services.pipeline is None
            await bot.close()
    finally:
        await storage.close()
