"""The admin reply formatters, as pure functions: plan tables, push-event instructions, samples, status."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.cad.tiers import Tier
from bot.formatting.admin import (
    PLAN_FEATURES,
    TEST_ALERT_LABEL,
    CadProbe,
    PushTarget,
    QueueStats,
    StatusReport,
    StorageFailure,
    WebsocketState,
    duration_text,
    feature_plan,
    ping_message,
    plan_features,
    push_instructions,
    sample_alert_embed,
    status_embed,
    toggle_message,
)
from bot.formatting.context import Colour
from bot.formatting.limits import clamp_embed
from bot.storage.models import Category, PushTransport

NOW = datetime(2025, 3, 14, 21, 14, 5, tzinfo=UTC)


def test_feature_plans_follow_the_tier_table() -> None:
    plans = {label: feature_plan(types) for label, types in PLAN_FEATURES}
    assert plans["911 calls"] == plans["Panic button"] == plans["Unit status"] == Tier.STANDARD
    assert plans["Lookups"] == plans["Call lists"] == plans["Unit lists"] == plans["Dispatch"] == Tier.PLUS
    assert plans["Map blips"] == Tier.PRO


@pytest.mark.parametrize(
    ("tier", "allowed", "locked"),
    [
        (Tier.FREE, 0, 9),
        (Tier.STARTER, 0, 9),
        (Tier.STANDARD, 4, 5),
        (Tier.PLUS, 8, 1),
        (Tier.PRO, 9, 0),
        (Tier.SONORAN_ONE, 9, 0),
        (Tier(5), 9, 0),  # an unknown plan number above Pro still unlocks what Pro does
    ],
)
def test_plan_features_split_what_works_from_what_needs_more(tier: Tier, allowed: int, locked: int) -> None:
    works, needs = plan_features(tier)
    assert (len(works), len(needs)) == (allowed, locked)
    assert all(needed > tier for _, needed in needs)


def test_instructions_for_an_https_address_only_offer_forwarding() -> None:
    target = PushTarget(listener_enabled=True, listener_port=8085, public_url="https://bot.example.org")

    option_a, option_b, no_port = (field["value"] for field in push_instructions(target, 1))
    assert "push: websocket" in no_port

    assert "only posts plain `http://IP:port/sonorancad/event`" in option_a
    assert 'pushEventForwardUrl = "https://bot.example.org/sonorancad/event"' in option_b


def test_instructions_for_an_address_with_a_path_only_offer_forwarding() -> None:
    target = PushTarget(listener_enabled=True, listener_port=8085, public_url="http://203.0.113.7/cad/")

    option_a, option_b, no_port = (field["value"] for field in push_instructions(target, 1))
    assert "push: websocket" in no_port

    assert "use FiveM forwarding" in option_a
    assert 'pushEventForwardUrl = "http://203.0.113.7/cad/sonorancad/event"' in option_b


def test_instructions_default_to_port_80_for_a_plain_http_address() -> None:
    target = PushTarget(listener_enabled=True, listener_port=8085, public_url="http://203.0.113.7")

    option_a = push_instructions(target, 3)[0]["value"]

    assert "edit server **3**: set its IP to `203.0.113.7` and its Listener Port to `80`" in option_a


def test_instructions_fit_discord_field_limits() -> None:
    target = PushTarget(
        listener_enabled=True, listener_port=65535, public_url="http://" + "a" * 200 + ":65535"
    )
    for field in push_instructions(target, 2_147_483_647):
        assert len(field["value"]) <= 1024


@pytest.mark.parametrize("category", list(Category))
def test_every_category_has_a_labelled_sample_built_by_the_real_formatter(category: Category) -> None:
    embed = sample_alert_embed(category, "Los Santos RP", NOW)

    assert embed["title"].startswith("🧪 TEST · ")
    assert embed["author"] == {"name": TEST_ALERT_LABEL}
    assert embed["footer"]["text"].startswith(TEST_ALERT_LABEL)
    assert embed["timestamp"] == NOW.isoformat()  # set by the push formatter, so it went through it
    assert clamp_embed(embed) == embed


def test_status_embed_says_unknown_rather_than_guessing() -> None:
    report = StatusReport(cad=CadProbe(state="ok", tier=Tier.PLUS, latency_ms=87.4), listener_enabled=True)

    fields = {field["name"]: field["value"] for field in status_embed(report)["fields"]}

    assert fields["Sonoran CAD"] == "✅ answered in 87 ms · plan: Sonoran CAD Plus"
    assert (
        fields["Push events"]
        == "Transport: http\nListener: on\nLast event received for this community: unknown"
    )
    assert fields["Alerts waiting to be posted"] == "This server: unknown\nWhole bot: unknown"


def test_status_embed_warns_when_database_writes_fail() -> None:
    report = StatusReport(
        cad=CadProbe(state="ok"),
        listener_enabled=True,
        storage_failure=StorageFailure(error="database or disk is full", age_s=3),
    )

    embed = status_embed(report)
    push = {field["name"]: field["value"] for field in embed["fields"]}["Push events"]

    assert push.endswith(
        "\n⚠️ The database refuses writes (database or disk is full, last 3 s ago): events are answered 503 "
        "so the CAD sends them again. Free disk space or fix the file's permissions."
    )
    assert embed["color"] == Colour.AMBER


def test_status_embed_shows_queue_ages() -> None:
    report = StatusReport(
        cad=CadProbe(state="failed", problem="no answer within 30 s"),
        listener_enabled=True,
        guild_queue=QueueStats(depth=3, oldest_age_s=150),
        bot_queue=QueueStats(depth=0),
    )

    embed = status_embed(report)
    fields = {field["name"]: field["value"] for field in embed["fields"]}

    assert fields["Sonoran CAD"] == "❌ no answer within 30 s"
    assert fields["Alerts waiting to be posted"] == (
        "This server: 3 waiting, oldest waiting 2 min\nWhole bot: nothing waiting"
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.2, "under 1 s"),
        (45, "45 s"),
        (150, "2 min"),
        (3 * 3600, "3 h"),
        (5 * 86_400, "5 days"),
        (-3, "under 1 s"),
    ],
)
def test_duration_text(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


# Every category label with the verb that agrees with it: "Unit activity" is singular, the rest plural.
CATEGORY_SENTENCES = {
    Category.CALLS_911: ("911 calls are", "go to", "have no channel", "no longer ping"),
    Category.PANIC: ("Panic alerts are", "go to", "have no channel", "no longer ping"),
    Category.DISPATCH: ("Dispatch calls are", "go to", "have no channel", "no longer ping"),
    Category.UNITS: ("Unit activity is", "goes to", "has no channel", "no longer pings"),
    Category.RECORDS: ("Records are", "go to", "have no channel", "no longer ping"),
    Category.OTHER: ("Other CAD events are", "go to", "have no channel", "no longer ping"),
}


@pytest.mark.parametrize("category", list(Category))
def test_toggle_and_ping_replies_agree_with_every_category_label(category: Category) -> None:
    subject, goes, has_none, no_ping = CATEGORY_SENTENCES[category]

    assert toggle_message(category, False, 1).startswith(f"{subject} switched off: ")
    assert toggle_message(category, True, 42) == f"{subject} switched on and {goes} <#42>."
    assert toggle_message(category, True, None).startswith(f"{subject} switched on, but {has_none} yet")
    assert ping_message(category, None).endswith(f"{no_ping} a role.")


def _push_field(report: StatusReport) -> str:
    return {field["name"]: field["value"] for field in status_embed(report)["fields"]}["Push events"]


def test_status_shows_a_healthy_websocket_session_and_its_last_gap() -> None:
    since = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
    state = WebsocketState(
        connected=True,
        authenticated=True,
        since=since,
        reconnects=2,
        last_event_at=since,
        last_gap_s=12.0,
        last_gap_started_at=since,
        guilds_sharing=2,
    )
    report = StatusReport(
        cad=CadProbe(state="ok"), listener_enabled=False, transport=PushTransport.WEBSOCKET, websocket=state
    )

    stamp = f"<t:{int(since.timestamp())}:R>"
    assert _push_field(report) == (
        "Transport: websocket (Sonoran's hub, shared by 2 servers)\n"
        f"✅ connected and authenticated since {stamp} · reconnects: 2\n"
        f"Last time down: 12 s from {stamp} (open calls were refreshed after it)\n"
        f"Last event over the websocket: {stamp}"
    )
    assert status_embed(report)["color"] == Colour.GREEN


def test_status_shows_a_websocket_session_that_is_down_and_why() -> None:
    since = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
    state = WebsocketState(
        connected=False,
        authenticated=False,
        reconnects=5,
        last_error="authentication refused: Invalid community ID or API key. @everyone",
        last_error_at=since,
        down_since=since,
    )
    report = StatusReport(
        cad=CadProbe(state="ok"), listener_enabled=True, transport=PushTransport.WEBSOCKET, websocket=state
    )

    text = _push_field(report)
    assert "❌ not connected · reconnects: 5" in text
    assert "⚠️ Down since" in text and "events sent meanwhile are lost" in text
    assert "Last error (" in text and "Invalid community ID or API key." in text
    assert "@everyone" not in text  # the hub's text is neutralised
    assert status_embed(report)["color"] == Colour.AMBER
    no_session = StatusReport(
        cad=CadProbe(state="ok"), listener_enabled=True, transport=PushTransport.WEBSOCKET
    )
    assert "not open yet" in _push_field(no_session)
