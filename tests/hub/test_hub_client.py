"""The bot's SignalR push client against the loopback hub: connect, authenticate, receive, survive, stop."""

from __future__ import annotations

import asyncio
import logging
import random
import socket

import pytest

from bot.push.hub_client import HubInvocationError, HubSessionKey, HubTiming
from testing.signalr_hub import RS, FakeSignalRHub, HubConnection
from tests.hub.conftest import (
    API_KEY,
    COMMUNITY_ID,
    FAST_TIMING,
    OTHER_SERVER_ID,
    SERVER_ID,
    Hooks,
    Inbox,
    ScriptedSleep,
    SessionFactory,
    credentials,
    envelope,
)


async def authenticated(
    hub: FakeSignalRHub, server_id: int = SERVER_ID, *, not_: object = None
) -> HubConnection:
    """The hub's authenticated connection for the community + server (another one than ``not_``)."""
    await hub.wait_for(lambda: any(c is not not_ for c in hub.sessions_for(COMMUNITY_ID, server_id)))
    return next(c for c in hub.sessions_for(COMMUNITY_ID, server_id) if c is not not_)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ------------------------------------------------------------------------------ connect and authenticate


async def test_session_negotiates_handshakes_authenticates_and_pings(
    hub: FakeSignalRHub, start_session: SessionFactory
) -> None:
    hooks = Hooks()
    session = await start_session(hub.hub_url, on_authenticated=hooks)
    connection = await authenticated(hub)

    assert connection.negotiate_version == 1  # negotiated, and upgraded with the single-use token
    assert hub.counters.negotiations == 1 and hub.counters.upgrades_refused == 0
    [call] = connection.auth_calls
    assert (call.method, call.community_id, call.server_id, call.arity) == (
        "authenticatev2",
        COMMUNITY_ID,
        1,
        3,
    )
    [info] = await hooks.wait_count(1)
    assert info.first and info.gap_s is None

    # Both sides keep the connection alive: the client pings when idle, and hears the hub's pings.
    frames_before = session.counters.frames_received
    await hub.wait_for(lambda: connection.pings_received >= 2)
    await hub.wait_for(lambda: session.counters.frames_received >= frames_before + 2)
    assert session.counters.pings_sent >= 2

    status = session.status()
    assert status.running and status.connected and status.authenticated
    assert status.connected_since is not None and status.authenticated_since is not None
    assert status.reconnects == 0 and status.last_error is None and status.down_since is None
    assert session.counters.connects == 1 and session.counters.auth_attempts == 1


async def test_session_without_negotiation_opens_the_hub_url_directly(
    hub: FakeSignalRHub, start_session: SessionFactory
) -> None:
    inbox = Inbox()
    timing = HubTiming(**{**FAST_TIMING.__dict__, "negotiate": False})
    await start_session(hub.hub_url, on_event=inbox, timing=timing)
    connection = await authenticated(hub)

    assert connection.negotiate_version is None and hub.counters.negotiations == 0
    await hub.push(COMMUNITY_ID, SERVER_ID, envelope())
    assert len(await inbox.wait_count(1)) == 1


async def test_session_uses_the_connection_id_when_the_hub_negotiates_version_0(
    start_session: SessionFactory,
) -> None:
    async with FakeSignalRHub(keepalive_s=0.05, max_negotiate_version=0) as old_hub:
        old_hub.add_community(COMMUNITY_ID, API_KEY)
        await start_session(old_hub.hub_url)
        connection = await authenticated(old_hub)
        assert connection.negotiate_version == 0 and old_hub.counters.upgrades_refused == 0


# ----------------------------------------------------------------------------------------------- events


async def test_events_sent_as_object_and_as_json_string_both_reach_the_callback(
    hub: FakeSignalRHub, start_session: SessionFactory
) -> None:
    inbox = Inbox()
    session = await start_session(hub.hub_url, on_event=inbox)
    await authenticated(hub)
    first = envelope("EVENT_911", {"call": {"callId": 7, "description": "Car fire 🔥"}})
    second = envelope("EVENT_UNIT_STATUS", {"units": [{"identId": 3, "status": 2}]})

    await hub.push(COMMUNITY_ID, SERVER_ID, first, as_string=False)
    await hub.push(COMMUNITY_ID, SERVER_ID, second, as_string=True)

    assert await inbox.wait_count(2) == [first, second]
    assert session.counters.events_received == 2
    assert session.status().last_event_at is not None


