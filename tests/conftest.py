"""Fixtures shared by every test folder."""

from tests.harness import (
    bot_settings,
    bot_storage,
    cad_world_sim,
    http_session,
    simcord_bot,
    simcord_env,
    world,
)

__all__ = [
    "bot_settings",
    "bot_storage",
    "cad_world_sim",
    "http_session",
    "simcord_bot",
    "simcord_env",
    "world",
]
