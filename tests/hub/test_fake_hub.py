"""The loopback SignalR hub follows cad-api/websocket.md; here it is driven by a raw aiohttp websocket client."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from testing.signalr_hub import RS, FakeSignalRHub, Policy
from tests.hub.conftest import API_KEY, COMMUNITY_ID, OTHER_SERVER_ID, SERVER_ID, envelope

ROOT = Path(__file__).resolve().parents[2]
NEGOTIATE_TIMEOUT = aiohttp.ClientTimeout(total=10)


class RawClient:
    """Just enough SignalR to poke the hub: frames in and out, messages split on the record separator."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[str] = []
        self._pending: list[dict[str, Any]] = []

    async def send(self, *messages: dict[str, Any]) -> None:
        await self.ws.send_str("".join(json.dumps(m) + RS for m in messages))

    async def frame(self, within_s: float = 5.0) -> str | None:
        msg = await self.ws.receive(timeout=within_s)
        if msg.type is not aiohttp.WSMsgType.TEXT:
            return None
        self.frames.append(msg.data)
        return str(msg.data)

    async def message(self, *, skip_pings: bool = True, within_s: float = 5.0) -> dict[str, Any] | None:
        while True:
            while not self._pending:
                text = await self.frame(within_s)
                if text is None:
                    return None
                self._pending.extend(json.loads(part) for part in text.split(RS) if part)
            message = self._pending.pop(0)
            if not (skip_pings and message.get("type") == 6):
                return message

    async def handshake(self) -> None:
        await self.send({"protocol": "json", "version": 1})
        assert await self.frame() == "{}" + RS

    async def invoke(self, invocation_id: str, target: str, *arguments: Any) -> dict[str, Any]:
        await self.send(
            {"type": 1, "invocationId": invocation_id, "target": target, "arguments": list(arguments)}
        )
        reply = await self.message()
        assert reply is not None and reply["invocationId"] == invocation_id
        return reply

    async def authenticate(self, server_id: int | None = SERVER_ID, key: str = API_KEY) -> dict[str, Any]:
        return await self.invoke("auth", "authenticatev2", COMMUNITY_ID, key, server_id)


@pytest.fixture
async def connect(hub: FakeSignalRHub, http_session: aiohttp.ClientSession) -> AsyncIterator[Any]:
    """Opens raw websockets to the hub (``id`` optional); closes them all at the end."""
    opened: list[aiohttp.ClientWebSocketResponse] = []

    async def open_ws(connection_id: str | None = None, *, handshake: bool = True) -> RawClient:
        url = hub.hub_url.replace("http", "ws", 1)
        params = {"id": connection_id} if connection_id is not None else None
        ws = await http_session.ws_connect(url, params=params, timeout=aiohttp.ClientWSTimeout(ws_close=2))
        opened.append(ws)
        client = RawClient(ws)
        if handshake:
            await client.handshake()
        return client

    yield open_ws
    for ws in opened:
        await ws.close()


async def negotiate(session: aiohttp.ClientSession, hub: FakeSignalRHub, query: str = "") -> dict[str, Any]:
    async with session.post(f"{hub.hub_url}/negotiate{query}", timeout=NEGOTIATE_TIMEOUT) as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


# ---------------------------------------------------------------------------------------- negotiate


