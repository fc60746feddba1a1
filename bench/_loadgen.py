"""The load generator of the ingest benchmark, run as its own process so it never competes with the server's loop.

``python -m bench._loadgen`` reads one JSON spec on stdin and writes one JSON result on stdout:

* ``closed``: ``concurrency`` clients share one ``aiohttp.ClientSession`` (keep-alive); each sends
  ``requests_per_client`` requests one after the other. A warm-up round (one request per client) opens the
  connections first and is not measured.
* ``open``: requests are started on a fixed schedule (``rate`` per second for ``duration_s``) whether or not the
  earlier ones were answered, so a slow server cannot slow the offered load down (no coordinated omission).

Every request has a timeout and both modes stop at ``max_seconds`` whatever happens. Only 127.0.0.1 is targeted.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from typing import Any

import aiohttp

REQUEST_TIMEOUT_S = 10.0


def event_body(key: str, number: int) -> bytes:
    """A unit status change, the commonest push event, with a distinct unit per request."""
    envelope = {"key": key, "type": "EVENT_UNIT_STATUS", "data": {"identIds": [number], "status": 2}}
    return json.dumps(envelope, separators=(",", ":")).encode()


class _Recorder:
    def __init__(self) -> None:
        self.latencies_ms: list[float] = []
        self.from_schedule_ms: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.last_done = 0.0

    async def send(
        self, session: aiohttp.ClientSession, url: str, body: bytes, scheduled: float | None = None
    ) -> None:
        started = time.perf_counter()
        try:
            async with session.post(
                url,
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
            ) as response:
                await response.read()
                status = str(response.status)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            status = type(exc).__name__
        done = time.perf_counter()
        self.last_done = max(self.last_done, done)
        self.statuses[status] += 1
        if status == "200":
            self.latencies_ms.append((done - started) * 1000)
            if scheduled is not None:
                self.from_schedule_ms.append((done - scheduled) * 1000)


async def _closed(spec: dict[str, Any], session: aiohttp.ClientSession) -> dict[str, Any]:
    url, key = spec["url"], spec["key"]
    concurrency = int(spec["concurrency"])
    per_client = int(spec["requests_per_client"])
    deadline = time.perf_counter() + float(spec["max_seconds"])
    numbers = iter(range(int(spec["first_number"]), 1 << 62))
    warmup = _Recorder()
    await asyncio.gather(
        *(warmup.send(session, url, event_body(key, next(numbers))) for _ in range(concurrency))
    )
    bodies = [[event_body(key, next(numbers)) for _ in range(per_client)] for _ in range(concurrency)]
    recorder = _Recorder()

    async def client(own: list[bytes]) -> None:
        for body in own:
            if time.perf_counter() >= deadline:
                return
            await recorder.send(session, url, body)

    cpu_before = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(client(own) for own in bodies))
    elapsed = (recorder.last_done or time.perf_counter()) - started
    return _result(recorder, elapsed, time.process_time() - cpu_before, offered=None)


async def _open(spec: dict[str, Any], session: aiohttp.ClientSession) -> dict[str, Any]:
    url, key = spec["url"], spec["key"]
    rate = float(spec["rate"])
    total = int(rate * float(spec["duration_s"]))
    deadline_s = float(spec["max_seconds"])
    first = int(spec["first_number"])
    warmup = _Recorder()
    await asyncio.gather(*(warmup.send(session, url, event_body(key, first + i)) for i in range(8)))
    bodies = [event_body(key, first + 8 + i) for i in range(total)]
    recorder = _Recorder()
    tasks: set[asyncio.Task[None]] = set()
    cpu_before = time.process_time()
    started = time.perf_counter()
    sent = 0
    for index, body in enumerate(bodies):
        scheduled = started + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if time.perf_counter() - started > deadline_s:
            break
        task = asyncio.create_task(recorder.send(session, url, body, scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        sent += 1
    send_window = time.perf_counter() - started
    if tasks:
        await asyncio.wait(list(tasks), timeout=REQUEST_TIMEOUT_S + 1)
    elapsed = (recorder.last_done or time.perf_counter()) - started
    result = _result(recorder, elapsed, time.process_time() - cpu_before, offered=sent / send_window)
    result["from_schedule_ms"] = recorder.from_schedule_ms
    return result


def _result(recorder: _Recorder, elapsed: float, cpu_s: float, offered: float | None) -> dict[str, Any]:
    return {
        "ok": recorder.statuses.get("200", 0),
        "statuses": dict(recorder.statuses),
        "elapsed_s": elapsed,
        "client_cpu_s": cpu_s,
        "offered_per_s": offered,
        "latencies_ms": recorder.latencies_ms,
    }


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    connections = int(spec.get("connections") or spec.get("concurrency") or 64)
    connector = aiohttp.TCPConnector(limit=connections, limit_per_host=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        if spec["mode"] == "closed":
            return await _closed(spec, session)
        return await _open(spec, session)


def main() -> None:
    spec = json.loads(sys.stdin.read())
    if not str(spec["url"]).startswith("http://127.0.0.1:"):
        raise SystemExit("the load generator only targets 127.0.0.1")
    result = asyncio.run(run(spec))
    sys.stdout.write(json.dumps(result))


if __name__ == "__main__":
    main()