@pytest.mark.parametrize("target", ["pushEvent", "pushevent", "PushEvent"])
async def test_push_event_target_is_matched_whatever_its_casing(
    hub: FakeSignalRHub, start_session: SessionFactory, target: str
) -> None:
    inbox = Inbox()
    await start_session(hub.hub_url, on_event=inbox)
    connection = await authenticated(hub)
    message = f'{{"type":1,"target":"{target}","arguments":[{{"key":"k","type":"EVENT_TONE","data":{{}}}}]}}'

    await hub.send_raw(connection, message + RS)

    assert (await inbox.wait_count(1))[0]["type"] == "EVENT_TONE"


@pytest.mark.parametrize("as_string", [False, True], ids=["object", "string"])
async def test_a_lone_surrogate_is_replaced_and_the_session_stays(
    hub: FakeSignalRHub, start_session: SessionFactory, as_string: bool
) -> None:
    inbox = Inbox()
    session = await start_session(hub.hub_url, on_event=inbox)
    connection = await authenticated(hub)
    # The hub writes the broken text as the escape "\ud83d", as ASP.NET's encoder does.
    broken = envelope("EVENT_911", {"call": {"description": "Help \ud83d now"}})

    await hub.push(COMMUNITY_ID, SERVER_ID, broken, as_string=as_string)
    await hub.push(COMMUNITY_ID, SERVER_ID, envelope())

    got = await inbox.wait_count(2)
    assert got[0]["data"]["call"]["description"] == "Help \ufffd now"
    assert got[1] == envelope()
    assert session.counters.messages_repaired == 1
    assert not connection.closed and hub.counters.upgrades == 1


async def test_undecodable_frames_and_payloads_are_counted_and_skipped(
    hub: FakeSignalRHub, start_session: SessionFactory
) -> None:
    inbox = Inbox()
    session = await start_session(hub.hub_url, on_event=inbox)
    connection = await authenticated(hub)

    await hub.send_raw(connection, "this is not json" + RS)
    await hub.send_raw(connection, '{"no":"type"}' + RS)
    await hub.send_raw(connection, '["a list"]' + RS)
    await hub.send_raw(connection, '{"type":1,"target":"pushEvent","arguments":[42]}' + RS)
    await hub.send_raw(connection, '{"type":1,"target":"pushEvent","arguments":["{broken json"]}' + RS)
    await hub.send_raw(connection, '{"type":1,"target":"pushEvent","arguments":[]}' + RS)
    await hub.push(COMMUNITY_ID, SERVER_ID, envelope())

    assert await inbox.wait_count(1) == [envelope()]
    assert session.counters.messages_undecodable == 3
    assert session.counters.events_invalid == 3
    assert not connection.closed and hub.counters.upgrades == 1
    assert session.status().authenticated


async def test_batched_and_split_frames_are_reassembled_in_order(
    hub: FakeSignalRHub, start_session: SessionFactory
) -> None:
    inbox = Inbox()
    await start_session(hub.hub_url, on_event=inbox)
    connection = await authenticated(hub)

    def push_message(n: int) -> str:
        return (
            f'{{"type":1,"target":"pushEvent","arguments":[{{"key":"k","type":"EVENT_{n}","data":{{}}}}]}}'
            + RS
        )

    await hub.send_raw(connection, push_message(1) + '{"type":6}' + RS + push_message(2))
    third = push_message(3)
    await hub.send_raw(connection, third[:25])
    await hub.send_raw(connection, third[25:])

    got = await inbox.wait_count(3)
    assert [e["type"] for e in got] == ["EVENT_1", "EVENT_2", "EVENT_3"]


async def test_a_server_invocation_with_an_id_gets_a_completion(
    hub: FakeSignalRHub, start_session: SessionFactory
) -> None:
    inbox = Inbox()
    await start_session(hub.hub_url, on_event=inbox)
    connection = await authenticated(hub)

    await hub.push(COMMUNITY_ID, SERVER_ID, envelope(), invocation_id="srv-1")
    await hub.send_raw(
        connection, '{"type":1,"invocationId":"srv-2","target":"somethingElse","arguments":[]}' + RS
    )

    await hub.wait_for(lambda: {"srv-1", "srv-2"} <= connection.client_completions.keys())
    assert connection.client_completions["srv-1"] == {"type": 3, "invocationId": "srv-1", "result": None}
    assert connection.client_completions["srv-2"] == {
        "type": 3,
        "invocationId": "srv-2",
        "error": "Client didn't provide a result.",
    }
    assert len(inbox.envelopes) == 1


