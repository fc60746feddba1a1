"""The listener against slow and hostile clients: head and body deadlines, the connection cap, and wrong keys
logged as a summary instead of a line each. Real sockets against the real listener; the limits are set small
and every wait has a generous bound, so nothing depends on how fast the machine is."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import pytest

from bot.config import ServerSettings
from tests.push.conftest import API_KEY, PushWorld, envelope

PANIC = {"identIds": [57], "isPanic": True}
BOUND_S = 15.0  # no test waits for anything longer than this; none should need more than a fraction of it


def _settings(**limits: object) -> ServerSettings:
    return ServerSettings(host="127.0.0.1", port=0, **limits)  # type: ignore[arg-type]


@asynccontextmanager
async def _raw(world: PushWorld) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    url = urlsplit(world.url)
    assert url.hostname is not None and url.port is not None
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        yield reader, writer
    finally:
        writer.close()


async def _read_until_closed(reader: asyncio.StreamReader) -> bytes:
    async with asyncio.timeout(BOUND_S):
        return await reader.read()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP response with a Content-Length body, from a connection that stays open."""
    async with asyncio.timeout(BOUND_S):
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        return int(head.split(b" ", 2)[1]), await reader.readexactly(length)


async def _wait_for(condition: object, what: str) -> None:
    async with asyncio.timeout(BOUND_S):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.02)


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


HEALTH_REQUEST = b"GET /healthz HTTP/1.1\r\nHost: bot\r\n\r\n"


# -- request heads -----------------------------------------------------------------------------------


async def test_slowloris_connections_are_answered_408_and_closed(push_world: PushWorld) -> None:
    """200 connections each sending a partial head, then one more header byte now and then, as slowloris does:
    every one is closed once header_timeout_s has passed since it connected, bytes or not."""
    await push_world.restart(reopen_storage=False, server=_settings(header_timeout_s=0.5))
    guard = push_world.pipeline.server.guard  # type: ignore[union-attr]
    url = urlsplit(push_world.url)
    assert url.hostname is not None and url.port is not None

    async def slowloris() -> bytes:
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        try:
            writer.write(b"POST /sonorancad/event HTTP/1.1\r\nHost: bot\r\n")

            async def dribble() -> None:
                for _ in range(100):
                    await asyncio.sleep(0.1)
                    writer.write(b"X")

            dribbler = asyncio.create_task(dribble())
            try:
                return await _read_until_closed(reader)
            except ConnectionResetError:  # closed while still dribbling: the 408 may be lost to the reset
                return b"HTTP/1.1 408 (reset before it was read)"
            finally:
                dribbler.cancel()
        finally:
            writer.close()

    answers = await asyncio.gather(*(slowloris() for _ in range(200)))
    assert {_status(answer) for answer in answers} == {408}
    await _wait_for(lambda: guard.open_connections == 0, "every slow connection closed")
    _, metrics = await push_world.get("/metrics")
    assert 'sonoran_push_slow_requests_total{part="head"} 200.0' in metrics


async def test_a_connection_that_never_sends_anything_is_closed(push_world: PushWorld) -> None:
    await push_world.restart(reopen_storage=False, server=_settings(header_timeout_s=0.3))
    async with _raw(push_world) as (reader, _):
        assert _status(await _read_until_closed(reader)) == 408


async def test_the_next_request_on_a_kept_alive_connection_has_the_same_deadline(
    push_world: PushWorld,
) -> None:
    await push_world.restart(reopen_storage=False, server=_settings(header_timeout_s=1.0))
    async with _raw(push_world) as (reader, writer):
        writer.write(HEALTH_REQUEST)
        assert (await _read_response(reader))[0] == 200
        writer.write(b"GET /healthz HTTP/1.1\r\nHo")  # and never the rest
        assert _status(await _read_until_closed(reader)) == 408


async def test_the_next_head_gets_its_whole_deadline_from_its_own_first_byte(push_world: PushWorld) -> None:
    """The deadline of a kept-alive connection's next head counts from that head's first byte: the connection's
    first deadline passing while the head is on its way does not cut it short."""
    timeout_s = 1.0
    await push_world.restart(
        reopen_storage=False, server=_settings(header_timeout_s=timeout_s, keepalive_timeout_s=30)
    )
    loop = asyncio.get_running_loop()
    async with _raw(push_world) as (reader, writer):
        writer.write(HEALTH_REQUEST)
        assert (await _read_response(reader))[0] == 200
        await asyncio.sleep(0.7 * timeout_s)  # the connection's own deadline passes during the next head
        started = loop.time()
        writer.write(b"GET /healthz HTTP/1.1\r\nHo")  # and never the rest
        assert _status(await _read_until_closed(reader)) == 408
        # Never early (a busy machine can only make it later).
        assert loop.time() - started >= timeout_s - 0.05


