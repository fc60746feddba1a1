"""``/healthz`` (200 healthy, 503 not) and ``/metrics`` (Prometheus text from the pipeline's own registry)."""

from __future__ import annotations

import asyncio
import json

from bot.push.metrics import PushMetrics
from bot.storage.models import Category
from tests.push.conftest import GUILD_A, PushWorld, channel_of, envelope

PANIC = channel_of(GUILD_A, Category.PANIC)


async def _health(world: PushWorld) -> tuple[int, dict[str, object]]:
    status, text = await world.get("/healthz")
    return status, json.loads(text)


async def test_healthy_when_database_discord_and_queue_are_fine(push_world: PushWorld) -> None:
    status, report = await _health(push_world)
    assert status == 200
    assert report == {
        "status": "ok",
        "database": "ok",
        "discord": "connected",
        "outbox_depth": 0,
        "oldest_pending_age_s": None,
        "inbox_depth": 0,
        "last_write_failure": None,
        "websocket_sessions_down": [],
    }


async def test_unhealthy_while_discord_is_disconnected(push_world: PushWorld) -> None:
    push_world.connected[0] = False
    status, report = await _health(push_world)
    assert (status, report["status"], report["discord"]) == (503, "unhealthy", "disconnected")


async def test_unhealthy_when_the_database_is_gone(push_world: PushWorld) -> None:
    await push_world.storage.db.close()
    status, report = await _health(push_world)
    assert (status, report["database"], report["outbox_depth"]) == (503, "unavailable", None)


async def _pragma(world: PushWorld, statement: str) -> int | None:
    rows = list(await world.storage.db.conn.execute_fetchall(f"PRAGMA {statement}"))
    return int(rows[0][0]) if rows else None


async def test_unhealthy_while_writes_fail_on_a_full_database_and_healthy_once_one_succeeds(
    push_world: PushWorld,
) -> None:
    """SELECT 1 still works on a full disk; the events do not. SQLite's max_page_count makes the database
    "full" for real: the inbox insert fails with SQLITE_FULL, exactly as on a full disk."""
    big = {"identIds": [57], "note": "x" * 200_000}
    # One event all the way through first, so the pipeline's start-up writes are done and cannot succeed later.
    assert (await push_world.post(envelope("EVENT_UNIT_PANIC", {"identIds": [56]})))[0] == 200
    await push_world.settle()
    pages = await _pragma(push_world, "page_count")
    await _pragma(push_world, f"max_page_count = {pages}")
    status, answer, _ = await push_world.post(envelope("EVENT_UNIT_PANIC", big))
    assert (status, answer["error"]) == (503, "storage_unavailable")

    status, report = await _health(push_world)
    assert (status, report["status"], report["database"]) == (503, "unhealthy", "writes_failing")
    failure = report["last_write_failure"]
    assert isinstance(failure, dict)
    assert failure["error"] == "database or disk is full"
    assert failure["ongoing"] is True
    assert isinstance(failure["age_s"], float) and failure["age_s"] >= 0

    # Room again: the next event is stored, and the health check says so (and still shows what happened).
    await _pragma(push_world, "max_page_count = 1073741823")
    status, answer, _ = await push_world.post(envelope("EVENT_UNIT_PANIC", big))
    assert (status, answer["status"]) == (200, "accepted")
    status, report = await _health(push_world)
    assert (status, report["database"]) == (200, "ok")
    failure = report["last_write_failure"]
    assert isinstance(failure, dict)
    assert (failure["error"], failure["ongoing"]) == ("database or disk is full", False)