async def test_negotiate_version_1_gives_a_token_and_websockets_only(
    hub: FakeSignalRHub, http_session: aiohttp.ClientSession
) -> None:
    body = await negotiate(http_session, hub, "?negotiateVersion=1&clientProtocol=1.5")

    assert body["negotiateVersion"] == 1
    assert (
        body["connectionId"] and body["connectionToken"] and body["connectionToken"] != body["connectionId"]
    )
    assert body["availableTransports"] == [{"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}]
    assert "useStatefulReconnect" not in body


async def test_negotiate_without_a_version_is_version_0(
    hub: FakeSignalRHub, http_session: aiohttp.ClientSession
) -> None:
    body = await negotiate(http_session, hub)

    assert body["negotiateVersion"] == 0 and "connectionToken" not in body and body["connectionId"]


async def test_a_refused_negotiation_answers_an_error(
    hub: FakeSignalRHub, http_session: aiohttp.ClientSession
) -> None:
    hub.refuse_negotiation()

    assert await negotiate(http_session, hub, "?negotiateVersion=1") == {
        "error": "This connection is not allowed."
    }


# ------------------------------------------------------------------------------------------ upgrade


async def test_upgrade_ids_are_single_use_and_checked(
    hub: FakeSignalRHub, http_session: aiohttp.ClientSession, connect: Any
) -> None:
    v1 = await negotiate(http_session, hub, "?negotiateVersion=1")
    v0 = await negotiate(http_session, hub)

    with pytest.raises(aiohttp.WSServerHandshakeError) as unknown:
        await connect("no-such-id")
    assert unknown.value.status == 404
    with pytest.raises(aiohttp.WSServerHandshakeError) as id_not_token:
        await connect(v1["connectionId"])  # version 1 connects with the token, not the id
    assert id_not_token.value.status == 404

    first = await connect(v1["connectionToken"])
    with pytest.raises(aiohttp.WSServerHandshakeError) as duplicate:
        await connect(v1["connectionToken"])
    assert duplicate.value.status == 409
    await connect(v0["connectionId"])
    await connect(None)  # no negotiation at all

    await first.ws.close()
    await hub.wait_for(lambda: hub.connections[0].closed)
    with pytest.raises(aiohttp.WSServerHandshakeError) as reused:
        await connect(v1["connectionToken"])
    assert reused.value.status == 404
    assert [c.negotiate_version for c in hub.connections] == [1, 0, None]
    assert hub.counters.upgrades == 3 and hub.counters.upgrades_refused == 4


async def test_a_plain_get_is_refused(hub: FakeSignalRHub, http_session: aiohttp.ClientSession) -> None:
    async with http_session.get(hub.hub_url, timeout=NEGOTIATE_TIMEOUT) as response:
        assert response.status == 400


# -------------------------------------------------------------------------------- handshake and framing


async def test_handshake_answer_is_alone_in_its_frame_and_batched_input_is_split(connect: Any) -> None:
    client = await connect(handshake=False)
    handshake = json.dumps({"protocol": "json", "version": 1}) + RS
    auth = json.dumps(
        {"type": 1, "invocationId": "0", "target": "authenticatev2", "arguments": [COMMUNITY_ID, API_KEY, 1]}
    )
    await client.ws.send_str(handshake + auth[:20])  # the handshake and half of the next message
    assert await client.frame() == "{}" + RS
    await client.ws.send_str(auth[20:] + RS)

    reply = await client.message()
    assert reply == {"type": 3, "invocationId": "0", "result": {"success": True, "error": "", "count": 1}}
    assert client.frames[-1].count(RS) == 1 and client.frames[-1].endswith(RS)


@pytest.mark.parametrize(
    ("first", "error"),
    [
        ({"protocol": "messagepack", "version": 1}, "Requested protocol 'messagepack' is not available."),
        ({"protocol": "json", "version": 2}, "Requested protocol 'json' is not available."),
        ({"type": 6}, "InvalidDataException: The first message must be a handshake request."),
    ],
)
async def test_a_bad_handshake_gets_an_error_response_then_a_close(
    connect: Any, first: dict[str, Any], error: str
) -> None:
    client = await connect(handshake=False)
    await client.send(first)

    assert await client.frame() == json.dumps({"error": error}) + RS
    assert await client.frame() is None
    assert client.ws.close_code == 1000


async def test_invalid_json_after_the_handshake_closes_with_an_error(connect: Any) -> None:
    client = await connect()
    await client.ws.send_str("{not json" + RS)

    close = await client.message()
    assert close is not None and close["type"] == 7
    assert close["error"].startswith("Connection closed with an error.")


# ------------------------------------------------------------------------------------------ hub methods


@pytest.mark.parametrize(
    ("target", "arguments"),
    [
        ("authenticatev2", [COMMUNITY_ID, API_KEY, 1]),
        ("AuthenticateV2", [COMMUNITY_ID, API_KEY, "1"]),
        ("authenticate", [COMMUNITY_ID, API_KEY, 1.0]),
        ("AUTHENTICATE", [COMMUNITY_ID, API_KEY, 1]),
    ],
)
async def test_authentication_names_are_case_insensitive(
    hub: FakeSignalRHub, connect: Any, target: str, arguments: list[Any]
) -> None:
    client = await connect()

    reply = await client.invoke("7", target, *arguments)

    assert reply == {"type": 3, "invocationId": "7", "result": {"success": True, "error": "", "count": 1}}
    [connection] = hub.sessions_for(COMMUNITY_ID, SERVER_ID)
    assert connection.auth_calls[0].method == target


@pytest.mark.parametrize("arguments", [[COMMUNITY_ID, API_KEY], [COMMUNITY_ID, API_KEY, None]])
async def test_authentication_without_a_server_id_succeeds_but_receives_no_events(
    hub: FakeSignalRHub, connect: Any, arguments: list[Any]
) -> None:
    client = await connect()

    reply = await client.invoke("0", "authenticatev2", *arguments)

    assert reply["result"]["success"] is True
    assert hub.connections[0].authenticated and hub.sessions_for(COMMUNITY_ID, SERVER_ID) == []
    assert (await hub.push(COMMUNITY_ID, SERVER_ID, envelope())).dropped


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ([COMMUNITY_ID, "wrong-key", 1], "Invalid community ID or API key."),
        (["9999", API_KEY, 1], "Invalid community ID or API key."),
        ([COMMUNITY_ID, API_KEY, 7], "Server 7 is not configured for this community."),
    ],
)
async def test_refused_authentication_answers_success_false_and_keeps_the_connection(
    hub: FakeSignalRHub, connect: Any, arguments: list[Any], error: str
) -> None:
    client = await connect()

    reply = await client.invoke("0", "authenticatev2", *arguments)
    assert reply["result"] == {"success": False, "error": error, "count": 0}
    assert (await client.authenticate())["result"]["success"] is True  # the same connection may try again
    assert hub.counters.auth_attempts == 2 and hub.counters.auth_failures == 1


