"""Settings: ``config.toml`` (path from ``--config`` or ``BOT_CONFIG``) + ``.env`` + environment.

Priority, highest first: environment variables (``BOT_<SECTION>__<KEY>``, e.g. ``BOT_CAD__TIMEOUT_S``),
then the TOML file, then defaults. The two secrets have their own conventional names:
``DISCORD_TOKEN`` and ``BOT_SECRET_KEY``. Every problem is reported as one line by :func:`load_settings`.
"""

from __future__ import annotations

import ipaddress
import json
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

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
    api_version: Literal[1, 2] = Field(
        2,
        description=(
            "Which CAD API the commands speak: 2 (default; members are recognised by their Discord account) "
            "or 1 (the legacy API, for a community where v2 misbehaves)."
        ),
    )
    timeout_s: float = Field(30.0, gt=0, le=300, description="Timeout for one CAD request, in seconds.")
    hub_url: str = Field(
        "https://api.sonorancad.com/apiWsHub",
        description=(
            "Sonoran's API websocket hub, for guilds that receive push events over the websocket "
            "(staging: https://staging-api.dev.sonorancad.com/apiWsHub)."
        ),
    )
    requests_per_second: float = Field(
        1.0, gt=0, le=1000, description="Sustained CAD requests per second per community."
    )
    burst: int = Field(
        5, ge=1, le=1000, description="Requests a community may burst above the sustained rate."
    )

    @field_validator("api_base", "hub_url")
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
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        le=300,
        description="Seconds a client has to send a complete request line and headers, counted from when it "
        "connects (or starts its next request); slower connections are closed.",
    )
    body_timeout_s: float = Field(
        30.0,
        gt=0,
        le=600,
        description="Seconds a client has to send the whole body once its headers are in; slower ones get 408.",
    )
    keepalive_timeout_s: float = Field(
        15.0,
        gt=0,
        le=3600,
        description="Seconds an idle kept-alive connection stays open waiting for the next request.",
    )
    max_connections: int = Field(
        256,
        ge=1,
        le=100_000,
        description="Connections served at once; more are answered 503 (with Retry-After) and closed.",
    )
    # NoDecode: the environment may give a plain "10.0.0.1, 10.0.0.2" as well as a JSON list (see _networks).
    trusted_proxies: Annotated[tuple[IPvAnyNetwork, ...], NoDecode] = Field(
        (),
        description="Reverse proxies (IPs or CIDRs) whose X-Forwarded-For names the real client; "
        "empty = the connecting address is the client.",
    )

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        if isinstance(value, str):  # from the environment: a JSON list, or addresses separated by commas
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except json.JSONDecodeError:
                    raise ValueError(f"{text!r} is not a JSON list of addresses") from None
            else:
                value = [part for part in text.split(",") if part.strip()]
        if not isinstance(value, list | tuple):
            return value
        for entry in value:
            try:
                ipaddress.ip_network(str(entry).strip())
            except ValueError as exc:
                hint = ""
                if "host bits set" in str(exc):
                    hint = f"; did you mean {ipaddress.ip_network(str(entry).strip(), strict=False)}?"
                raise ValueError(
                    f"{entry!r} is not an IP address or network (e.g. 172.17.0.1 or 10.0.0.0/8){hint}"
                ) from None
        return [str(entry).strip() for entry in value]


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
    except SettingsError as exc:  # an environment value pydantic-settings could not even parse
        raise ConfigError(f"environment: {exc}") from None


def require_token(settings: Settings) -> str:
    if settings.discord_token is None or not settings.discord_token.get_secret_value().strip():
        raise ConfigError(
            "DISCORD_TOKEN is not set: put DISCORD_TOKEN=<your bot token> in .env "
            "(Discord Developer Portal > your application > Bot > Reset Token)"
        )
    return settings.discord_token.get_secret_value().strip()