async def test_a_failing_callback_does_not_drop_the_session(
    hub: FakeSignalRHub, start_session: SessionFactory
) -> None:
    inbox = Inbox()
    inbox.fail_next = 1
    session = await start_session(hub.hub_url, on_event=inbox)
    connection = await authenticated(hub)

    await hub.push(COMMUNITY_ID, SERVER_ID, envelope("EVENT_911"))
    await hub.push(COMMUNITY_ID, SERVER_ID, envelope("EVENT_TONE"))

    assert [e["type"] for e in await inbox.wait_count(2)] == ["EVENT_911", "EVENT_TONE"]
    assert session.counters.callback_errors == 1
    assert not connection.closed


async def test_invoke_returns_results_and_raises_completion_errors(
    hub: FakeSignalRHub, start_session: SessionFactory
) -> None:
    session = await start_session(hub.hub_url)
    await authenticated(hub)
    update = {"communityUserId": "player-1", "location": "Mission Row"}

    assert await session.invoke("unitLocation", [update]) == {"success": True, "error": "", "count": 1}
    with pytest.raises(HubInvocationError, match="Unknown hub method 'noSuchMethod'"):
        await session.invoke("noSuchMethod", 1)


# -------------------------------------------------------------------------------------------- refusals


async def test_refused_authentication_backs_off_on_the_schedule_and_is_reported(
    hub: FakeSignalRHub, start_session: SessionFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hub.refuse_auth(None)
    sleep = ScriptedSleep()
    sleep.hold = True
    hooks = Hooks()
    session = await start_session(hub.hub_url, sleep=sleep, on_authenticated=hooks)

    await sleep.wait_count(1)
    status = session.status()
    assert status.connected and not status.authenticated
    assert status.last_error == "authentication refused: Invalid community ID or API key."
    assert status.consecutive_failures == 1
    for count in (2, 3, 4):
        sleep.release()
        await sleep.wait_count(count)
    hub.accept_auth()
    sleep.release()
    await hooks.wait_count(1)

    # Retried on the same connection, never at once, never faster than the schedule: 2, 10, 30, then 30.
    assert list(session.scheduled_delays) == [("auth", 2.0), ("auth", 10.0), ("auth", 30.0), ("auth", 30.0)]
    assert hub.counters.upgrades == 1 and hub.counters.auth_attempts == 5
    assert session.counters.auth_failures == 4
    status = session.status()
    assert status.authenticated and status.consecutive_failures == 0
    assert status.last_error == "authentication refused: Invalid community ID or API key."  # remembered
    assert API_KEY not in caplog.text


async def test_an_authentication_completion_error_counts_as_a_refusal(
    hub: FakeSignalRHub, start_session: SessionFactory
) -> None:
    hub.refuse_auth(1, form="error")
    hooks = Hooks()
    session = await start_session(hub.hub_url, on_authenticated=hooks)

    await hooks.wait_count(1)
    assert list(session.scheduled_delays) == [("auth", 2.0)]
    assert session.status().last_error == (
        "authentication failed: Failed to invoke 'authenticatev2' due to an error on the server."
    )


async def test_backoff_jitter_only_ever_lengthens_a_delay(
    hub: FakeSignalRHub, start_session: SessionFactory
) -> None:
    hub.refuse_auth(4)
    hooks = Hooks()
    timing = HubTiming(**{**FAST_TIMING.__dict__, "jitter": 0.5})
    session = await start_session(hub.hub_url, timing=timing, on_authenticated=hooks, rng=random.Random(7))

    await hooks.wait_count(1)
    delays = [delay for _, delay in session.scheduled_delays]
    for delay, nominal in zip(delays, (2.0, 10.0, 30.0, 30.0), strict=True):
        assert nominal <= delay <= nominal * 1.5
    assert len(set(delays)) == 4  # jittered, so two 30 s steps do not coincide


async def test_a_wrong_key_is_refused_forever_and_never_leaks(
    hub: FakeSignalRHub, start_session: SessionFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-key-LEAKCHECK-0000"
    sleep = ScriptedSleep()
    session = await start_session(hub.hub_url, creds=credentials(wrong), sleep=sleep)

    await sleep.wait_count(6)
    status = session.status()
    assert not status.authenticated
    assert status.last_error == "authentication refused: Invalid community ID or API key."
    assert [kind for kind, _ in session.scheduled_delays] == ["auth"] * len(session.scheduled_delays)
    [connection] = hub.connections
    tokens = [connection._id_key]
    for text in (caplog.text, repr(session), str(status), repr(session.key), repr(connection)):
        assert wrong not in text
        assert not any(token and token in text for token in tokens)


# ------------------------------------------------------------------------------------ drops and stalls


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("reconnect", "the hub closed the session: Server restarting."),
        ("clean", "the hub closed the session"),
        ("kill", None),
    ],
)
async def test_a_dropped_connection_reconnects_reauthenticates_and_the_next_event_arrives(
    hub: FakeSignalRHub, start_session: SessionFactory, mode: str, error: str | None
) -> None:
    inbox, hooks = Inbox(), Hooks()
    session = await start_session(hub.hub_url, on_event=inbox, on_authenticated=hooks)
    first = await authenticated(hub)
    await hub.push(COMMUNITY_ID, SERVER_ID, envelope("EVENT_911"))
    await inbox.wait_count(1)

    await hub.close_connection(first, mode)  # type: ignore[arg-type]
    second = await authenticated(hub, not_=first)
    await hub.push(COMMUNITY_ID, SERVER_ID, envelope("EVENT_TONE"))

    assert [e["type"] for e in await inbox.wait_count(2)] == ["EVENT_911", "EVENT_TONE"]
    assert first.closed and not second.closed
    assert [c.method for c in second.auth_calls] == ["authenticatev2"]
    assert (
        hub.counters.negotiations == 2 and hub.counters.upgrades_refused == 0
    )  # a fresh id, never the stale one
    assert list(session.scheduled_delays) == [("reconnect", 0.0)]
    status = session.status()
    assert status.reconnects == 1 and session.counters.connects == 2
    if error is not None:
        assert status.last_error == error
    else:
        assert status.last_error is not None
    # The gap is reported to the hook (for the catch-up over HTTP) and in the status.
    first_auth, again = await hooks.wait_count(2)
    assert first_auth.first and not again.first
    assert again.gap_s is not None and again.gap_s >= 0 and again.gap_started_at is not None
    assert status.last_gap_s == again.gap_s and status.last_gap_started_at == again.gap_started_at
    assert status.down_since is None