async def test_wrong_arity_and_unknown_methods_get_completion_errors(connect: Any) -> None:
    client = await connect()

    arity = await client.invoke("0", "authenticatev2", COMMUNITY_ID)
    unknown = await client.invoke("1", "doSomething", 1)
    await client.send({"type": 1, "target": "doSomething", "arguments": []})  # no id: no reply
    await client.send({"type": 4, "invocationId": "2", "target": "stream", "arguments": []})
    stream = await client.message()

    assert arity["error"] == (
        "Failed to invoke 'authenticatev2' due to an error on the server. InvalidDataException: "
        "Invocation provides 1 argument(s) but target expects 3."
    )
    assert "result" not in arity
    assert unknown == {"type": 3, "invocationId": "1", "error": "Unknown hub method 'doSomething'"}
    assert stream is not None and stream["invocationId"] == "2" and "error" in stream


async def test_the_refusal_switch_answers_in_either_form(hub: FakeSignalRHub, connect: Any) -> None:
    client = await connect()

    hub.refuse_auth(1)
    as_result = await client.authenticate()
    hub.refuse_auth(1, form="error")
    as_error = await client.authenticate()
    accepted = await client.authenticate()

    assert as_result["result"]["success"] is False
    assert "error" in as_error and "result" not in as_error
    assert accepted["result"]["success"] is True


async def test_unit_location_enforces_its_documented_limits(hub: FakeSignalRHub, connect: Any) -> None:
    hub.unit_location_interval_s = 60.0  # so the rate limit is hit for certain
    client = await connect()
    update = {
        "communityUserId": "player-1",
        "location": "Mission Row",
        "coordinates": {"x": 1, "y": 2, "z": 3},
    }

    async def send(invocation_id: str, argument: Any) -> dict[str, Any]:
        reply = await client.invoke(invocation_id, "unitLocation", argument)
        result: dict[str, Any] = reply["result"]
        return result

    assert (await send("0", [update]))["error"] == "Unauthenticated. Call authenticate first."
    await client.authenticate()
    assert (await send("1", []))["error"] == "Missing unit location updates."
    assert (await send("2", [update] * 26))["error"] == "Too many unit updates in one call. Max is 25."
    needs = "Each unit update requires identId, apiId, communityUserId, or roblox, and location."
    assert (await send("3", [{"location": "nowhere"}]))["error"] == needs
    assert (await send("4", [{**update, "roblox": 12}]))["error"] == needs  # two targets
    assert await send("5", [update, {"apiId": "A1", "location": "Pier"}]) == {
        "success": True,
        "error": "",
        "count": 2,
    }
    assert (await send("6", [update]))["error"] == "UNIT_LOCATION updates are limited to every 200ms."
    assert len(hub.connections[0].unit_updates) == 2


# ---------------------------------------------------------------------------------- keep-alive and close


async def test_an_idle_hub_pings_and_a_silent_client_is_timed_out(
    http_session: aiohttp.ClientSession,
) -> None:
    async with FakeSignalRHub(keepalive_s=0.05, client_timeout_s=0.3) as hub:
        ws = await http_session.ws_connect(hub.hub_url.replace("http", "ws", 1))
        client = RawClient(ws)
        await client.handshake()

        first = await client.message(skip_pings=False)
        last: dict[str, Any] | None = first
        messages = []
        while last is not None and last["type"] == 6:
            messages.append(last)
            last = await client.message(skip_pings=False)
        await ws.close()

    assert first == {"type": 6}
    assert last == {"type": 7, "error": "Client timeout."}
    assert hub.counters.client_timeouts == 1 and hub.connections[0].closed_by == "timeout"
    assert hub.counters.pings_sent == len(messages)


