"""Logging, configured once at start-up: human text or one JSON object per line."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from bot.config import LoggingSettings

_STANDARD_ATTRS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                payload[key] = value if isinstance(value, str | int | float | bool | None) else repr(value)
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)


class OneLineReconnects(logging.Filter):
    """One line per try at reaching Discord. discord.py logs every gateway reconnect at ERROR with a full
    traceback; an unreachable Discord is expected and handled (it keeps retrying), so each becomes one WARNING
    line naming the error. Its "logging in" line is dropped: the bot logs each login try that fails itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == "logging in using static token":
            return False
        if record.exc_info and str(record.msg).startswith("Attempting a reconnect"):
            error = record.exc_info[1]
            message = str(record.msg)
            record.msg = f"Discord's gateway is unreachable ({type(error).__name__}); {message[:1].lower()}{message[1:]}"
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def setup_logging(settings: LoggingSettings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
    # discord.py and aiohttp are chatty at DEBUG; keep them at INFO unless asked for WARNING or above.
    # aiosqlite logs every statement with its parameters at DEBUG: never useful, and not for log files.
    logging.getLogger("aiosqlite").setLevel(logging.INFO)
    for noisy in ("discord.gateway", "discord.http", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, logging.getLevelName(settings.level)))
    client_log = logging.getLogger("discord.client")
    if not any(isinstance(known, OneLineReconnects) for known in client_log.filters):
        client_log.addFilter(OneLineReconnects())
