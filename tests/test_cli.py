"""Admin CLI: each verb as a real `python -m bot` subprocess on a real SQLite file, plus parser details.

The CLI must write exactly what the slash commands read (checked through the repositories), and the
CAD API key must never appear in any output.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot import cli
from bot.cli import build_parser, run_cli
from bot.config import Settings
from bot.storage import Category, CommandGroup, Storage
from bot.storage.secrets import generate_secret_key

API_KEY = "Sk-live-4f9A2b7C1d8E"
GUILD = 123_456_789_012_345_678
OTHER_GUILD = 223_456_789_012_345_678


@pytest.fixture
def secret_key() -> str:
    return generate_secret_key()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "bot.sqlite3"


def _env(db_path: Path, secret_key: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("BOT_") and name != "DISCORD_TOKEN"
    }
    # Set even when empty: python-dotenv never overrides a variable that exists, so a developer's .env
    # cannot sneak a key into the "no key" cases.
    env.update(BOT_SECRET_KEY=secret_key, BOT_DATABASE__PATH=str(db_path), DISCORD_TOKEN="")
    return env


def _bot(
    *args: str, env: dict[str, str], cwd: Path, stdin: str | None = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def _no_key_anywhere(result: subprocess.CompletedProcess[str]) -> None:
    for stream in (result.stdout, result.stderr):
        for variant in (API_KEY, API_KEY.upper(), API_KEY.lower()):
            assert variant not in stream


@pytest.fixture
async def storage_reader(db_path: Path, secret_key: str) -> AsyncIterator[Storage]:
    """Opened after the CLI ran, the way the bot process reads the same file."""
    storage = await Storage.open(db_path, secret_key)
    try:
        yield storage
    finally:
        await storage.close()


# ------------------------------------------------------------------------------------------ subprocess


def test_generate_secret_key_prints_one_usable_key(tmp_path: Path, db_path: Path) -> None:
    result = _bot("generate-secret-key", env=_env(db_path, ""), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    assert result.stdout == key + "\n"
    Fernet(key)  # raises if unusable
    assert "BOT_SECRET_KEY" in result.stderr


def test_setup_route_and_show_end_to_end(tmp_path: Path, db_path: Path, secret_key: str) -> None:
    env = _env(db_path, secret_key)
    setup = _bot(
        "guild", "setup", str(GUILD), "--community-id", "comm-42", "--api-key-stdin", "--server-id", "2",
        env=env, cwd=tmp_path, stdin=f"{API_KEY}\n",
    )  # fmt: skip
    assert setup.returncode == 0, setup.stderr
    assert f"Guild {GUILD}: connected to community comm-42, server 2" in setup.stdout
    _no_key_anywhere(setup)

    route = _bot("guild", "route", str(GUILD), "PANIC", "555000000000000001", env=env, cwd=tmp_path)
    assert route.returncode == 0, route.stderr
    assert "panic events go to channel 555000000000000001" in route.stdout

    show = _bot("guild", "show", str(GUILD), env=env, cwd=tmp_path)
    assert show.returncode == 0, show.stderr
    _no_key_anywhere(show)
    lines = show.stdout.splitlines()
    assert "  Community ID:  comm-42" in lines
    assert "  Server ID:     2" in lines
    assert "  API key:       set" in lines
    assert "  Push events:   http" in lines  # the default: existing setups keep HTTP
    assert "  911 cooldown:  30 s" in lines
    assert "  Linked users:  0" in lines
    assert any(line.split()[:3] == ["panic", "channel", "555000000000000001"] for line in lines)
    assert any(line.split()[:3] == ["911", "no", "channel"] for line in lines)
    assert "Command roles:" in lines

    raw = b"".join(path.read_bytes() for path in db_path.parent.iterdir())
    assert API_KEY.encode() not in raw and API_KEY.upper().encode() not in raw


def test_setup_with_push_websocket_is_stored_and_shown(
    tmp_path: Path, db_path: Path, secret_key: str
) -> None:
    env = _env(db_path, secret_key)
    setup = _bot(
        "guild", "setup", str(GUILD), "--community-id", "erlc-7", "--api-key-stdin", "--push", "websocket",
        env=env, cwd=tmp_path, stdin=f"{API_KEY}\n",
    )  # fmt: skip
    assert setup.returncode == 0, setup.stderr
    assert "Push events: over Sonoran's websocket (no listener port needed)" in setup.stdout
    _no_key_anywhere(setup)

    show = _bot("guild", "show", str(GUILD), env=env, cwd=tmp_path)
    assert "  Push events:   websocket" in show.stdout.splitlines()
    wrong = _bot(
        "guild", "setup", str(GUILD), "--community-id", "c", "--api-key-stdin", "--push", "carrier-pigeon",
        env=env, cwd=tmp_path, stdin=f"{API_KEY}\n",
    )  # fmt: skip
    assert wrong.returncode == 2 and "invalid choice: 'carrier-pigeon'" in wrong.stderr


async def test_cli_writes_what_the_bot_reads(tmp_path: Path, db_path: Path, secret_key: str) -> None:
    env = _env(db_path, secret_key)
    for guild in (GUILD, OTHER_GUILD):
        result = _bot(
            "guild", "setup", str(guild), "--community-id", "comm-42", "--api-key-stdin",
            env=env, cwd=tmp_path, stdin=API_KEY,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    assert "2 guilds now use this community's API key" in result.stdout
    assert _bot("guild", "route", str(GUILD), "911", "555", env=env, cwd=tmp_path).returncode == 0

    storage = await Storage.open(db_path, secret_key)
    try:
        credentials = await storage.guilds.get_credentials(GUILD)
        assert credentials is not None
        assert (credentials.community_id, credentials.server_id) == ("comm-42", 1)
        assert credentials.api_key.get_secret_value() == API_KEY
        sharing = await storage.guilds.guilds_for_push_key(API_KEY.lower())
        assert [config.guild_id for config in sharing] == [GUILD, OTHER_GUILD]
        assert (await storage.routes.get(GUILD, Category.CALLS_911)).channel_id == 555
    finally:
        await storage.close()


def test_setup_without_secret_key_is_one_clear_line(tmp_path: Path, db_path: Path) -> None:
    result = _bot(
        "guild", "setup", str(GUILD), "--community-id", "c", "--api-key-stdin",
        env=_env(db_path, ""), cwd=tmp_path, stdin=API_KEY,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1
    assert "BOT_SECRET_KEY is not set" in errors[0]
    assert "python -m bot generate-secret-key" in errors[0]
    _no_key_anywhere(result)
    assert not db_path.exists()


@pytest.mark.parametrize("stdin", ["", "\n  \n"])
def test_setup_with_empty_key_is_a_clear_error(
    tmp_path: Path, db_path: Path, secret_key: str, stdin: str
) -> None:
    result = _bot(
        "guild", "setup", str(GUILD), "--community-id", "c", "--api-key-stdin",
        env=_env(db_path, secret_key), cwd=tmp_path, stdin=stdin,
    )  # fmt: skip
    assert result.returncode == 2
    assert "no API key on stdin" in result.stderr


def test_route_with_unknown_category_lists_the_valid_ones(
    tmp_path: Path, db_path: Path, secret_key: str
) -> None:
    result = _bot("guild", "route", str(GUILD), "fire", "555", env=_env(db_path, secret_key), cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown category 'fire'" in result.stderr
    assert "911, panic, dispatch, units, records, other" in result.stderr
    assert not db_path.exists()


# ------------------------------------------------------------------------------------------ in-process


@pytest.fixture
def settings(db_path: Path, secret_key: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in list(os.environ):
        if name.startswith("BOT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("BOT_SECRET_KEY", secret_key)
    monkeypatch.setenv("BOT_DATABASE__PATH", str(db_path))
    return Settings()


def _parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["--config", "x.toml", "guild", "show", "1"],
        ["guild", "show", "1", "--config", "x.toml"],
        ["guild", "--config", "x.toml", "show", "1"],
        ["run", "--config", "x.toml"],
        ["--config", "x.toml", "run"],
        ["sync-commands", "--config", "x.toml", "--guild", "5"],
    ],
)
def test_config_option_is_accepted_before_or_after_the_verb(argv: list[str]) -> None:
    assert _parse(*argv).config == "x.toml"


def test_parser_shapes_for_the_bot_verbs() -> None:
    assert _parse().command is None
    assert _parse().config is None
    sync = _parse("sync-commands", "--guild", "42")
    assert (sync.command, sync.guild, sync.dev) == ("sync-commands", 42, False)
    assert _parse("sync-commands", "--dev").dev is True
    assert _parse("run").command == "run"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["guild", "show", "abc"], "not a Discord ID"),
        (["guild", "show", "0"], "not a Discord ID"),
        (["guild", "route", "1", "panic", "-3"], "not a Discord ID"),
        (["guild", "setup", "1", "--community-id", "c"], "--api-key-stdin"),
        (["guild", "setup", "1", "--community-id", "c", "--api-key-stdin", "--server-id", "x"], "server ID"),
        (["sync-commands", "--guild", "1", "--dev"], "not allowed with"),
        (["guild"], "ACTION"),
    ],
)
def test_bad_arguments_exit_2_with_a_reason(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        _parse(*argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


async def test_route_none_stops_a_category(
    settings: Settings, db_path: Path, secret_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run_cli(_parse("guild", "route", str(GUILD), "records", "777"), settings) == 0
    assert await run_cli(_parse("guild", "route", str(GUILD), "records", "none"), settings) == 0
    assert "records events will not be posted" in capsys.readouterr().out
    async with await Storage.open(db_path, secret_key) as storage:
        assert (await storage.routes.get(GUILD, Category.RECORDS)).channel_id is None


async def test_show_reports_every_setting(
    settings: Settings, db_path: Path, secret_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async with await Storage.open(db_path, secret_key) as storage:
        await storage.guilds.set_cad(GUILD, "comm-42", API_KEY)
        await storage.guilds.set_cooldown(GUILD, 75)
        await storage.routes.set_channel(GUILD, Category.DISPATCH, 888)
        await storage.routes.set_ping_role(GUILD, Category.DISPATCH, 999)
        await storage.routes.set_enabled(GUILD, Category.DISPATCH, False)
        await storage.routes.mark_failed(GUILD, Category.DISPATCH, "Missing Access")
        await storage.roles.set(GUILD, CommandGroup.LOOKUP, 4242)
        await storage.links.link(GUILD, 1, "acc-1")
        await storage.links.link(GUILD, 2, "acc-2")
        await storage.links.link(OTHER_GUILD, 3, "acc-3")

    assert await run_cli(_parse("guild", "show", str(GUILD)), settings) == 0
    output = capsys.readouterr()
    lines = output.out.splitlines()
    assert API_KEY not in output.out + output.err
    assert "  911 cooldown:  75 s" in lines
    assert "  Linked users:  2" in lines
    dispatch = next(line for line in lines if line.strip().startswith("dispatch") and "channel" in line)
    assert dispatch.split() == ["dispatch", "channel", "888", "disabled", "ping", "role", "999"]
    assert any("last error" in line and "Missing Access" in line for line in lines)
    assert any(line.split() == ["lookup", "role", "4242"] for line in lines)
    assert any(line.split() == ["map", "everyone"] for line in lines)


async def test_show_for_an_unknown_guild_explains_how_to_start(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await run_cli(_parse("guild", "show", str(GUILD)), settings) == 0
    out = capsys.readouterr().out
    assert "no settings yet" in out
    assert "  API key:       not set" in out.splitlines()


async def test_setup_prompts_without_echo_on_a_terminal(
    settings: Settings,
    db_path: Path,
    secret_key: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return API_KEY

    monkeypatch.setattr(sys, "stdin", Terminal("this must not be read"))
    monkeypatch.setattr(cli.getpass, "getpass", fake_getpass)
    args = _parse("guild", "setup", str(GUILD), "--community-id", "c", "--api-key-stdin")
    assert await run_cli(args, settings) == 0
    assert prompts == ["CAD API key (input hidden): "]
    assert API_KEY not in capsys.readouterr().out
    async with await Storage.open(db_path, secret_key) as storage:
        credentials = await storage.guilds.get_credentials(GUILD)
        assert credentials is not None and credentials.api_key.get_secret_value() == API_KEY


async def test_setup_rejects_a_multi_word_key_without_echoing_it(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{API_KEY}\n{API_KEY}\n"))
    args = _parse("guild", "setup", str(GUILD), "--community-id", "c", "--api-key-stdin")
    assert await run_cli(args, settings) == 2
    output = capsys.readouterr()
    assert "one line" in output.err
    assert API_KEY not in output.out + output.err


async def test_invalid_secret_key_is_exit_2(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BOT_SECRET_KEY", "not-a-fernet-key")
    broken = Settings()
    monkeypatch.setattr(sys, "stdin", io.StringIO(API_KEY))
    args = _parse("guild", "setup", str(GUILD), "--community-id", "c", "--api-key-stdin")
    assert await run_cli(args, broken) == 2
    err = capsys.readouterr().err
    assert "not a valid key" in err
    assert "not-a-fernet-key" not in err


async def test_bot_verbs_are_not_run_here(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert await run_cli(_parse("sync-commands"), settings) == 2
    assert "needs the Discord client" in capsys.readouterr().err
    assert await run_cli(_parse("guild", "show", "1"), None) == 1
