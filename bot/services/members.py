"""How the CAD is told which member acts, and which units on duty are theirs.

A member with a stored link is named by it: a link made with an Account Secret always has an account UUID
(``accountUuid``). A member linked by API ID on a plan that cannot read accounts (``GET_ACCOUNT`` needs Plus)
has only the API ID; storage still needs a unique account key, so that link stores ``api-id:<id>`` in its
place and unit requests target the API ID (``apiId``) instead.

On CAD v2 a member without a stored link is named by their Discord user ID (the ``discord`` target): the CAD
finds the account that linked that Discord account in its own settings, so most members never run /link. v1
cannot address a Discord user, so there a member without a link is asked to /link.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass

from bot.cad.board import CadBoard
from bot.cad.errors import CadError
from bot.cad.interface import CadApi
from bot.cad.models import CadCredentials, MemberTarget, Unit
from bot.errors import NotLinkedError
from bot.storage.models import UserLink

log = logging.getLogger(__name__)

# A cached list older than this that lacks the member's unit is read once more (they may have logged in since).
RECHECK_AFTER_S = 3.0
# Knowing the member's unit is a nicety next to the action itself: a slow CAD gets this long.
ROSTER_BUDGET_S = 2.5

API_ID_ACCOUNT_PREFIX = "api-id:"

ACCOUNT_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


def is_uuid(text: str) -> bool:
    """True for the 8-4-4-4-12 hex form the CAD uses for account UUIDs and account secrets."""
    return ACCOUNT_UUID.fullmatch(text.strip()) is not None


def api_id_account_key(api_id: str) -> str:
    """The stand-in account key for a link that only knows the member's API ID."""
    return API_ID_ACCOUNT_PREFIX + api_id


def known_account_uuid(link: UserLink) -> str | None:
    """The linked CAD account UUID, or None when the link only knows an API ID."""
    if link.account_uuid.startswith(API_ID_ACCOUNT_PREFIX):
        return None
    return link.account_uuid


@dataclass(frozen=True, slots=True)
class UnitTarget:
    """Exactly one of ``account`` / ``api_id`` / ``discord_id``: how CAD requests name this member."""

    account: str | None = None
    api_id: str | None = None
    discord_id: str | None = None

    @property
    def member(self) -> MemberTarget:
        """The member as CAD requests name them (``accountUuid``, ``apiId`` or ``discord``)."""
        if self.account:
            return MemberTarget.account(self.account)
        if self.api_id:
            return MemberTarget.api(self.api_id)
        if self.discord_id:
            return MemberTarget.discord(self.discord_id)
        raise ValueError("a unit target names the member one way")

    def owns(self, unit: Unit, account_uuid: str | None = None) -> bool:
        """Whether ``unit`` (from the units on duty) is this member's; ``account_uuid`` is the account the
        CAD reported for a member named by Discord ID."""
        account = self.account or account_uuid
        if account:
            return unit.acc_id.strip().lower() == account.lower()
        return bool(self.api_id) and self.api_id in unit.api_ids


def unit_target(link: UserLink) -> UnitTarget:
    """Target by account UUID when known (unambiguous); otherwise by the API ID the member proved."""
    account = known_account_uuid(link)
    if account is not None:
        return UnitTarget(account=account)
    if link.api_id:
        return UnitTarget(api_id=link.api_id)
    # A stand-in key without its API ID cannot come from /link; recover the ID from the key itself.
    return UnitTarget(api_id=link.account_uuid.removeprefix(API_ID_ACCOUNT_PREFIX))


def member_target(cad: CadApi, link: UserLink | None, user_id: int) -> UnitTarget:
    """How CAD requests name a member: their stored link, else (v2) their Discord user ID. ``NotLinkedError``
    on v1 for a member without a link (v1 cannot address a Discord user)."""
    if link is not None:
        return unit_target(link)
    if cad.api_version >= 2:
        return UnitTarget(discord_id=str(user_id))
    raise NotLinkedError()


async def discord_member_linked(
    board: CadBoard, creds: CadCredentials, target: UnitTarget, *, budget_s: float = ROSTER_BUDGET_S
) -> bool | None:
    """For a member named by Discord ID: True/False when the CAD says whether their Discord account is linked
    (cached by the board), None when it can't say within ``budget_s``. True for any other target."""
    if target.discord_id is None:
        return True
    try:
        async with asyncio.timeout(budget_s):
            account = await board.discord_account(creds, target.discord_id)
    except (CadError, TimeoutError) as exc:
        log.info(
            "could not read a member's CAD account in community %s: %s",
            creds.community_id,
            type(exc).__name__,
        )
        return None
    return account is not None


async def units_on_duty(
    cad: CadApi,
    board: CadBoard,
    creds: CadCredentials,
    target: UnitTarget,
    *,
    read_plan: bool = False,
    budget_s: float = ROSTER_BUDGET_S,
) -> list[Unit] | None:
    """The target's units on duty (``[]``: none), from the shared board; a list older than
    :data:`RECHECK_AFTER_S` that lacks them is read once more. None when that can't be known now: the plan
    can't list units, the CAD is in trouble, or it gave no answer within ``budget_s``. ``read_plan`` reads an
    unknown plan first (one shared request) instead of trying the list blind."""
    try:
        async with asyncio.timeout(budget_s):
            if read_plan:
                await cad.get_tier(creds)
            if cad.explain_refusal(creds, "GET_ACTIVE_UNITS") is not None:
                return None
            account_uuid = None
            if target.discord_id is not None:
                account = await board.discord_account(creds, target.discord_id)
                if account is None:
                    return None  # the CAD knows no account for them: the action itself will say so
                account_uuid = account.uuid
            units, age_s = await board.active_units(creds)
            mine = [unit for unit in units if target.owns(unit, account_uuid)]
            if not mine and age_s >= RECHECK_AFTER_S:
                board.invalidate_units(creds.community_id, creds.server_id)
                units, _ = await board.active_units(creds)
                mine = [unit for unit in units if target.owns(unit, account_uuid)]
    except (CadError, TimeoutError) as exc:
        log.info("could not list units on duty for community %s: %s", creds.community_id, type(exc).__name__)
        return None
    return mine
