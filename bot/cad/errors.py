"""Typed CAD failures, each carrying one sentence a Discord member can act on.

``str(error)`` is for logs (request type, HTTP status, a short excerpt of the CAD's answer);
``user_message`` is for Discord. Neither ever contains the community API key: the client redacts answers
before they get here, and nothing in this module is given the key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from bot.cad.endpoints import READ_TYPES
from bot.cad.tiers import Tier, required_tier

# What stands in a CAD answer where a secret the request carried was echoed back.
REDACTED = "[redacted]"


def redact_secrets(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every occurrence of each (non-empty) secret replaced by :data:`REDACTED`; both clients pass
    every answer through this before it can reach an error, a log line or a member."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    return text


# Plural nouns for what a member was trying to use, so refusals read "Blips need Sonoran CAD Pro".
FEATURE_NAMES: dict[str, str] = {
    "CALL_911": "911 calls",
    "REMOVE_911": "911 calls",
    "GET_CALLS": "Call lists",
    "GET_MY_CALL": "Call lists",
    "NEW_DISPATCH": "Dispatch calls",
    "EDIT_DISPATCH": "Dispatch calls",
    "ATTACH_UNIT": "Dispatch calls",
    "DETACH_UNIT": "Dispatch calls",
    "ADD_CALL_NOTE": "Call notes",
    "CLOSE_CALL": "Dispatch calls",
    "SET_CALL_POSTAL": "Dispatch calls",
    "SET_CALL_PRIMARY": "Dispatch calls",
    "UNIT_PANIC": "Panic buttons",
    "UNIT_STATUS": "Unit status changes",
    "GET_ACTIVE_UNITS": "Unit lists",
    "KICK_UNIT": "Unit kicks",
    "GET_IDENTIFIERS": "Unit identifiers",
    "SET_IDENTIFIER": "Unit identifiers",
    "MODIFY_IDENTIFIER": "Unit identifier edits",
    "IDENTS_TO_GROUP": "Unit groups",
    "UNIT_LOCATION": "Unit locations",
    "GET_BLIPS": "Blips",
    "ADD_BLIP": "Blips",
    "MODIFY_BLIP": "Blips",
    "REMOVE_BLIP": "Blips",
    "LOOKUP": "Lookups",
    "LOOKUP_INT": "Lookups",
    "LOOKUP_CUSTOM": "Lookups",
    "GET_TEMPLATES": "Record templates",
    "NEW_RECORD": "Records",
    "EDIT_RECORD": "Records",
    "REMOVE_RECORD": "Records",
    "GET_ACCOUNT": "Account lookups",
    "GET_ACCOUNTS": "Account lookups",
    "CHECK_APIID": "Account links",
    "SET_API_ID": "Account links",
    "VERIFY_SECRET": "Account links",
    "GET_SERVERS": "Server lists",
    "SEND_PHOTO": "Photos",
    "GET_CHARACTERS": "Character lists",
    # v2 operations v1 has no request type for
    "GET_DISPATCH_TEMPLATES": "Dispatch templates",
    "CUSTOM_DISPATCH": "Dispatch templates",
    "GET_INFO": "Community details",
}

_EXCERPT_LIMIT = 200


def feature_name(request_type: str | None) -> str | None:
    return FEATURE_NAMES.get(request_type.upper()) if request_type else None


def _needs(request_type: str | None) -> str:
    feature = feature_name(request_type)
    return f"{feature} need" if feature else "This CAD feature needs"


def excerpt(body: str) -> str:
    """A short single-line version of a CAD answer, safe to put in a log line."""
    flat = " ".join(body.split())
    return flat if len(flat) <= _EXCERPT_LIMIT else flat[: _EXCERPT_LIMIT - 1] + "…"


class CadError(Exception):
    """Base of every CAD failure. ``status`` is the HTTP status when there was one."""

    default_user_message: ClassVar[str] = "Something went wrong talking to the CAD; try again in a moment."

    def __init__(
        self,
        detail: str = "",
        *,
        status: int | None = None,
        request_type: str | None = None,
        user_message: str | None = None,
    ) -> None:
        self.detail = detail
        self.status = status
        self.request_type = request_type
        self.user_message = user_message or self._default_message_for(request_type)
        super().__init__(self._describe())

    @classmethod
    def _default_message_for(cls, request_type: str | None) -> str:
        return cls.default_user_message

    def _describe(self) -> str:
        where = self.request_type or "CAD request"
        if self.status is not None:
            where = f"{where} -> HTTP {self.status}"
        return f"{where}: {self.detail}" if self.detail else where

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class CadCredentialsError(CadError):
    """``INVALID API KEY`` or ``INVALID COMMUNITY ID``: nothing will work until /setup is run again."""

    default_user_message = (
        "The CAD rejected this server's API credentials; an admin needs to run /setup again."
    )


class CadNotEnabledError(CadError):
    """The CAD said ``... IS NOT ENABLED FOR THIS COMMUNITY`` (plan too low or API switched off)."""

    def __init__(
        self,
        detail: str = "",
        *,
        status: int | None = None,
        request_type: str | None = None,
        required: Tier | None = None,
    ) -> None:
        self.required = (
            required if required is not None else (required_tier(request_type) if request_type else None)
        )
        feature = feature_name(request_type)
        what = feature or "This CAD feature"
        verb = "are" if feature else "is"
        if self.required is not None:
            message = (
                f"The CAD says {_lower_first(what)} {verb} not enabled for this community; "
                f"{'they need' if feature else 'it needs'} {self.required.display_name} or higher, so an "
                "admin should check the plan and that the API is switched on in the CAD's admin settings."
            )
        else:
            message = (
                f"The CAD says {_lower_first(what)} {verb} not enabled for this community; an admin should "
                "check the plan and that the API is switched on in the CAD's admin settings."
            )
        super().__init__(detail, status=status, request_type=request_type, user_message=message)


class CadPlanRefusedError(CadNotEnabledError):
    """v2 402/403 (or a 400 saying a version is required): the community's plan lacks the feature.

    The sentence names the plan the CAD reports (``plan``); the v1 tier table only helps the wording.
    """

    def __init__(
        self,
        detail: str = "",
        *,
        status: int | None = None,
        request_type: str | None = None,
        plan: str | None = None,
        current: Tier | None = None,
    ) -> None:
        super().__init__(detail, status=status, request_type=request_type)
        self.plan = plan
        self.current = current
        feature = feature_name(request_type)
        what = _lower_first(feature) if feature else "this CAD feature"
        verb = "are" if feature else "is"
        on_plan = f"this community's plan ({plan})" if plan else "this community's plan"
        hint = ""
        # The hint only helps when it points above the plan the CAD reported.
        if self.required is not None and (current is None or current < self.required):
            hint = f"; {'they usually need' if feature else 'it usually needs'} {self.required.display_name}"
        self.user_message = (
            f"The CAD says {what} {verb} not available on {on_plan}{hint}, so an admin should check the plan "
            "in the CAD."
        )


def _lower_first(text: str) -> str:
    # "911 calls" and "Blips" alike read naturally mid-sentence.
    return text[:1].lower() + text[1:]


class CadRequestTypeError(CadError):
    """``INVALID REQUEST TYPE``: the CAD does not know what the bot asked for (bot bug or API change)."""

    default_user_message = (
        "The CAD did not understand the bot's request; the bot may need an update, so please tell an admin."
    )


class CadEmptySearchError(CadError):
    """``INVALID EMPTY SEARCH`` (also raised before calling when every search field is blank)."""

    default_user_message = "Give at least one thing to search for, such as a name, a plate or a number."


class CadNotLinkedError(CadError):
    """404 ``API ID NOT LINKED TO AN ACCOUNT IN THIS COMMUNITY`` (v1), or a v2 target the CAD has no account for."""

    default_user_message = "Your Discord account is not linked to a CAD account yet; link it with /link."


# v2 recognises members by the Discord link in their CAD account; /link covers accounts without one.
NOT_LINKED_HOW_TO = (
    "Your Discord account is not linked to a CAD account in this community yet: link Discord in your "
    "CAD account settings, or run /link with your Account Secret ID."
)


class CadTargetUnsupportedError(CadError):
    """The API version in use cannot address a member this way (v1 has no Discord target)."""

    default_user_message = (
        "This bot's CAD connection cannot recognise members by their Discord account; "
        "link your CAD account with /link and your Account Secret ID first."
    )


class CadUnknownServerError(CadError):
    """v2 404 on a server route: the configured CAD server ID does not exist in this community."""

    default_user_message = (
        "The CAD has no server with the ID set for this Discord server; the CAD server id in /setup is "
        "wrong, so an admin needs to run /setup again."
    )


class CadNotFoundError(CadError):
    """v2 404 for a call, blip or template that is not (or no longer) in the CAD."""

    default_user_message = "The CAD no longer has that item; it may have been closed or removed."


class CadInvalidRequestError(CadError):
    """v2 400/409: the CAD rejected what was sent as invalid (its detail goes to the log, not the member)."""

    default_user_message = "The CAD did not accept that request as entered; check the values and try again."


class CadRateLimitedError(CadError):
    """429, or a request type still paused after an earlier 429."""

    default_user_message = "The CAD is asking the bot to slow down; try again in a minute."

    def __init__(
        self,
        detail: str = "",
        *,
        status: int | None = None,
        request_type: str | None = None,
        retry_after: float | None = None,
        user_message: str | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(detail, status=status, request_type=request_type, user_message=user_message)


class CadUnavailableError(CadError):
    """5xx or a connection failure: the CAD could not be reached or answered with an outage."""

    default_user_message = (
        "The CAD could not be reached right now; try again in a few minutes "
        "(status.sonorancad.com shows outages)."
    )


class CadTimeoutError(CadUnavailableError):
    """No answer within the client's timeout. For a write the action may or may not have happened."""

    default_user_message = (
        "The CAD took too long to answer; check the CAD before trying again, "
        "as the action may already be done."
    )
    read_user_message = "The CAD took too long to answer; try again in a moment."

    @classmethod
    def _default_message_for(cls, request_type: str | None) -> str:
        # Only a write can have happened without us hearing back; a slow read just needs another try.
        return cls.read_user_message if request_type in READ_TYPES else cls.default_user_message