async def test_client_pings_keep_a_connection_alive(http_session: aiohttp.ClientSession) -> None:
    async with FakeSignalRHub(keepalive_s=0.05, client_timeout_s=0.3) as hub:
        ws = await http_session.ws_connect(hub.hub_url.replace("http", "ws", 1))
        client = RawClient(ws)
        await client.handshake()
        for _ in range(12):  # 0.6 s of pings, twice the timeout
            await client.send({"type": 6})
            await asyncio.sleep(0.05)
        assert not hub.connections[0].closed and hub.connections[0].pings_received == 12
        await ws.close()


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("clean", {"type": 7}),
        ("reconnect", {"type": 7, "error": "Server restarting.", "allowReconnect": True}),
    ],
)
async def test_close_switches_send_a_close_message_then_close(
    hub: FakeSignalRHub, connect: Any, mode: str, expected: dict[str, Any]
) -> None:
    client = await connect()
    await client.authenticate()

    await hub.close_connection(hub.connections[0], mode)  # type: ignore[arg-type]

    assert await client.message() == expected
    assert await client.message() is None and client.ws.close_code == 1000
    await hub.wait_for(lambda: hub.connections[0].closed)
    assert hub.connections[0].closed_by == "server"
    assert hub.sessions_for(COMMUNITY_ID, SERVER_ID) == []


async def test_kill_drops_the_tcp_connection_without_a_close(hub: FakeSignalRHub, connect: Any) -> None:
    client = await connect()

    await hub.close_connection(hub.connections[0], "kill")

    msg = await client.ws.receive(timeout=5)
    assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    # The handshake answer, then nothing: no Close message, no close frame.
    assert client.frames == ["{}" + RS]
    assert msg.type is not aiohttp.WSMsgType.CLOSE
    await hub.wait_for(lambda: hub.connections[0].closed)
    assert hub.connections[0].closed_by == "killed"


async def test_a_stalled_connection_goes_silent(hub: FakeSignalRHub, connect: Any) -> None:
    client = await connect()
    await client.authenticate()
    connection = hub.connections[0]

    hub.stall(connection)
    outcome = await hub.push(COMMUNITY_ID, SERVER_ID, envelope())
    await client.send({"type": 1, "invocationId": "9", "target": "authenticatev2", "arguments": []})

    assert outcome.swallowed_by == [connection.connection_id] and outcome.delivered_to == []
    with pytest.raises(TimeoutError):  # no ping, no reply, no event, for many ping intervals
        await client.frame(within_s=0.5)
    assert not connection.closed


# ----------------------------------------------------------------------------------------- push routing


async def test_pushed_events_are_one_message_per_frame_as_object_or_string(
    hub: FakeSignalRHub, connect: Any
) -> None:
    client = await connect()
    await client.authenticate()
    event = envelope("EVENT_911", {"call": {"callId": 1}})

    await hub.push(COMMUNITY_ID, SERVER_ID, event)
    await hub.push(COMMUNITY_ID, SERVER_ID, event, as_string=True)
    as_object, as_string = await client.message(), await client.message()

    assert as_object == {"type": 1, "target": "pushEvent", "arguments": [event]}
    assert as_string is not None and json.loads(as_string["arguments"][0]) == event
    pushes = [f for f in client.frames if "pushEvent" in f]
    assert len(pushes) == 2 and all(f.count(RS) == 1 and f.endswith(RS) for f in pushes)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("last-wins", ["b", "b", "b"]),
        ("first-wins", ["a", "a", "a"]),
        ("fan-out", ["ab", "ab", "ab"]),
        ("round-robin", ["a", "b", "a"]),
    ],
)
async def test_routing_policies_for_two_sessions_on_one_server_id(
    hub: FakeSignalRHub, connect: Any, policy: Policy, expected: list[str]
) -> None:
    hub.policy = policy
    clients = {"a": await connect(), "b": await connect()}
    for client in clients.values():  # a authenticates first, then b
        await client.authenticate()
    names = {hub.connections[0].connection_id: "a", hub.connections[1].connection_id: "b"}

    got = []
    for _ in range(3):
        outcome = await hub.push(COMMUNITY_ID, SERVER_ID, envelope())
        got.append("".join(sorted(names[c] for c in outcome.delivered_to)))

    assert got == expected
    for name, client in clients.items():
        for _ in range(sum(name in g for g in got)):
            message = await client.message()
            assert message is not None and message["target"] == "pushEvent"


