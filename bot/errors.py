"""Errors whose message is meant for the Discord member who ran a command.

They carry no secrets and say what to do next; the tree error handler shows ``user_message`` ephemerally.
"""

from __future__ import annotations


class UserFacingError(Exception):
    """Base: ``user_message`` is one short sentence that tells the member what to do."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class NotConfiguredError(UserFacingError):
    def __init__(self) -> None:
        super().__init__(
            "This server isn't connected to Sonoran CAD yet; an admin needs to run /setup first."
        )


class NotLinkedError(UserFacingError):
    def __init__(self) -> None:
        super().__init__("Your Discord account isn't linked to a Sonoran CAD account yet; run /link first.")


def cooldown_message(retry_after_s: float) -> str:
    """The one sentence for every cooldown, the guild's own (:class:`CooldownError`) and discord.py's."""
    return f"Slow down: you can use this again in {max(1, round(retry_after_s))} s."


class CooldownError(UserFacingError):
    def __init__(self, retry_after_s: float) -> None:
        super().__init__(cooldown_message(retry_after_s))
        self.retry_after_s = retry_after_s