async def test_an_idle_kept_alive_connection_outlives_the_head_deadline(push_world: PushWorld) -> None:
    """The head deadline runs only while a head is on its way: a client that pauses between requests keeps its
    connection until keepalive_timeout_s."""
    await push_world.restart(
        reopen_storage=False, server=_settings(header_timeout_s=1.0, keepalive_timeout_s=30)
    )
    async with _raw(push_world) as (reader, writer):
        for _ in range(2):
            writer.write(HEALTH_REQUEST)
            assert (await _read_response(reader))[0] == 200
            await asyncio.sleep(1.5)  # idle for longer than the head deadline


async def test_an_idle_kept_alive_connection_is_closed_after_the_keepalive_timeout(
    push_world: PushWorld,
) -> None:
    await push_world.restart(
        reopen_storage=False, server=_settings(header_timeout_s=30, keepalive_timeout_s=0.3)
    )
    async with _raw(push_world) as (reader, writer):
        writer.write(HEALTH_REQUEST)
        assert (await _read_response(reader))[0] == 200
        assert await _read_until_closed(reader) == b""


# -- bodies ------------------------------------------------------------------------------------------


async def test_a_body_that_does_not_arrive_in_time_is_408_and_the_connection_closed(
    push_world: PushWorld,
) -> None:
    await push_world.restart(reopen_storage=False, server=_settings(body_timeout_s=0.3))
    body = json.dumps(envelope("EVENT_UNIT_PANIC", PANIC)).encode()
    async with _raw(push_world) as (reader, writer):
        writer.write(
            b"POST /sonorancad/event HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:10]
        )
        answer = await _read_until_closed(reader)  # the answer, then the connection closes
    assert _status(answer) == 408
    assert b"Connection: close" in answer
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"] == "timeout"
    rows = await push_world.storage.db.conn.execute_fetchall("SELECT COUNT(*) FROM push_inbox")
    assert next(iter(rows))[0] == 0
    _, metrics = await push_world.get("/metrics")
    assert 'sonoran_push_slow_requests_total{part="body"} 1.0' in metrics


async def test_a_body_that_keeps_trickling_is_cut_off_at_the_body_timeout(push_world: PushWorld) -> None:
    await push_world.restart(reopen_storage=False, server=_settings(body_timeout_s=0.4))
    async with _raw(push_world) as (reader, writer):
        writer.write(
            b"POST /sonorancad/event HTTP/1.1\r\nHost: bot\r\nContent-Length: 100000\r\n\r\n" + b'{"k": "'
        )

        async def trickle() -> None:
            for _ in range(200):
                await asyncio.sleep(0.05)
                writer.write(b"x")

        trickler = asyncio.create_task(trickle())
        try:
            # Closed while the client is still writing, the socket may be reset before the 408 is read: either
            # way the connection ends at the body timeout instead of lasting as long as the trickle.
            try:
                answer = await _read_until_closed(reader)
            except ConnectionResetError:
                answer = b"HTTP/1.1 408 (reset before it was read)"
            assert _status(answer) == 408
        finally:
            trickler.cancel()


async def test_a_prompt_body_is_unaffected_by_the_limits(push_world: PushWorld) -> None:
    await push_world.restart(
        reopen_storage=False, server=_settings(header_timeout_s=2, body_timeout_s=2, max_connections=2)
    )
    for _ in range(5):
        status, answer, _ = await push_world.post(envelope("EVENT_UNIT_PANIC", PANIC))
        assert (status, answer["status"]) == (200, "accepted")


# -- the connection cap -------------------------------------------------------------------------------