class CadWrongEndpointError(CadError):
    """HTTP 200 ``Backend Service Reached``: the request went to a path the CAD does not route."""

    default_user_message = (
        "The bot is pointed at the wrong CAD address; "
        "an admin should check the CAD API URL in the bot's settings."
    )


class CadUnexpectedResponseError(CadError):
    """Any answer the bot cannot interpret (unknown error text, unparseable JSON, missing ID)."""

    default_user_message = (
        "The CAD gave an answer the bot did not understand; "
        "try again, and tell an admin if it keeps happening."
    )


class CadPlanError(CadError):
    """Refused before calling: the community's known plan is below what the request type needs."""

    def __init__(self, request_type: str, required: Tier, current: Tier) -> None:
        self.required = required
        self.current = current
        message = (
            f"{_needs(request_type)} {required.display_name}; this community is on {current.short_name}."
        )
        super().__init__(
            f"needs plan {int(required)}, community has {int(current)}",
            request_type=request_type,
            user_message=message,
        )


_CREDENTIAL_BODIES = ("INVALID API KEY", "INVALID COMMUNITY ID")
_NOT_ENABLED = "IS NOT ENABLED FOR THIS COMMUNITY"
_NOT_LINKED = "NOT LINKED TO AN ACCOUNT"
_WRONG_ENDPOINT = "BACKEND SERVICE REACHED"


