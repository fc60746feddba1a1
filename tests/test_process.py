"""The real process, end to end: `python -m bot run` against loopback Discord REST and a dead gateway.

It logs in, serves the push listener, delivers an event over REST (no gateway needed for that), and on
SIGTERM stops cleanly with exit code 0. This is what a self-hoster's `python3 manage.py run` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from cryptography.fernet import Fernet

from tests.fakes.discord_rest import DiscordRestFake

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "fake-token-for-process-test"
API_KEY = "process-test-community-key"
GUILD_ID = 555000000000000001
CHANNEL_ID = 555000000000000002

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(tmp_path: Path, secret: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_") and k != "DISCORD_TOKEN"}
    env.update(
        DISCORD_TOKEN=TOKEN,
        BOT_SECRET_KEY=secret,
        PYTHONPATH=str(ROOT),
    )
    return env


async def _cli(env: dict[str, str], cwd: Path, *args: str, stdin: bytes = b"") -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(stdin), timeout=60)
    assert process.returncode == 0, output.decode()
    return output.decode()


@pytest.fixture
async def rest_fake() -> AsyncIterator[DiscordRestFake]:
    async with DiscordRestFake(limit=50, window=1.0, token=TOKEN) as fake:
        yield fake


async def test_run_serves_delivers_and_stops_cleanly_on_sigterm(
    tmp_path: Path, rest_fake: DiscordRestFake
) -> None:
    port = _free_port()
    dead_gateway = _free_port()  # nothing listens: the gateway keeps reconnecting, REST still works
    config = tmp_path / "config.toml"
    config.write_text(
        f'[discord]\napi_base = "{rest_fake.api_base}"\ngateway_url = "ws://127.0.0.1:{dead_gateway}"\n'
        f'[server]\nhost = "127.0.0.1"\nport = {port}\n'
        f'[database]\npath = "{tmp_path / "bot.sqlite3"}"\n'
    )
    env = _env(tmp_path, Fernet.generate_key().decode())
    base = ["--config", str(config)]
    await _cli(
        env,
        tmp_path,
        *base,
        "guild",
        "setup",
        str(GUILD_ID),
        "--community-id",
        "77",
        "--api-key-stdin",
        stdin=API_KEY.encode(),
    )
    await _cli(env, tmp_path, *base, "guild", "route", str(GUILD_ID), "panic", str(CHANNEL_ID))

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *base, "run",
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            url = f"http://127.0.0.1:{port}"
            health = None
            for _ in range(200):
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{url}/healthz") as response:
                        health = (response.status, await response.json())
                        break
                await asyncio.sleep(0.1)
            assert health is not None, "the push listener never came up"
            status, body = health
            assert status == 503 and json.dumps(body)  # Discord's gateway is unreachable: not healthy

            event = {"key": API_KEY, "type": "EVENT_UNIT_PANIC", "data": {"identIds": [57], "isPanic": True}}
            async with session.post(f"{url}/sonorancad/event", json=event) as response:
                assert response.status == 200
            async with session.post(f"{url}/sonorancad/event", json={**event, "key": "wrong"}) as response:
                assert response.status == 401
                assert API_KEY not in await response.text()

            for _ in range(200):
                if rest_fake.messages(CHANNEL_ID):
                    break
                await asyncio.sleep(0.05)
            [message] = rest_fake.messages(CHANNEL_ID)
            assert message.embeds[0]["title"].startswith("🚨 PANIC")
            assert message.allowed_mentions == {"parse": []}

        # Outlive discord.py's first reconnect back-off: a failed first gateway connection must not end the
        # process (deliveries only need REST); the bot keeps retrying until it is told to stop.
        await asyncio.sleep(3)
        assert process.returncode is None
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), timeout=30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    stderr = (await process.stderr.read()).decode() if process.stderr else ""
    assert process.returncode == 0, stderr
    assert "received SIGTERM, shutting down" in stderr
    assert "cannot reach Discord's gateway" in stderr
    assert "invite the bot with: https://discord.com/oauth2/authorize?client_id=" in stderr
    assert API_KEY not in stderr and TOKEN not in stderr