async def test_the_last_authentication_wins_on_a_connection(hub: FakeSignalRHub, connect: Any) -> None:
    a, b = await connect(), await connect()
    await a.authenticate()
    await b.authenticate()
    await a.authenticate()  # a is now the newest
    assert [c.connection_id for c in hub.sessions_for(COMMUNITY_ID, SERVER_ID)] == [
        hub.connections[1].connection_id,
        hub.connections[0].connection_id,
    ]

    await a.authenticate(OTHER_SERVER_ID)  # moves a to the other server id
    assert hub.sessions_for(COMMUNITY_ID, OTHER_SERVER_ID) == [hub.connections[0]]
    await b.authenticate(key="wrong")  # a failed re-authentication leaves b unauthenticated
    assert hub.sessions_for(COMMUNITY_ID, SERVER_ID) == []


@pytest.fixture
async def fallback_listener() -> AsyncIterator[tuple[str, list[Any]]]:
    received: list[Any] = []

    async def handle(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/sonorancad/event", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/sonorancad/event", received
    finally:
        await runner.cleanup()


async def test_without_a_session_events_fall_back_to_an_http_post(
    hub: FakeSignalRHub, connect: Any, fallback_listener: tuple[str, list[Any]]
) -> None:
    url, received = fallback_listener
    event = envelope("EVENT_911", {"call": {"callId": 3}})

    no_fallback = await hub.push(COMMUNITY_ID, SERVER_ID, event)
    hub.fallback_url = url
    fell_back = await hub.push(COMMUNITY_ID, SERVER_ID, event)
    client = await connect()
    await client.authenticate()
    over_socket = await hub.push(COMMUNITY_ID, SERVER_ID, event)

    assert no_fallback.dropped and hub.counters.pushes_dropped == 1
    assert fell_back.fallback_status == 200 and received == [event]  # the body, verbatim
    assert over_socket.delivered_to and over_socket.fallback_status is None and len(received) == 1
    assert hub.counters.fallback_posts == 1


# ------------------------------------------------------------------------------------- dev use, hygiene


async def test_the_control_api_injects_events_and_shows_state(
    hub: FakeSignalRHub, connect: Any, http_session: aiohttp.ClientSession
) -> None:
    client = await connect()
    await client.authenticate()
    event = envelope("EVENT_TONE", {})

    async with http_session.post(
        f"{hub.base_url}/_fake/push",
        params={"communityId": COMMUNITY_ID, "serverId": "1", "asString": "1"},
        json=event,
        timeout=NEGOTIATE_TIMEOUT,
    ) as response:
        outcome = await response.json()
    async with http_session.get(f"{hub.base_url}/_fake/state", timeout=NEGOTIATE_TIMEOUT) as response:
        state = await response.json()

    assert outcome["delivered_to"] == [hub.connections[0].connection_id] and not outcome["dropped"]
    message = await client.message()
    assert message is not None and json.loads(message["arguments"][0]) == event
    assert state["counters"]["pushes"] == 1 and state["live"][0]["authenticated"] is True


async def test_the_hub_never_logs_or_shows_keys_or_tokens(
    hub: FakeSignalRHub, http_session: aiohttp.ClientSession, connect: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = await negotiate(http_session, hub, "?negotiateVersion=1")
    client = await connect(body["connectionToken"])
    await client.authenticate()
    await client.authenticate(key="wrong-LEAKCHECK")
    await hub.push(COMMUNITY_ID, SERVER_ID, envelope())

    shown = caplog.text + repr(hub.connections) + repr(hub.communities) + repr(hub.counters)
    assert API_KEY not in shown and "wrong-LEAKCHECK" not in shown and body["connectionToken"] not in shown


def test_the_dev_server_starts_and_serves_the_hub() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "testing.signalr_hub", "0"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        match = re.search(r"serving (http://127\.0\.0\.1:\d+/apiWsHub)", line)
        assert match, line

        async def probe() -> dict[str, Any]:
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    match.group(1) + "/negotiate?negotiateVersion=1", timeout=NEGOTIATE_TIMEOUT
                ) as response,
            ):
                body: dict[str, Any] = await response.json()
                return body

        assert asyncio.run(probe())["negotiateVersion"] == 1
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()
