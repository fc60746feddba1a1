"""Push events over Sonoran's websocket, through the real pipeline, into the Discord REST fake.

The loopback hub (``testing/signalr_hub.py``) plays Sonoran's hub; the bot's sessions come from the real registry
(``HubSessions``) reconciled with the real SQLite file; events go through the same ingest, inbox, routing, cards
and delivery as HTTP POSTs, and the Discord fake shows what was posted.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pydantic import SecretStr

from bot.cad.board import CadBoard
from bot.cad.client import CadClient
from bot.cad.models import CadCredentials
from bot.cad.tiers import Tier
from bot.push.discord_sender import DiscordPySender
from bot.push.hub_client import HubAuthenticated
from bot.push.hub_sessions import HubSessions, SessionKey, normalise_hub_url
from bot.push.pipeline import PushPipeline
from bot.push.routing import category_for
from bot.services.catch_up import refresh_open_cards
from bot.storage.models import Category, PushTransport
from testing.cad_simulator import CadSimulator
from testing.signalr_hub import FakeSignalRHub
from tests.formatting.samples import SAMPLE_ENVELOPES
from tests.hub.conftest import FAST_TIMING
from tests.push.conftest import (
    API_KEY,
    COMMUNITY_ID,
    FAST_DELIVERY,
    GUILD_A,
    GUILD_B,
    GUILD_OTHER,
    OTHER_KEY,
    PushWorld,
    channel_of,
    envelope,
)
from tests.push.test_event_types import _comparable, _expected_embed

UNIT_STATUS = {"units": [{"id": 7, "status": 3, "data": {"unitNum": "1A-12", "name": "Jordan Reyes"}}]}


@pytest.fixture
async def hub() -> AsyncIterator[FakeSignalRHub]:
    async with FakeSignalRHub(keepalive_s=0.05, client_timeout_s=5.0) as fake:
        fake.add_community(COMMUNITY_ID, API_KEY, server_ids=(1, 2))
        yield fake


async def use_websocket(world: PushWorld, *guild_ids: int) -> None:
    for guild_id in guild_ids:
        await world.storage.guilds.set_push_transport(guild_id, PushTransport.WEBSOCKET)


async def attach_hub(
    world: PushWorld, hub: FakeSignalRHub, *, until_authenticated: bool = True, **options: Any
) -> HubSessions:
    sessions = HubSessions(
        world.storage,
        world.pipeline.ingest,
        world.session,
        hub.hub_url,
        metrics=world.pipeline.metrics,
        timing=FAST_TIMING,
        reconcile_every_s=3600,
        **options,
    )
    world.pipeline.attach_hub(sessions)
    await sessions.start()
    if until_authenticated:
        await wait_until(lambda: all(s.status().authenticated for _, s in sessions.sessions()))
    return sessions


async def wait_until(predicate: Callable[[], bool], within_s: float = 10.0) -> None:
    async with asyncio.timeout(within_s):
        while not predicate():
            await asyncio.sleep(0.01)


def embeds_in(world: PushWorld, guild_id: int, category: Category) -> list[dict[str, Any]]:
    return [
        embed for message in world.fake.messages(channel_of(guild_id, category)) for embed in message.embeds
    ]


async def push_and_settle(
    world: PushWorld, hub: FakeSignalRHub, body: dict[str, Any], **options: Any
) -> None:
    before = world.pipeline.hub.sessions()[0][1].counters.events_received if world.pipeline.hub else 0
    outcome = await hub.push(COMMUNITY_ID, 1, body, **options)
    assert outcome.delivered_to, outcome
    await wait_until(lambda: world.pipeline.hub.sessions()[0][1].counters.events_received > before)  # type: ignore[union-attr]
    await world.settle()


# ---------------------------------------------------------------------------------------------- delivery


@pytest.mark.parametrize("type_", list(SAMPLE_ENVELOPES))
async def test_every_event_type_arrives_over_the_hub_with_no_listener_port(
    push_world: PushWorld, hub: FakeSignalRHub, type_: str
) -> None:
    # The pipeline of a bot whose [server] enabled = false: no listener at all.
    await push_world.pipeline.stop()
    push_world.pipeline = PushPipeline(
        push_world.storage, DiscordPySender(push_world.http), delivery=FAST_DELIVERY
    )
    await push_world.pipeline.start()
    assert push_world.pipeline.server is None
    await use_websocket(push_world, GUILD_A)
    await attach_hub(push_world, hub)

    await push_and_settle(push_world, hub, {**SAMPLE_ENVELOPES[type_], "key": API_KEY})

    category = category_for(type_)
    [embed] = embeds_in(push_world, GUILD_A, category)
    assert _comparable(embed) == _comparable(_expected_embed(type_))


@pytest.mark.parametrize("as_string", [False, True], ids=["object", "json-string"])
async def test_a_push_event_as_object_or_json_string_is_delivered(
    push_world: PushWorld, hub: FakeSignalRHub, as_string: bool
) -> None:
    await use_websocket(push_world, GUILD_A)
    await attach_hub(push_world, hub)

    await push_and_settle(push_world, hub, envelope("EVENT_UNIT_STATUS", UNIT_STATUS), as_string=as_string)

    [embed] = embeds_in(push_world, GUILD_A, Category.UNITS)
    assert "1A-12" in str(embed)


async def test_a_wrong_key_inside_a_push_event_posts_nothing(
    push_world: PushWorld, hub: FakeSignalRHub
) -> None:
    await use_websocket(push_world, GUILD_A)
    await attach_hub(push_world, hub)

    await push_and_settle(push_world, hub, envelope("EVENT_UNIT_STATUS", UNIT_STATUS, key="not-the-key"))
    await push_and_settle(push_world, hub, envelope("EVENT_UNIT_STATUS", UNIT_STATUS, key=OTHER_KEY))

    for category in Category:
        assert embeds_in(push_world, GUILD_A, category) == []
    assert await push_world.pipeline.store.inbox.depth() == 0
    assert push_world.pipeline.metrics.auth_failures._value.get() == 2


async def test_two_guilds_on_one_community_and_server_share_one_session(
    push_world: PushWorld, hub: FakeSignalRHub
) -> None:
    await push_world.storage.guilds.set_cad(GUILD_B, COMMUNITY_ID, API_KEY, 1)
    await use_websocket(push_world, GUILD_A, GUILD_B)
    sessions = await attach_hub(push_world, hub)

    assert len(sessions.sessions()) == 1
    assert len(hub.sessions_for(COMMUNITY_ID, 1)) == 1
    await push_and_settle(push_world, hub, envelope("EVENT_UNIT_STATUS", UNIT_STATUS))

    assert len(embeds_in(push_world, GUILD_A, Category.UNITS)) == 1
    assert len(embeds_in(push_world, GUILD_B, Category.UNITS)) == 1
    state = sessions.guild_state(GUILD_B)
    assert state is not None and state.guilds_sharing == 2


async def test_the_session_opens_with_the_first_guild_and_closes_with_the_last(
    push_world: PushWorld, hub: FakeSignalRHub
) -> None:
    sessions = await attach_hub(push_world, hub)
    assert sessions.sessions() == [] and hub.live == []

    await use_websocket(push_world, GUILD_A)
    await sessions.reconcile()
    await wait_until(lambda: len(hub.sessions_for(COMMUNITY_ID, 1)) == 1)
    [connection] = hub.sessions_for(COMMUNITY_ID, 1)

    await push_world.storage.guilds.set_push_transport(GUILD_A, PushTransport.HTTP)
    await sessions.reconcile()

    assert sessions.sessions() == []
    await wait_until(lambda: connection.closed)
    assert connection.closed_by == "client" and connection.close_code == 1000


async def test_a_dropped_connection_reconnects_reauthenticates_and_the_next_event_arrives(
    push_world: PushWorld, hub: FakeSignalRHub
) -> None:
    await use_websocket(push_world, GUILD_A)
    sessions = await attach_hub(push_world, hub)
    [first] = hub.sessions_for(COMMUNITY_ID, 1)

    await hub.close_connection(first, "kill")
    await wait_until(
        lambda: [c for c in hub.sessions_for(COMMUNITY_ID, 1) if c is not first and c.authenticated] != []
    )

    await push_and_settle(push_world, hub, envelope("EVENT_UNIT_STATUS", UNIT_STATUS))
    assert len(embeds_in(push_world, GUILD_A, Category.UNITS)) == 1
    [(_, session)] = sessions.sessions()
    assert session.counters.reconnects == 1
    assert [call.success for c in hub.connections for call in c.auth_calls] == [True, True]


async def test_a_refused_authentication_backs_off_and_is_shown(
    push_world: PushWorld, hub: FakeSignalRHub
) -> None:
    await use_websocket(push_world, GUILD_A)
    hub.refuse_auth(count=None)
    slept: list[float] = []

    async def no_wait(delay: float) -> None:  # the backoff is recorded, not waited out
        slept.append(delay)
        await asyncio.sleep(0.01)

    def factory(*args: Any, **kwargs: Any) -> Any:
        from bot.push.hub_client import HubSession

        return HubSession(*args, sleep=no_wait, **kwargs)

    sessions = await attach_hub(push_world, hub, session_factory=factory, until_authenticated=False)
    [(_, session)] = sessions.sessions()
    await wait_until(lambda: session.counters.auth_failures >= 3)

    assert slept[:3] == [2.0, 10.0, 30.0]  # never retried faster than the backoff
    status = session.status()
    assert not status.authenticated and status.last_error is not None
    assert API_KEY not in status.last_error
    sessions.export_metrics()
    assert push_world.pipeline.metrics.hub_auth_failures._value.get() >= 3


async def test_a_stalled_hub_is_detected_and_replaced(push_world: PushWorld, hub: FakeSignalRHub) -> None:
    await use_websocket(push_world, GUILD_A)
    await attach_hub(push_world, hub)
    [stalled] = hub.sessions_for(COMMUNITY_ID, 1)

    hub.stall(stalled)  # no pings, no events: only the client's server timeout (2 s here) can tell
    await wait_until(lambda: any(c is not stalled and c.authenticated for c in hub.live), within_s=15)

    await push_and_settle(push_world, hub, envelope("EVENT_UNIT_STATUS", UNIT_STATUS))
    assert len(embeds_in(push_world, GUILD_A, Category.UNITS)) == 1


async def test_a_websocket_guild_and_an_http_guild_in_one_process_both_work(
    push_world: PushWorld, hub: FakeSignalRHub
) -> None:
    await use_websocket(push_world, GUILD_A)
    await attach_hub(push_world, hub)

    await push_and_settle(push_world, hub, envelope("EVENT_UNIT_STATUS", UNIT_STATUS))
    status, answer, _ = await push_world.post(envelope("EVENT_UNIT_STATUS", UNIT_STATUS, key=OTHER_KEY))
    assert (status, answer["status"]) == (200, "accepted")
    await push_world.settle()

    assert len(embeds_in(push_world, GUILD_A, Category.UNITS)) == 1
    assert len(embeds_in(push_world, GUILD_OTHER, Category.UNITS)) == 1


async def test_shutdown_closes_the_session_cleanly(push_world: PushWorld, hub: FakeSignalRHub) -> None:
    await use_websocket(push_world, GUILD_A)
    await attach_hub(push_world, hub)
    [connection] = hub.sessions_for(COMMUNITY_ID, 1)

    await push_world.pipeline.stop()

    await wait_until(lambda: connection.closed)
    assert connection.closed_by == "client" and connection.close_code == 1000
    assert hub.live == []


# ---------------------------------------------------------------------------------------------- both transports


async def test_the_same_event_over_both_transports_posts_once(
    push_world: PushWorld, hub: FakeSignalRHub
) -> None:
    await use_websocket(push_world, GUILD_A)
    await attach_hub(push_world, hub)
    event = envelope("EVENT_UNIT_STATUS", UNIT_STATUS)

    await push_and_settle(push_world, hub, event)
    status, answer, _ = await push_world.post(event)  # FiveM forwarding the same event

    assert (status, answer["status"]) == (200, "duplicate")
    await push_world.settle()
    assert len(embeds_in(push_world, GUILD_A, Category.UNITS)) == 1


async def test_two_identical_events_over_one_transport_both_post(
    push_world: PushWorld, hub: FakeSignalRHub
) -> None:
    await use_websocket(push_world, GUILD_A)
    await attach_hub(push_world, hub)
    event = envelope("EVENT_UNIT_STATUS", UNIT_STATUS)

    await push_and_settle(push_world, hub, event)
    await push_and_settle(push_world, hub, event)
    # ... and each has its forwarded copy: both copies are recognised, a third HTTP arrival is not a copy.
    answers = [(await push_world.post(event))[1]["status"] for _ in range(3)]

    assert answers == ["duplicate", "duplicate", "accepted"]
    await push_world.settle()
    assert len(embeds_in(push_world, GUILD_A, Category.UNITS)) == 3


# ---------------------------------------------------------------------------------------------- health, catch-up


async def test_healthz_names_a_websocket_session_that_is_down(
    push_world: PushWorld, hub: FakeSignalRHub
) -> None:
    await use_websocket(push_world, GUILD_A)
    sessions = await attach_hub(push_world, hub)
    status, _ = await push_world.get("/healthz")
    assert status == 200

    await hub.stop()  # the hub goes away; the session keeps retrying
    [(_, session)] = sessions.sessions()
    await wait_until(lambda: not session.status().authenticated)
    status, body = await push_world.get("/healthz")

    assert status == 503
    assert f"community {COMMUNITY_ID}, server 1" in body


async def test_after_a_gap_open_cards_are_refreshed_from_the_cad(
    push_world: PushWorld, hub: FakeSignalRHub
) -> None:
    async with CadSimulator() as sim:
        community = sim.add_community(COMMUNITY_ID, API_KEY, Tier.PRO)
        call = community.add_dispatch(title="Shots fired", address="Grove St")
        board = CadBoard(CadClient(push_world.session, base_url=sim.base_url, rate_per_s=100, burst=100))
        caught_up: list[HubAuthenticated] = []

        async def catch_up(creds: CadCredentials, guild_ids: tuple[int, ...], info: HubAuthenticated) -> None:
            caught_up.append(info)
            await refresh_open_cards(board, push_world.pipeline, creds, guild_ids)

        await use_websocket(push_world, GUILD_A)
        await attach_hub(push_world, hub, on_catch_up=catch_up)
        new_call = {"dispatch": {"callId": call.call_id, "title": "Shots fired", "address": "Grove St"}}
        await push_and_settle(push_world, hub, envelope("EVENT_DISPATCH_NEW", new_call))
        [card] = push_world.fake.messages(channel_of(GUILD_A, Category.DISPATCH))

        # While the session is down the call moves on in the CAD (its events would be lost).
        [connection] = hub.sessions_for(COMMUNITY_ID, 1)
        community.dispatches[call.call_id].address = "Forum Drive"
        await hub.close_connection(connection, "kill")
        await wait_until(lambda: caught_up != [])
        await push_world.settle()

        assert caught_up[0].gap_s is not None
        [edited] = push_world.fake.messages(channel_of(GUILD_A, Category.DISPATCH))  # edited in place
        assert edited.id == card.id
        assert "Forum Drive" in str(edited.embeds[0])
        await board.close()


def test_hub_urls_are_normalised_so_one_hub_has_one_session() -> None:
    assert normalise_hub_url("HTTPS://API.SonoranCAD.com/apiWsHub/") == "https://api.sonorancad.com/apiWsHub"
    creds = CadCredentials(community_id=COMMUNITY_ID, api_key=SecretStr(API_KEY), server_id=1)
    assert SessionKey.of("https://api.sonorancad.com/apiWsHub", creds) == SessionKey.of(
        "https://api.sonorancad.com:443/apiWsHub/", creds
    )
    assert API_KEY not in repr(SessionKey.of("https://x/apiWsHub", creds))


async def test_an_event_storage_refused_is_tried_again_and_nothing_behind_it_is_lost(
    push_world: PushWorld, hub: FakeSignalRHub
) -> None:
    """Over HTTP a 503 makes the sender try again; the hub never does, so the bot holds the event and retries."""
    await use_websocket(push_world, GUILD_A)
    sessions = await attach_hub(push_world, hub, storage_retry_s=(0.05,) * 100)
    await push_and_settle(push_world, hub, envelope("EVENT_UNIT_STATUS", UNIT_STATUS))  # start-up writes done
    conn = push_world.storage.db.conn
    await conn.execute("PRAGMA query_only = 1")  # every write now fails: a read-only database
    [(_, session)] = sessions.sessions()
    received = session.counters.events_received

    for number in (8, 9):
        second = {
            "units": [{"id": number, "status": 2, "data": {"unitNum": f"2B-0{number}", "name": "Maya Patel"}}]
        }
        await hub.push(COMMUNITY_ID, 1, envelope("EVENT_UNIT_STATUS", second))
    await wait_until(lambda: session.counters.events_received > received)
    await asyncio.sleep(0.3)  # several refused attempts
    assert push_world.storage.db.writes.failing
    await conn.execute("PRAGMA query_only = 0")
    await wait_until(lambda: session.counters.events_received == received + 2)
    await push_world.settle()

    shown = [str(embed) for embed in embeds_in(push_world, GUILD_A, Category.UNITS)]
    assert len(shown) == 3 and "2B-08" in shown[1] and "2B-09" in shown[2]  # both, in order
