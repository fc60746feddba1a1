"""What the push tables' modules share: the row base, how JSON and error text are stored, placeholder lists."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict

MAX_ERROR_LENGTH = 300
# Rows per multi-row statement: far below SQLite's 32,766 parameters, and a bounded statement-cache entry.
ROWS_PER_STATEMENT = 200


class StoredRow(BaseModel):
    """A row as read back: frozen, so nobody mistakes changing it for changing the database."""

    model_config = ConfigDict(frozen=True)


def dumps(value: Any) -> str:
    # ASCII escapes keep lone surrogates (valid JSON, invalid UTF-8) storable; they are repaired when parsed.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True)


def clip(error: str) -> str:
    """An error as stored: one line, at most ``MAX_ERROR_LENGTH`` characters."""
    error = " ".join(error.split()) or "unknown error"
    return error if len(error) <= MAX_ERROR_LENGTH else error[: MAX_ERROR_LENGTH - 1] + "…"


def placeholders(count: int) -> str:
    return ", ".join("?" for _ in range(count))


def value_rows(count: int, width: int) -> str:
    """``(?, ?), (?, ?)`` for a multi-row VALUES: ``count`` rows of ``width`` parameters."""
    row = f"({placeholders(width)})"
    return ", ".join(row for _ in range(count))
