"""The buttons under a live dispatch card, as Discord component JSON (the delivery worker posts raw JSON).

The call ID travels in each button's ``custom_id``, so a click still means something after a restart: the
dispatch cog registers a ``discord.ui.DynamicItem`` whose template is :data:`CARD_BUTTON_TEMPLATE`. This module
knows nothing of discord.py; it only has to agree with that template.
"""

from __future__ import annotations

import re
from typing import Any, Literal

CardAction = Literal["attach", "detach"]

# A CAD may number calls below zero (push events carry any int64), so the ID may have a sign.
CARD_BUTTON_TEMPLATE = r"cad:card:(?P<action>attach|detach):(?P<call_id>-?[0-9]+)"
_CARD_BUTTON = re.compile(CARD_BUTTON_TEMPLATE)

# Discord component types and button styles (https://discord.com/developers/docs/components/reference).
_ACTION_ROW = 1
_BUTTON = 2
SUCCESS_STYLE = 3
SECONDARY_STYLE = 2

_BUTTONS: tuple[tuple[CardAction, str, int], ...] = (
    ("attach", "Attach me", SUCCESS_STYLE),
    ("detach", "Detach me", SECONDARY_STYLE),
)


def card_button_id(action: CardAction, call_id: int) -> str:
    """``cad:card:attach:311`` (``...:-311`` for a negative ID); well under Discord's 100-character
    ``custom_id`` limit for any 64-bit call ID."""
    return f"cad:card:{action}:{int(call_id)}"


def parse_card_button_id(custom_id: str) -> tuple[CardAction, int] | None:
    """The action and call ID of a card button's ``custom_id``, or None for any other component."""
    match = _CARD_BUTTON.fullmatch(custom_id)
    if match is None:
        return None
    action: CardAction = "attach" if match["action"] == "attach" else "detach"
    return action, int(match["call_id"])


def card_button_label(action: CardAction) -> str:
    return next(label for name, label, _ in _BUTTONS if name == action)


def card_button_style(action: CardAction) -> int:
    return next(style for name, _, style in _BUTTONS if name == action)


def dispatch_card_components(call_id: int, *, closed: bool) -> list[dict[str, Any]]:
    """One row with **Attach me** / **Detach me**; an empty list once the call is closed, which also
    removes the buttons when it is sent in an edit."""
    if closed:
        return []
    buttons = [
        {"type": _BUTTON, "style": style, "label": label, "custom_id": card_button_id(action, call_id)}
        for action, label, style in _BUTTONS
    ]
    return [{"type": _ACTION_ROW, "components": buttons}]


def card_components(kind: str, call_id: int, *, finished: bool) -> list[dict[str, Any]] | None:
    """The components of a live card of ``kind``, for its post and every edit: dispatch cards carry Attach me /
    Detach me until the call closes (the closing edit takes them away); other kinds have none (None leaves a
    message's components as they are)."""
    if kind != "dispatch":
        return None
    return dispatch_card_components(call_id, closed=finished)