async def test_without_traffic_the_health_check_tries_a_write_itself(push_world: PushWorld) -> None:
    """After writes failed, nobody may write again for a while (the CAD may not retry): /healthz tries one
    small write of its own once write_probe_after_s has passed, and turns healthy when it succeeds."""
    await push_world.restart(reopen_storage=False, write_probe_after_s=0.2)
    await _pragma(
        push_world, "query_only = 1"
    )  # every write now fails: "attempt to write a readonly database"
    status, _, _ = await push_world.post(envelope("EVENT_UNIT_PANIC", {"identIds": [57]}))
    assert status == 503
    status, report = await _health(push_world)
    assert (status, report["database"]) == (503, "writes_failing")
    assert report["last_write_failure"]["error"] == "attempt to write a readonly database"  # type: ignore[index]

    writes = push_world.storage.db.writes
    failed_at = writes.last_failure.at  # type: ignore[union-attr]
    await asyncio.sleep(0.3)  # the probe is due, and fails like everything else
    status, report = await _health(push_world)
    assert (status, report["database"]) == (503, "writes_failing")
    assert writes.last_failure.at > failed_at  # type: ignore[union-attr]  # the probe's own failure

    await _pragma(push_world, "query_only = 0")
    async with asyncio.timeout(10):
        while (await _health(push_world))[0] != 200:
            await asyncio.sleep(0.05)
    status, report = await _health(push_world)
    assert report["database"] == "ok"
    assert report["last_write_failure"]["ongoing"] is False  # type: ignore[index]
    assert await push_world.pipeline.storage.db.conn.execute_fetchall(
        "SELECT value FROM push_meta WHERE key = 'write_probe'"
    )


async def test_outbox_depth_and_age_show_a_stuck_channel(push_world: PushWorld) -> None:
    await push_world.restart(reopen_storage=False, stale_after_s=0.2)
    push_world.fake.fail_channel(PANIC, 503)
    await push_world.post(envelope("EVENT_UNIT_PANIC", {"identIds": [57]}))
    await push_world.post(envelope("EVENT_UNIT_PANIC", {"identIds": [58]}))
    async with asyncio.timeout(10):
        while (await _health(push_world))[1]["outbox_depth"] != 2:
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    status, report = await _health(push_world)
    assert status == 503
    assert report["outbox_depth"] == 2
    assert isinstance(report["oldest_pending_age_s"], float) and report["oldest_pending_age_s"] >= 0.2
    push_world.fake.fail_channel(PANIC, None)
    await push_world.settle()
    status, report = await _health(push_world)
    assert (status, report["outbox_depth"]) == (200, 0)


async def test_metrics_count_events_auth_failures_deliveries_depth_and_latency(push_world: PushWorld) -> None:
    push_world.fake.inject(PANIC, 503)
    await push_world.post(envelope("EVENT_UNIT_PANIC", {"identIds": [57]}))
    await push_world.post(envelope("EVENT_UNIT_PANIC", {"identIds": [57]}, key="nope"))
    await push_world.post(envelope("EVENT_SOMETHING_ELSE", {"a": 1}))
    await push_world.settle()
    status, text = await push_world.get("/metrics")
    assert status == 200
    for line in (
        'sonoran_push_events_received_total{outcome="accepted",type="EVENT_UNIT_PANIC"} 1.0',
        'sonoran_push_events_received_total{outcome="unauthorized",type="NONE"} 1.0',
        'sonoran_push_events_received_total{outcome="unknown_type",type="OTHER"} 1.0',
        'sonoran_push_events_processed_total{outcome="posted",type="EVENT_UNIT_PANIC"} 1.0',
        "sonoran_push_auth_failures_total 1.0",
        # Two guilds share the community: two messages sent, one of them after a retry.
        'sonoran_push_deliveries_total{kind="message",outcome="sent"} 2.0',
        'sonoran_push_deliveries_total{kind="message",outcome="retried"} 1.0',
        "sonoran_push_outbox_depth 0.0",
        "sonoran_push_delivery_latency_seconds_count 2.0",
        'sonoran_push_delivery_latency_seconds_bucket{le="+Inf"} 2.0',
    ):
        assert line in text, line


async def test_each_pipeline_has_its_own_registry() -> None:
    first, second = PushMetrics(), PushMetrics()
    first.received("EVENT_911", "accepted")
    assert b'type="EVENT_911"' in first.render()
    assert b'type="EVENT_911"' not in second.render()
