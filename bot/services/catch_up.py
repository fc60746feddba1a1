"""After a websocket gap: bring the live cards of open calls up to date from the CAD (events sent meanwhile are gone).

The hub does not replay what it sent while the session was down (the CAD falls back to HTTP, which a websocket
guild may not listen on). So once a session is back, each of its guilds' open cards is compared with one fresh
``GET calls`` read through the shared board (one request per community and server, within the CAD's limit,
which the board and the client's budgets enforce): a dispatch card takes the call as the CAD lists it now (its
bodycam indicators kept: GET calls does not carry them), a dispatch call no longer listed is shown closed, and a
911 card whose call is no longer open is shown removed. Cards that did not change are not edited.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from bot.cad.board import CadBoard
from bot.cad.models import CadCredentials, DispatchCall
from bot.cards.state import (
    CardKind,
    DispatchCardState,
    Emergency911CardState,
    closed,
    dispatch_state_from_call,
    removed_911,
)
from bot.push.pipeline import PushPipeline

log = logging.getLogger(__name__)


async def refresh_open_cards(
    board: CadBoard, pipeline: PushPipeline, creds: CadCredentials, guild_ids: Sequence[int]
) -> int:
    """Refresh the open cards of ``guild_ids`` (all on ``creds``' community and server) from one fresh read of
    the CAD's calls; returns how many cards were looked at. ``CadError`` when the CAD can't list its calls."""
    board.invalidate_calls(creds.community_id, creds.server_id)
    snapshot, _ = await board.calls(creds)
    active = {call.call_id: call for call in snapshot.active_calls if not call.is_closed}
    open_911 = {call.call_id for call in snapshot.emergency_calls}
    looked_at = 0
    for guild_id in guild_ids:
        for state in await pipeline.open_card_states(guild_id, CardKind.DISPATCH):
            if isinstance(state, DispatchCardState):
                looked_at += 1
                await pipeline.update_card(
                    guild_id, CardKind.DISPATCH, state.call_id, _as_listed(active.get(state.call_id))
                )
        for state in await pipeline.open_card_states(guild_id, CardKind.EMERGENCY_911):
            if isinstance(state, Emergency911CardState) and state.call_id not in open_911:
                looked_at += 1
                await pipeline.update_card(guild_id, CardKind.EMERGENCY_911, state.call_id, _removed)
    log.info("refreshed %d open card(s) of community %s after a websocket gap", looked_at, creds.community_id)
    return looked_at


DispatchReducer = Callable[[DispatchCardState | None], DispatchCardState | None]


def _as_listed(call: DispatchCall | None) -> DispatchReducer:
    def reducer(state: DispatchCardState | None) -> DispatchCardState | None:
        if state is None:
            return None  # never start a card here: only cards the guild already shows are refreshed
        if call is None:
            return closed(state)
        fresh = dispatch_state_from_call(call)
        return fresh.model_copy(update={"bodycam": state.bodycam})

    return reducer


def _removed(state: Emergency911CardState | None) -> Emergency911CardState | None:
    return removed_911(state) if state is not None else None