def is_wrong_endpoint_body(body: str) -> bool:
    """``Sonoran CAD: Backend Service Reached`` (prefix optional) marks a path the CAD does not route."""
    return _WRONG_ENDPOINT in body.upper() and len(body) < 100


def error_from_response(
    status: int, body: str, *, request_type: str, retry_after: float | None = None
) -> CadError:
    """Map a failed answer to its typed error. ``body`` must already be free of the API key."""
    text = body.strip().upper()
    detail = excerpt(body)
    # Throttling and outages are decided by status alone: their bodies are proxy pages, not CAD wording.
    if status == 429:
        return CadRateLimitedError(detail, status=status, request_type=request_type, retry_after=retry_after)
    if status >= 500:
        return CadUnavailableError(detail, status=status, request_type=request_type)
    if _NOT_ENABLED in text:
        return CadNotEnabledError(detail, status=status, request_type=request_type)
    if any(marker in text for marker in _CREDENTIAL_BODIES):
        return CadCredentialsError(detail, status=status, request_type=request_type)
    if "INVALID REQUEST TYPE" in text:
        return CadRequestTypeError(detail, status=status, request_type=request_type)
    if "INVALID EMPTY SEARCH" in text:
        return CadEmptySearchError(detail, status=status, request_type=request_type)
    if _NOT_LINKED in text:
        return CadNotLinkedError(detail, status=status, request_type=request_type)
    return CadUnexpectedResponseError(detail, status=status, request_type=request_type)