async def test_the_down_time_is_visible_while_the_session_is_down(
    hub: FakeSignalRHub, start_session: SessionFactory
) -> None:
    sleep = ScriptedSleep()
    sleep.hold = True
    session = await start_session(hub.hub_url, sleep=sleep)
    first = await authenticated(hub)

    await hub.close_connection(first, "kill")
    await sleep.wait_count(1)

    status = session.status()
    assert not status.connected and not status.authenticated
    assert status.down_since is not None and status.last_gap_s is None
    sleep.release()
    await authenticated(hub, not_=first)
    await hub.wait_for(lambda: session.status().last_gap_s is not None)
    assert session.status().down_since is None


async def test_drops_never_exhaust_the_supervisor_and_follow_the_backoff(
    hub: FakeSignalRHub, start_session: SessionFactory
) -> None:
    inbox = Inbox()
    session = await start_session(hub.hub_url, on_event=inbox)
    connection = await authenticated(hub)
    for _ in range(12):  # more than pysignalr's ten retries
        await hub.close_connection(connection, "kill")
        connection = await authenticated(hub, not_=connection)

    await hub.push(COMMUNITY_ID, SERVER_ID, envelope())
    await inbox.wait_count(1)
    assert [delay for _, delay in session.scheduled_delays] == [0.0, 2.0, 10.0] + [30.0] * 9
    assert session.status().reconnects == 12


async def test_the_backoff_starts_again_after_a_stable_session(
    hub: FakeSignalRHub, start_session: SessionFactory
) -> None:
    timing = HubTiming(**{**FAST_TIMING.__dict__, "stable_after_s": 0.0})
    hooks = Hooks()
    session = await start_session(hub.hub_url, timing=timing, on_authenticated=hooks)
    connection = await authenticated(hub)
    for count in range(1, 4):
        await hooks.wait_count(count)  # the client, too, has seen the session authenticated
        await hub.close_connection(connection, "reconnect")
        connection = await authenticated(hub, not_=connection)

    assert [delay for _, delay in session.scheduled_delays] == [0.0, 0.0, 0.0]


async def test_a_stalled_hub_is_detected_by_its_missing_pings_and_replaced(
    hub: FakeSignalRHub, start_session: SessionFactory
) -> None:
    inbox = Inbox()
    timing = HubTiming(**{**FAST_TIMING.__dict__, "server_timeout_s": 0.3})
    session = await start_session(hub.hub_url, on_event=inbox, timing=timing)
    stalled = await authenticated(hub)

    hub.stall(stalled)  # TCP stays up and websocket pings are still answered; SignalR goes silent
    replacement = await authenticated(hub, not_=stalled)
    await hub.wait_for(lambda: stalled.closed)
    await hub.push(COMMUNITY_ID, SERVER_ID, envelope())

    assert await inbox.wait_count(1) == [envelope()]
    assert stalled.closed_by == "client" and not replacement.closed
    assert session.counters.server_timeouts == 1
    assert session.status().last_error == "nothing from the hub for 0.3 s; replacing the connection"


