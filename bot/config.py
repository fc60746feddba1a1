"""Settings: ``config.toml`` (path from ``--config`` or ``BOT_CONFIG``) + ``.env`` + environment.

Priority, highest first: environment variables (``BOT_<SECTION>__<KEY>``, e.g. ``BOT_CAD__TIMEOUT_S``),
then the TOML file, then defaults. The two secrets have their own conventional names:
``DISCORD_TOKEN`` and ``BOT_SECRET_KEY``. Every problem is reported as one line by :func:`load_settings`.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

DEFAULT_CONFIG_PATH = Path("config.toml")


class ConfigError(Exception):
    """A configuration problem, phrased as one line a self-hoster can act on."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DiscordSettings(_Section):
    api_base: str = Field(
        "https://discord.com/api/v10",
        description="Discord REST base URL; point at a REST proxy or a test fake.",
    )
    gateway_url: str = Field(
        "wss://gateway.discord.gg",
        description="Discord gateway URL; normally left alone.",
    )
    dev_guild_id: int | None = Field(
        None, description="Guild that `sync-commands --dev` syncs to instantly (optional)."
    )

    @field_validator("api_base", "gateway_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://", "ws://", "wss://")):
            raise ValueError("must be an http(s):// or ws(s):// URL")
        return value.rstrip("/")


class CadSettings(_Section):
    api_base: str = Field("https://api.sonorancad.com", description="Sonoran CAD API base URL.")
    timeout_s: float = Field(30.0, gt=0, le=300, description="Timeout for one CAD request, in seconds.")
    requests_per_second: float = Field(
        1.0, gt=0, le=1000, description="Sustained CAD requests per second per community."
    )
    burst: int = Field(
        5, ge=1, le=1000, description="Requests a community may burst above the sustained rate."
    )

    @field_validator("api_base")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s):// URL")
        return value.rstrip("/")


class ServerSettings(_Section):
    host: str = Field("0.0.0.0", description="Address the push-event listener binds to.")
    port: int = Field(
        8085, ge=0, le=65535, description="Port of the push-event listener (0 = any free port)."
    )
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest push-event body accepted.")
    public_url: str | None = Field(
        None,
        description="How Sonoran CAD reaches this listener, e.g. http://203.0.113.7:8085 (shown by /setup).",
    )
    enabled: bool = Field(True, description="Start the push-event listener.")


class DatabaseSettings(_Section):
    path: Path = Field(Path("data/bot.sqlite3"), description="SQLite file; its folder is created.")


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field("INFO")
    format: Literal["text", "json"] = Field("text")

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BOT_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    discord_token: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("DISCORD_TOKEN", "BOT_DISCORD_TOKEN"),
        description="Bot token (environment or .env only).",
    )
    secret_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("BOT_SECRET_KEY"),
        description="Fernet key that encrypts CAD API keys at rest (environment or .env only).",
    )
    discord: DiscordSettings = Field(default_factory=DiscordSettings)
    cad: CadSettings = Field(default_factory=CadSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file arrives through init kwargs (see load_settings), so the environment must win over it.
        return env_settings, init_settings


_SECRET_KEYS_IN_FILE = {"discord_token", "secret_key", "token"}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    leaked = sorted(_SECRET_KEYS_IN_FILE & {*data, *data.get("discord", {})})
    if leaked:
        raise ConfigError(
            f"{path}: '{leaked[0]}' is a secret; put it in .env or the environment "
            "(DISCORD_TOKEN / BOT_SECRET_KEY), not in the config file"
        )
    return data


def _describe(error: ValidationError, source: str) -> str:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    env_name = "BOT_" + "__".join(str(part) for part in first["loc"]).upper()
    if env_name in os.environ:
        source = f"environment variable {env_name}"
    if first["type"] == "extra_forbidden":
        return f"{source}: unknown key '{key}' (see config.example.toml for the valid keys)"
    value = first.get("input")
    shown = "" if isinstance(value, dict | list) or value is None else f" (got {value!r})"
    return f"{source}: '{key}': {first['msg']}{shown}"


def load_settings(config_path: str | Path | None = None, *, load_env_file: bool = True) -> Settings:
    """Build the one validated :class:`Settings`, or raise :class:`ConfigError` with one line.

    ``config_path`` falls back to ``$BOT_CONFIG``, then ``./config.toml`` if it exists (defaults otherwise).
    """
    if load_env_file:
        from dotenv import load_dotenv

        load_dotenv(override=False)
    explicit = config_path or os.environ.get("BOT_CONFIG")
    path = Path(explicit) if explicit else DEFAULT_CONFIG_PATH
    if explicit and not path.is_file():
        raise ConfigError(f"config file {path} does not exist (copy config.example.toml to start one)")
    data = _read_toml(path) if path.is_file() else {}
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, str(path) if path.is_file() else "environment")) from None


def require_token(settings: Settings) -> str:
    if settings.discord_token is None or not settings.discord_token.get_secret_value().strip():
        raise ConfigError(
            "DISCORD_TOKEN is not set: put DISCORD_TOKEN=<your bot token> in .env "
            "(Discord Developer Portal > your application > Bot > Reset Token)"
        )
    return settings.discord_token.get_secret_value().strip()