async def test_connections_over_the_cap_are_refused_with_503_not_queued(push_world: PushWorld) -> None:
    await push_world.restart(reopen_storage=False, server=_settings(max_connections=3, header_timeout_s=60))
    guard = push_world.pipeline.server.guard  # type: ignore[union-attr]
    url = urlsplit(push_world.url)
    assert url.hostname is not None and url.port is not None
    held = [await asyncio.open_connection(url.hostname, url.port) for _ in range(3)]
    try:
        await _wait_for(lambda: guard.open_connections == 3, "three connections open")
        async with _raw(push_world) as (reader, writer):
            writer.write(json.dumps(envelope("EVENT_UNIT_PANIC", PANIC)).encode())
            refused = await _read_until_closed(reader)
        assert _status(refused) == 503
        assert b"Retry-After: 1" in refused
        assert json.loads(refused.split(b"\r\n\r\n", 1)[1])["error"] == "busy"
        assert guard.open_connections == 3  # the refused one never counted

        # One of the three goes away: the next sender is served as usual.
        _, first_writer = held.pop()
        first_writer.close()
        await _wait_for(lambda: guard.open_connections == 2, "a slot freed")
        status, answer, _ = await push_world.post(envelope("EVENT_UNIT_PANIC", PANIC))
        assert (status, answer["status"]) == (200, "accepted")
    finally:
        for _, writer in held:
            writer.close()
    _, metrics = await push_world.get("/metrics")
    assert "sonoran_push_connections_refused_total 1.0" in metrics


# -- wrong keys: a summary, not a line each --------------------------------------------------------------


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.WARNING and record.name.startswith("bot.push")
    ]


async def test_a_flood_of_wrong_keys_is_logged_as_one_line_and_a_summary(
    push_world: PushWorld, caplog: pytest.LogCaptureFixture
) -> None:
    # A window longer than the test: the summary comes from stopping the listener, whatever the machine's speed.
    await push_world.restart(
        reopen_storage=False, rejection_summary_s=3600, server=_settings(trusted_proxies=["127.0.0.1"])
    )
    caplog.set_level(logging.INFO, logger="bot.push")
    senders = ["203.0.113.7"] * 150 + ["203.0.113.8"] * 30 + ["198.51.100.1"] * 20
    for sender in senders:
        status, _, _ = await push_world.post(
            envelope("EVENT_UNIT_PANIC", PANIC, key="guess"), headers={"X-Forwarded-For": sender}
        )
        assert status in (401, 429)
    # One line at once, so a mistyped key is seen immediately...
    assert _warnings(caplog) == [
        "push event from 203.0.113.7 refused (missing or unknown key); further refusals are summarised every "
        "3600 s"
    ]
    # ...and one summary for the other 199 (5 wrong keys from each address, then the throttle).
    await push_world.pipeline.stop()
    assert len(_warnings(caplog)) == 2
    summary = _warnings(caplog)[1]
    assert summary.startswith("push listener refused 199 more request(s) from 3 address(es) in the last")
    assert "(14 missing or unknown key, 185 throttled after failed attempts)" in summary
    assert summary.endswith("most from 203.0.113.7 (149)")
    assert API_KEY not in caplog.text and "guess" not in caplog.text


async def test_summaries_come_every_window_and_stop_when_the_refusals_do(
    push_world: PushWorld, caplog: pytest.LogCaptureFixture
) -> None:
    await push_world.restart(reopen_storage=False, rejection_summary_s=0.3)
    caplog.set_level(logging.INFO, logger="bot.push")
    for _ in range(4):
        await push_world.post(envelope("EVENT_UNIT_PANIC", PANIC, key="guess"))

    def summarised() -> int:
        return sum(int(line.split()[3]) for line in _warnings(caplog)[1:])

    await _wait_for(lambda: summarised() == 3, "summaries of the three refusals after the first")
    lines = len(_warnings(caplog))
    assert all(line.startswith("push listener refused") for line in _warnings(caplog)[1:])
    # A window without refusals ends the summaries: nothing more is logged, and the next refusal is shown on
    # its own at once.
    rejections = push_world.pipeline.ingest.rejections
    await _wait_for(lambda: not rejections.summarising, "a quiet window")
    assert len(_warnings(caplog)) == lines
    await push_world.post(envelope("EVENT_UNIT_PANIC", PANIC, key="guess"))
    assert _warnings(caplog)[-1].startswith("push event from 127.0.0.1 refused (missing or unknown key)")


async def test_refusals_counted_when_the_listener_stops_are_still_logged(
    push_world: PushWorld, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.push")
    for _ in range(3):
        await push_world.post(envelope("EVENT_UNIT_PANIC", PANIC, key="guess"))
    await push_world.pipeline.stop()
    assert len(_warnings(caplog)) == 2
    assert _warnings(caplog)[1].startswith("push listener refused 2 more request(s) from 1 address(es)")