async def test_an_unreachable_hub_is_retried_forever_on_the_schedule(start_session: SessionFactory) -> None:
    port = free_port()
    sleep = ScriptedSleep()
    session = await start_session(f"http://127.0.0.1:{port}/apiWsHub", sleep=sleep)

    await sleep.wait_count(6)
    assert sleep.delays[:6] == [0.0, 2.0, 10.0, 30.0, 30.0, 30.0]
    status = session.status()
    assert status.running and not status.connected
    assert status.last_error is not None and status.last_error.startswith(
        f"cannot connect to 127.0.0.1:{port}"
    )
    assert status.consecutive_failures >= 6 and session.counters.connect_failures >= 6


async def test_a_refused_negotiation_is_reported_and_retried(
    hub: FakeSignalRHub, start_session: SessionFactory
) -> None:
    hub.refuse_negotiation()
    sleep = ScriptedSleep()
    hooks = Hooks()
    session = await start_session(hub.hub_url, sleep=sleep, on_authenticated=hooks)

    await sleep.wait_count(2)
    assert session.status().last_error == "negotiation refused: This connection is not allowed."
    hub.refuse_negotiation(None)
    await hooks.wait_count(1)
    assert hub.counters.upgrades == 1


# -------------------------------------------------------------------------------------------- shutdown


async def test_stop_closes_the_websocket_cleanly_and_leaves_nothing_running(
    hub: FakeSignalRHub, start_session: SessionFactory
) -> None:
    def client_tasks() -> list[asyncio.Task[object]]:
        return [
            task
            for task in asyncio.all_tasks()
            if not task.done()
            and getattr(getattr(task.get_coro(), "cr_code", None), "co_filename", "").endswith(
                "/bot/push/hub_client.py"
            )
        ]

    session = await start_session(hub.hub_url, on_authenticated=Hooks())
    connection = await authenticated(hub)
    assert client_tasks()  # the supervisor, the keep-alive loop

    await session.stop()

    await hub.wait_for(lambda: connection.closed)
    assert connection.closed_by == "client" and connection.close_code == 1000
    assert hub.sessions_for(COMMUNITY_ID, SERVER_ID) == [] and hub.live == []
    assert not session.running
    assert not session.status().connected and not session.status().authenticated
    assert client_tasks() == []


async def test_stop_during_a_backoff_returns_at_once(start_session: SessionFactory) -> None:
    sleep = ScriptedSleep()
    sleep.hold = True
    session = await start_session(f"http://127.0.0.1:{free_port()}/apiWsHub", sleep=sleep)
    await sleep.wait_count(1)

    await session.stop()

    assert not session.running


async def test_sessions_for_two_server_ids_are_separate(
    hub: FakeSignalRHub, start_session: SessionFactory
) -> None:
    one, two = Inbox(), Inbox()
    await start_session(hub.hub_url, on_event=one)
    await start_session(hub.hub_url, on_event=two, creds=credentials(server_id=OTHER_SERVER_ID))
    await authenticated(hub)
    await authenticated(hub, OTHER_SERVER_ID)

    await hub.push(COMMUNITY_ID, OTHER_SERVER_ID, envelope("EVENT_TONE"))
    await hub.push(COMMUNITY_ID, SERVER_ID, envelope("EVENT_911"))

    assert [e["type"] for e in await one.wait_count(1)] == ["EVENT_911"]
    assert [e["type"] for e in await two.wait_count(1)] == ["EVENT_TONE"]


def test_a_session_key_compares_the_api_key_without_showing_it() -> None:
    url = "https://api.sonorancad.com/apiWsHub"

    def key_of(api_key: str, server_id: int = SERVER_ID) -> HubSessionKey:
        return HubSessionKey.of(url, credentials(api_key, server_id))

    assert key_of(API_KEY) == key_of(API_KEY) and len({key_of(API_KEY), key_of(API_KEY)}) == 1
    assert key_of(API_KEY) != key_of("another-key")
    assert key_of(API_KEY) != key_of(API_KEY, OTHER_SERVER_ID)
    assert API_KEY not in repr(key_of(API_KEY))
