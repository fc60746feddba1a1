"""Settings: the example file loads and documents every key; bad input is one line and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, load_settings, require_token

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config.example.toml"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("BOT_") or name == "DISCORD_TOKEN":
            monkeypatch.delenv(name, raising=False)


def _documented_keys(text: str) -> set[str]:
    """Keys in the example, including the commented-out optional ones (`# key = value`)."""
    keys: set[str] = set()
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        candidate = line.lstrip("# ")
        if "=" in candidate and not candidate.startswith(("http", "e.g")):
            name = candidate.split("=", 1)[0].strip()
            if name.isidentifier():
                keys.add(f"{section}.{name}")
    return keys


def test_example_loads_and_matches_defaults() -> None:
    settings = load_settings(EXAMPLE, load_env_file=False)
    assert settings.model_dump(exclude={"discord_token", "secret_key"}) == Settings().model_dump(
        exclude={"discord_token", "secret_key"}
    )


def test_example_documents_every_key() -> None:
    documented = _documented_keys(EXAMPLE.read_text())
    expected = {
        f"{section}.{key}"
        for section, model in Settings.model_fields.items()
        if section not in {"discord_token", "secret_key"}
        for key in model.annotation.model_fields  # type: ignore[union-attr]
    }
    assert expected <= documented, f"undocumented keys: {sorted(expected - documented)}"
    assert tomllib.loads(EXAMPLE.read_text())  # and it is valid TOML


def test_env_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[cad]\ntimeout_s = 5\n[server]\nport = 9000\n[logging]\nlevel = "debug"\n')
    monkeypatch.setenv("BOT_CAD__TIMEOUT_S", "7.5")
    settings = load_settings(config, load_env_file=False)
    assert settings.cad.timeout_s == 7.5
    assert settings.server.port == 9000
    assert settings.logging.level == "DEBUG"


def test_unknown_key_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[cad]\ntimeout = 5\n")
    with pytest.raises(ConfigError, match=r"unknown key 'cad\.timeout'"):
        load_settings(config, load_env_file=False)


def test_bad_value_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[server]\nport = "eighty"\n')
    with pytest.raises(ConfigError, match=r"'server\.port'"):
        load_settings(config, load_env_file=False)


def test_secret_in_config_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('discord_token = "abc"\n')
    with pytest.raises(ConfigError, match="secret"):
        load_settings(config, load_env_file=False)


def test_missing_token_is_explained() -> None:
    with pytest.raises(ConfigError, match="DISCORD_TOKEN"):
        require_token(Settings())


def _run_bot(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BOT_") and k != "DISCORD_TOKEN"}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env={**clean, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[cad]\ntimeout_s = -1\n", "'cad.timeout_s'"),
        ("[nope]\nx = 1\n", "unknown key 'nope'"),
        ("[cad\n", "not valid TOML"),
    ],
)
def test_cli_config_errors_are_one_line_exit_2(tmp_path: Path, content: str, expected: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(content)
    result = _run_bot(["--config", str(config), "run"], tmp_path, DISCORD_TOKEN="x")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.stderr


def test_run_without_token_is_one_clear_line(tmp_path: Path) -> None:
    result = _run_bot(["run"], tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "DISCORD_TOKEN" in lines[0] and ".env" in lines[0]


def test_bare_invocation_runs_the_bot(tmp_path: Path) -> None:
    result = _run_bot([], tmp_path)
    assert result.returncode == 2
    assert "DISCORD_TOKEN" in result.stderr


# -- [server] trusted_proxies ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('trusted_proxies = ["127.0.0.1", "::1", "10.0.0.0/8"]', ["127.0.0.1/32", "::1/128", "10.0.0.0/8"]),
        ('trusted_proxies = "172.17.0.1"', ["172.17.0.1/32"]),
        ("trusted_proxies = []", []),
    ],
)
def test_trusted_proxies_take_addresses_and_networks(tmp_path: Path, toml: str, expected: list[str]) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f"[server]\n{toml}\n")
    settings = load_settings(config, load_env_file=False)
    assert [str(network) for network in settings.server.trusted_proxies] == expected


@pytest.mark.parametrize("value", ['["127.0.0.1", "10.0.0.0/8"]', "127.0.0.1, 10.0.0.0/8"])
def test_trusted_proxies_from_the_environment_as_json_or_commas(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("BOT_SERVER__TRUSTED_PROXIES", value)
    settings = load_settings(load_env_file=False)
    assert [str(network) for network in settings.server.trusted_proxies] == ["127.0.0.1/32", "10.0.0.0/8"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            '["10.0.0.1/8"]',
            "'10.0.0.1/8' is not an IP address or network (e.g. 172.17.0.1 or 10.0.0.0/8); "
            "did you mean 10.0.0.0/8?",
        ),
        ("nginx", "'nginx' is not an IP address or network"),
        ("[oops", "'[oops' is not a JSON list of addresses"),
    ],
)
def test_a_bad_trusted_proxy_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: str
) -> None:
    monkeypatch.setenv("BOT_SERVER__TRUSTED_PROXIES", value)
    with pytest.raises(ConfigError) as caught:
        load_settings(load_env_file=False)
    message = str(caught.value)
    assert message.startswith("environment variable BOT_SERVER__TRUSTED_PROXIES: 'server.trusted_proxies'")
    assert expected in message
    assert "\n" not in message
