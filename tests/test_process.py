"""The real process, end to end: `python -m bot run` against loopback Discord REST and a dead gateway.

It logs in, serves the push listener, delivers an event over REST (no gateway needed for that), and on
SIGTERM stops cleanly with exit code 0. This is what a self-hoster's `python3 manage.py run` does. With Discord
unreachable at start it keeps its listener, stores what the CAD sends and delivers it once Discord answers; a
rejected token is one line and exit code 2. Never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from cryptography.fernet import Fernet

from testing.discord_rest import DiscordRestFake

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
    assert "Traceback" not in stderr  # a dead gateway is one line per reconnect, not a traceback each
    assert "invite the bot with: https://discord.com/oauth2/authorize?client_id=" in stderr
    assert API_KEY not in stderr and TOKEN not in stderr


# ------------------------------------------------------------------------------ Discord away at start-up


class BotProcess:
    """``python -m bot run`` with its stderr read as it comes (the log is how the process says what it does)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._new_line = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, tmp_path: Path, env: dict[str, str], config: Path) -> BotProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "--config", str(config), "run",
            cwd=tmp_path, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))
            self._new_line.set()

    def matching(self, text: str) -> list[str]:
        return [line for line in self.lines if text in line]

    async def wait_for(self, text: str, count: int = 1, timeout_s: float = 30.0) -> list[str]:
        async with asyncio.timeout(timeout_s):
            while len(self.matching(text)) < count:
                self._new_line.clear()
                if self.process.returncode is not None or self._reader.done():
                    raise AssertionError(f"the bot ended before logging {text!r}:\n" + self.stderr)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.5):
                        await self._new_line.wait()
        return self.matching(text)

    async def exit_code(self, timeout_s: float = 30.0) -> int:
        code = await asyncio.wait_for(self.process.wait(), timeout=timeout_s)
        await asyncio.wait_for(self._reader, timeout=5)
        return code

    async def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return await self.exit_code()

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        self._reader.cancel()

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)


async def _set_up_guild(tmp_path: Path, env: dict[str, str], config: Path) -> None:
    base = ["--config", str(config)]
    await _cli(
        env, tmp_path, *base, "guild", "setup", str(GUILD_ID), "--community-id", "77", "--api-key-stdin",
        stdin=API_KEY.encode(),
    )  # fmt: skip
    await _cli(env, tmp_path, *base, "guild", "route", str(GUILD_ID), "panic", str(CHANNEL_ID))


def _write_config(tmp_path: Path, discord_port: int, listener_port: int) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[discord]\napi_base = "http://127.0.0.1:{discord_port}/api/v10"\n'
        f'gateway_url = "ws://127.0.0.1:{_free_port()}"\n'
        f'[server]\nhost = "127.0.0.1"\nport = {listener_port}\n'
        f'[database]\npath = "{tmp_path / "bot.sqlite3"}"\n'
    )
    return config


def _pending_deliveries(db_path: Path) -> int:
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM push_outbox WHERE status = 'pending'").fetchone()[0])


def _assert_clean(bot: BotProcess) -> None:
    assert "Traceback" not in bot.stderr, bot.stderr
    assert TOKEN not in bot.stderr and API_KEY not in bot.stderr


PANIC_EVENT = {"key": API_KEY, "type": "EVENT_UNIT_PANIC", "data": {"identIds": [57], "isPanic": True}}
LOGIN_FAILED = "cannot log in to Discord"


async def test_discord_unreachable_at_start_keeps_the_listener_and_delivers_once_it_answers(
    tmp_path: Path,
) -> None:
    discord_port, listener_port = _free_port(), _free_port()
    config = _write_config(tmp_path, discord_port, listener_port)
    env = _env(tmp_path, Fernet.generate_key().decode())
    await _set_up_guild(tmp_path, env, config)

    bot = await BotProcess.start(tmp_path, env, config)
    try:
        # Nothing listens on Discord's port: every login try fails, each with one line, and retries go on.
        first, second = (await bot.wait_for(LOGIN_FAILED, count=2))[:2]
        assert "try 1:" in first and "try 2:" in second
        assert "retrying in" in first
        assert bot.lines.index(second) == bot.lines.index(first) + 1  # nothing else logged per try

        url = f"http://127.0.0.1:{listener_port}"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            async with session.get(f"{url}/healthz") as response:
                assert response.status == 503  # up and answering; not healthy without Discord
            async with session.post(f"{url}/sonorancad/event", json=PANIC_EVENT) as response:
                assert response.status == 200
                assert (await response.json())["status"] == "accepted"
        async with asyncio.timeout(10):
            while await asyncio.to_thread(_pending_deliveries, tmp_path / "bot.sqlite3") != 1:
                await asyncio.sleep(0.05)  # processed into the outbox, waiting for Discord

        async with DiscordRestFake(limit=50, window=1.0, token=TOKEN, port=discord_port) as discord_back:
            async with asyncio.timeout(30):
                while not discord_back.messages(CHANNEL_ID):
                    await asyncio.sleep(0.05)
            [message] = discord_back.messages(CHANNEL_ID)
            assert message.embeds[0]["title"].startswith("🚨 PANIC")
            await bot.wait_for("logged in to Discord after")
            assert await bot.terminate() == 0, bot.stderr
    finally:
        await bot.kill()
    _assert_clean(bot)
    assert len(bot.matching(LOGIN_FAILED)) >= 2


async def test_a_stop_during_the_login_retries_is_a_clean_exit(tmp_path: Path) -> None:
    config = _write_config(tmp_path, _free_port(), _free_port())
    env = _env(tmp_path, Fernet.generate_key().decode())

    bot = await BotProcess.start(tmp_path, env, config)
    try:
        await bot.wait_for(LOGIN_FAILED)
        assert await bot.terminate() == 0, bot.stderr
    finally:
        await bot.kill()
    _assert_clean(bot)
    assert bot.matching("received SIGTERM, shutting down")


async def test_a_rejected_token_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    async with DiscordRestFake(token="the-real-token") as discord_fake:
        config = _write_config(tmp_path, discord_fake.port, _free_port())
        env = _env(tmp_path, Fernet.generate_key().decode())

        bot = await BotProcess.start(tmp_path, env, config)
        try:
            assert await bot.exit_code() == 2, bot.stderr
        finally:
            await bot.kill()
    _assert_clean(bot)
    [line] = bot.matching("DISCORD_TOKEN")
    assert "Reset Token" in line and ".env" in line
    assert not bot.matching(LOGIN_FAILED)  # a wrong token is not retried


@pytest.mark.parametrize("problem", ["database", "port"])
async def test_a_database_or_port_it_cannot_use_is_one_line_and_exit_code_2(
    tmp_path: Path, problem: str
) -> None:
    listener_port = _free_port()
    config = _write_config(tmp_path, _free_port(), listener_port)
    if problem == "database":
        (tmp_path / "not-a-folder").write_text("")
        config.write_text(
            config.read_text().replace(str(tmp_path / "bot.sqlite3"), str(tmp_path / "not-a-folder" / "db"))
        )
    env = _env(tmp_path, Fernet.generate_key().decode())
    with socket.socket() as taken:
        if problem == "port":
            taken.bind(("127.0.0.1", listener_port))
            taken.listen()
        bot = await BotProcess.start(tmp_path, env, config)
        try:
            assert await bot.exit_code() == 2, bot.stderr
        finally:
            await bot.kill()
    _assert_clean(bot)
    [line] = bot.matching("error: ")
    assert ("database" in line) if problem == "database" else ("[server] port" in line)
