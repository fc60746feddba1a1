"""Every extension in cogs/ imports and sets up; the real bot boots under SimCord with its services."""

from __future__ import annotations

import importlib

import pytest

from bot.app import REQUIRED_PERMISSIONS, discover_extensions, invite_url
from tests.harness import World


def test_every_extension_is_discovered_and_imports() -> None:
    names = list(discover_extensions())
    assert names, "no extensions found in cogs/"
    for name in names:
        module = importlib.import_module(name)
        assert callable(module.setup)
    assert "cogs._shared" not in names


def test_invite_url_asks_for_exactly_what_the_bot_needs() -> None:
    url = invite_url(1234)
    assert "client_id=1234" in url
    assert "applications.commands" in url
    assert f"permissions={REQUIRED_PERMISSIONS.value}" in url
    assert not REQUIRED_PERMISSIONS.administrator
    assert not REQUIRED_PERMISSIONS.manage_messages


@pytest.mark.usefixtures("world")
async def test_real_bot_boots_with_every_extension(world: World) -> None:
    loaded = set(world.bot.extensions)
    assert loaded == set(discover_extensions())
    assert world.bot.services.storage is world.storage
    assert world.bot.is_ready()
