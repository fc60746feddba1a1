"""Plan refusals that name the plan ("Blips need Sonoran CAD Pro; this community is on Plus.").

Before a call, the cached plan (no request) refuses what cannot work. When the plan was not cached and the CAD
answers ``... IS NOT ENABLED FOR THIS COMMUNITY``, the plan is read once (``GET_VERSION``, then cached) to tell
"your plan is too low" apart from "the API is switched off"; later attempts are refused before calling.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.cad.errors import CadError, CadNotEnabledError
from bot.cad.interface import CadApi
from bot.cad.models import CadCredentials

log = logging.getLogger(__name__)


def refuse_if_plan_too_low(cad: CadApi, creds: CadCredentials, request_type: str) -> None:
    """Raise ``CadPlanError`` when the cached plan is known to be too low; never touches the network."""
    refusal = cad.explain_refusal(creds, request_type)
    if refusal is not None:
        raise refusal


async def explain_not_enabled(cad: CadApi, creds: CadCredentials, error: CadNotEnabledError) -> CadError:
    """The plan refusal behind ``error`` when the (freshly read) plan is too low, else ``error`` itself."""
    if error.request_type is None:
        return error
    # The CAD just contradicted or filled in what we knew about the plan, so read it again.
    cad.invalidate_tier(creds.community_id)
    try:
        await cad.get_tier(creds)
    except CadError as tier_error:
        log.debug("could not read the plan of community %s: %s", creds.community_id, tier_error)
        return error
    return cad.explain_refusal(creds, error.request_type) or error


@asynccontextmanager
async def plan_explained(cad: CadApi, creds: CadCredentials) -> AsyncIterator[None]:
    """``async with plan_explained(cad, creds): await cad.get_blips(creds)`` turns "not enabled" into the
    plan sentence when the plan is the reason."""
    try:
        yield
    except CadNotEnabledError as error:
        explained = await explain_not_enabled(cad, creds, error)
        if explained is error:
            raise
        raise explained from error
