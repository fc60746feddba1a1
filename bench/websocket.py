"""Websocket: events per second into the inbox through a websocket session vs through the HTTP listener.

Arrangement, all in this process on one event loop: the real :class:`PushPipeline` on a real SQLite file (WAL)
with one guild whose push transport is ``websocket`` and whose units route points at a channel, delivering to an
:class:`~bench._world.InstantSender`; its HTTP listener on a 127.0.0.1 port; the loopback
:class:`~testing.signalr_hub.FakeSignalRHub` on another, with the bot's real session (``HubSessions`` ->
``HubSession``) connected and authenticated. Each round sends N distinct EVENT_UNIT_STATUS events (distinct, so
the cross-transport dedupe, which is active for this community, drops none) one way, waits until every one was
accepted into the inbox, lets the pipeline drain, then does the same the other way:

- *websocket*: the hub pushes the N events down the one connection, in order, as fast as it can write them
  (what a busy CAD does: one session, in order);
- *HTTP*: 8 concurrent keep-alive clients POST the N events to ``/sonorancad/event`` (what a FiveM server's
  forwarding or the CAD's HTTP push does; HTTP gets the concurrency a single websocket cannot have).

Time runs from the first send to the N-th event accepted (the inbox commit done). The two producers run in the
benchmark's own process, so both pay for their sender on the same loop.

Then the reconnect timings: the hub ends the session in each way it can (TCP killed; a Close with
``allowReconnect``; a clean Close), 20 times each, and the time until the bot's replacement session is
authenticated again is measured. The session runs with the production timing except ``stable_after_s`` (0.5 s
instead of 30 s, waited out before each drop), so every drop is the first after a stable session and gets the
schedule's first step (0 s), as a drop in production does. Outside ``--quick``, one stalled hub (no pings, no
frames: only the client's 30 s server timeout can tell) is timed too.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from bench._common import BenchOptions, BenchReport, fmt_ratio
from bench._world import (
    API_KEY,
    BENCH_DELIVERY,
    COMMUNITY_ID,
    GUILD_ID,
    POST_TIMEOUT,
    InstantSender,
    open_storage,
)
from bot.config import ServerSettings
from bot.push.hub_client import HubTiming
from bot.push.hub_sessions import HubSessions
from bot.push.pipeline import PushPipeline
from bot.storage.models import Category, PushTransport
from testing.signalr_hub import FakeSignalRHub, HubConnection

NAME = "websocket"
HTTP_CLIENTS = 8
ROUNDS = 3
DROPS = 20
RECONNECT_TIMING = HubTiming(stable_after_s=0.5)


def _envelope(number: int) -> dict[str, Any]:
    unit = {
        "id": number,
        "status": 2 + number % 3,
        "data": {"unitNum": f"1A-{number % 100}", "name": "Bench"},
    }
    return {"key": API_KEY, "type": "EVENT_UNIT_STATUS", "data": {"units": [unit]}}


def _accepted(pipeline: PushPipeline) -> int:
    counter = pipeline.metrics.events_received.labels("EVENT_UNIT_STATUS", "accepted")
    return int(counter._value.get())


async def _until_accepted(pipeline: PushPipeline, target: int, timeout_s: float = 120.0) -> None:
    async with asyncio.timeout(timeout_s):
        while _accepted(pipeline) < target:  # noqa: ASYNC110 (a Prometheus counter has no event to await)
            await asyncio.sleep(0.0005)


async def _through_hub(hub: FakeSignalRHub, pipeline: PushPipeline, first: int, count: int) -> float:
    target = _accepted(pipeline) + count
    started = time.perf_counter()
    for number in range(first, first + count):
        outcome = await hub.push(COMMUNITY_ID, 1, _envelope(number))
        if not outcome.delivered_to:
            raise RuntimeError("the hub had no session to push to")
    await _until_accepted(pipeline, target)
    return time.perf_counter() - started


async def _through_http(
    session: aiohttp.ClientSession, url: str, pipeline: PushPipeline, first: int, count: int
) -> float:
    target = _accepted(pipeline) + count
    numbers = iter(range(first, first + count))

    async def client() -> None:
        for number in numbers:
            async with session.post(url, json=_envelope(number), timeout=POST_TIMEOUT) as response:
                if response.status != 200:
                    raise RuntimeError(f"the listener answered {response.status}")
                await response.read()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(HTTP_CLIENTS)))
    await _until_accepted(pipeline, target)
    return time.perf_counter() - started


async def run(options: BenchOptions) -> BenchReport:
    count = 500 if options.quick else 5000
    websocket_s: list[float] = []
    http_s: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-websocket-") as folder:
        storage = await open_storage(Path(folder), [Category.UNITS])
        await storage.guilds.set_push_transport(GUILD_ID, PushTransport.WEBSOCKET)
        try:
            async with FakeSignalRHub() as hub, aiohttp.ClientSession() as session:
                hub.add_community(COMMUNITY_ID, API_KEY)
                pipeline = PushPipeline(storage, InstantSender(), delivery=BENCH_DELIVERY)
                pipeline.attach_server(pipeline.create_server(ServerSettings(host="127.0.0.1", port=0)))
                sessions = HubSessions(
                    storage,
                    pipeline.ingest,
                    session,
                    hub.hub_url,
                    metrics=pipeline.metrics,
                    timing=RECONNECT_TIMING,
                )
                pipeline.attach_hub(sessions)
                await pipeline.start()
                try:
                    await hub.wait_for(
                        lambda: any(c.authenticated for c in hub.sessions_for(COMMUNITY_ID, 1)), within_s=15
                    )
                    server = pipeline.server
                    assert server is not None
                    url = server.url + "/sonorancad/event"
                    number = 0
                    for _ in range(ROUNDS):
                        websocket_s.append(await _through_hub(hub, pipeline, number, count))
                        number += count
                        await pipeline.wait_until_idle(timeout_s=120)
                        http_s.append(await _through_http(session, url, pipeline, number, count))
                        number += count
                        await pipeline.wait_until_idle(timeout_s=120)
                    duplicates = pipeline.ingest.dedupe.copies_dropped
                    reconnects = await _reconnect_timings(hub, options)
                finally:
                    await pipeline.stop()
        finally:
            await storage.close()
    return _report(options, count, websocket_s, http_s, duplicates, reconnects)


async def _replacement_after(hub: FakeSignalRHub, end: Callable[[HubConnection], Awaitable[None]]) -> float:
    """End the current session with ``end``; seconds until another connection is authenticated."""
    [current] = [c for c in hub.sessions_for(COMMUNITY_ID, 1) if c.authenticated]
    await asyncio.sleep(RECONNECT_TIMING.stable_after_s + 0.1)
    started = time.perf_counter()
    await end(current)
    await hub.wait_for(
        lambda: any(c is not current and c.authenticated for c in hub.sessions_for(COMMUNITY_ID, 1)),
        within_s=120,
    )
    return time.perf_counter() - started


async def _reconnect_timings(hub: FakeSignalRHub, options: BenchOptions) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {}
    for mode, label in (
        ("kill", "TCP connection killed"),
        ("reconnect", "Close with allowReconnect"),
        ("clean", "clean Close"),
    ):

        async def end(connection: HubConnection, mode: Any = mode) -> None:
            await hub.close_connection(connection, mode)

        timings[label] = [await _replacement_after(hub, end) for _ in range(DROPS)]
    if not options.quick:

        async def stall(connection: HubConnection) -> None:
            hub.stall(connection)

        timings["hub stalled (no pings, no frames)"] = [await _replacement_after(hub, stall)]
    return timings


def _report(
    options: BenchOptions,
    count: int,
    websocket_s: list[float],
    http_s: list[float],
    duplicates: int,
    reconnects: dict[str, list[float]],
) -> BenchReport:
    ws_rates = [count / seconds for seconds in websocket_s]
    http_rates = [count / seconds for seconds in http_s]
    ws, http = statistics.median(ws_rates), statistics.median(http_rates)
    figures = [
        "| transport | events per round | events/s, median | each round | **websocket / HTTP** |",
        "|---|---:|---:|---|---:|",
        f"| websocket (one session, in order) | {count:,} | {ws:,.0f} | "
        f"{', '.join(f'{rate:,.0f}' for rate in ws_rates)} | **{fmt_ratio(ws / http)}** |",
        f"| HTTP listener ({HTTP_CLIENTS} keep-alive clients) | {count:,} | {http:,.0f} | "
        f"{', '.join(f'{rate:,.0f}' for rate in http_rates)} | 1.00× |",
        "",
        f"Every event accepted into the inbox ({2 * ROUNDS * count:,} in all); events dropped as the other "
        f"transport's copy: {duplicates} (all were distinct). The session is strictly in order and each event "
        "waits for its own inbox commit; HTTP's concurrent clients share group commits.",
        "",
        "Reconnects: from the hub ending the session to the bot's replacement session authenticated again "
        "(negotiate, websocket, handshake, authenticatev2):",
        "",
        "| how the session ended | drops | median | max |",
        "|---|---:|---:|---:|",
    ]
    for label, samples in reconnects.items():
        figures.append(
            f"| {label} | {len(samples)} | {_seconds(statistics.median(samples))} | {_seconds(max(samples))} |"
        )
    return BenchReport(
        name=NAME,
        title=f"Websocket: {count:,} events into the inbox through a hub session vs the HTTP listener",
        quick=options.quick,
        arrangement=(
            "one process, one event loop: PushPipeline on a real SQLite file (WAL), one guild on the websocket "
            "transport with its units route set, delivering to an instant in-process sender; its HTTP listener "
            "and the loopback FakeSignalRHub each on a 127.0.0.1 port, the bot's real HubSession authenticated; "
            f"{ROUNDS} rounds, each sending {count:,} distinct EVENT_UNIT_STATUS events through the hub (pushed in "
            f"order down the one connection) and then the same number POSTed by {HTTP_CLIENTS} keep-alive "
            "clients, the pipeline drained between them; time from the first send to the last event accepted "
            "into the inbox"
        ),
        figures=figures,
        target="issue #10: events/s through a websocket session into the inbox vs through the HTTP listener, "
        "same run (no number set)",
        target_met=None,
        verdict=(
            f"websocket {ws:,.0f} events/s, HTTP {http:,.0f} events/s ({fmt_ratio(ws / http)}); a killed "
            f"connection was replaced in {_seconds(statistics.median(reconnects['TCP connection killed']))} "
            "(median)"
        ),
        numbers={
            "count": count,
            "websocket_per_s": ws,
            "http_per_s": http,
            "duplicates": duplicates,
            "reconnect_median_s": statistics.median(reconnects["TCP connection killed"]),
        },
    )


def _seconds(value: float) -> str:
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.1f} s"
