"""Replies of the admin commands (/setup, /config, /status): pure functions from facts to text and embeds.

Nothing here can see a CAD API key: the models passed in only say whether one is set. Channels and roles are
shown as mentions, which render as names inside embeds and ephemeral replies without pinging anyone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from bot.cad.events import parse_event
from bot.cad.tiers import MIN_TIER, Tier
from bot.formatting.context import Colour, FormatContext
from bot.formatting.events import format_event
from bot.formatting.limits import EmbedDict, clamp_embed
from bot.formatting.text import neutralise, truncate
from bot.storage.models import Category, CommandGroup, GuildConfig, PushTransport, RouteConfig

PUSH_EVENT_PATH = "/sonorancad/event"
TEST_ALERT_LABEL = "Test alert from /config test"

CATEGORY_LABELS: Mapping[Category, str] = {
    Category.CALLS_911: "911 calls",
    Category.PANIC: "Panic alerts",
    Category.DISPATCH: "Dispatch calls",
    Category.UNITS: "Unit activity",
    Category.RECORDS: "Records",
    Category.OTHER: "Other CAD events",
}
# Labels that take a singular verb ("Unit activity is ..."); the others are plural ("Records are ...").
_SINGULAR_CATEGORIES: frozenset[Category] = frozenset({Category.UNITS})

# Only a new 911 call and an activated panic sound the route's role (see bot.push.processor.pings_role).
PINGABLE_CATEGORIES: frozenset[Category] = frozenset({Category.CALLS_911, Category.PANIC})

GROUP_LABELS: Mapping[CommandGroup, str] = {
    CommandGroup.CALLS_911: "911 calls",
    CommandGroup.UNITS: "unit commands",
    CommandGroup.LOOKUP: "lookups",
    CommandGroup.MAP: "map blips",
    CommandGroup.DISPATCH: "dispatch commands",
}

# Who may use a group when no role is set (mirrors the permission model in cogs/_shared.py).
GROUP_DEFAULT_ACCESS: Mapping[CommandGroup, str] = {
    CommandGroup.CALLS_911: "everyone",
    CommandGroup.UNITS: "members whose CAD account the bot knows (Discord link in the CAD, or /link)",
    CommandGroup.LOOKUP: "server admins only",
    CommandGroup.MAP: "server admins only",
    CommandGroup.DISPATCH: "server admins only",
}

PERMISSION_LABELS: Mapping[str, str] = {
    "view_channel": "View Channel",
    "send_messages": "Send Messages",
    "embed_links": "Embed Links",
    "read_message_history": "Read Message History",
    "mention_everyone": "Mention @everyone, @here and All Roles",
}

# What a community can use, and the CAD requests each feature makes: the plan a feature needs is the highest
# MIN_TIER among them, so this list can never disagree with the tier table the client enforces.
PLAN_FEATURES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("911 calls", ("CALL_911", "REMOVE_911")),
    ("Panic button", ("UNIT_PANIC",)),
    ("Unit status", ("UNIT_STATUS",)),
    ("Account linking", ("VERIFY_SECRET",)),
    ("Lookups", ("LOOKUP", "LOOKUP_INT")),
    ("Call lists", ("GET_CALLS",)),
    ("Unit lists", ("GET_ACTIVE_UNITS",)),
    ("Dispatch", ("NEW_DISPATCH", "ATTACH_UNIT", "DETACH_UNIT", "ADD_CALL_NOTE")),
    ("Map blips", ("GET_BLIPS", "ADD_BLIP", "MODIFY_BLIP", "REMOVE_BLIP")),
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


# ---------------------------------------------------------------------------------------------- plans


def feature_plan(request_types: Iterable[str]) -> Tier:
    """The lowest plan on which every one of ``request_types`` works."""
    return max((MIN_TIER[request_type] for request_type in request_types), default=Tier.FREE)


def plan_features(tier: Tier) -> tuple[list[str], list[tuple[str, Tier]]]:
    """(features the plan allows, [(feature the plan doesn't allow, plan it needs)])."""
    allowed: list[str] = []
    locked: list[tuple[str, Tier]] = []
    for label, request_types in PLAN_FEATURES:
        needed = feature_plan(request_types)
        if tier >= needed:
            allowed.append(label)
        else:
            locked.append((label, needed))
    return allowed, locked


def _plan_fields(tier: Tier, *, cad_decides: bool = False) -> list[dict[str, Any]]:
    """``cad_decides`` (CAD v2): the plan table is only a hint; the CAD accepts or refuses each request."""
    allowed, locked = plan_features(tier)
    fields = [
        {
            "name": "Should work on your plan" if cad_decides else "Works on your plan",
            "value": "\n".join(f"✅ {label}" for label in allowed) or "Nothing yet: the API needs Standard.",
            "inline": True,
        }
    ]
    if locked:
        fields.append(
            {
                "name": "Likely needs a higher plan (the CAD decides)"
                if cad_decides
                else "Needs a higher plan",
                "value": "\n".join(f"🔒 {label}: {needed.display_name}" for label, needed in locked),
                "inline": True,
            }
        )
    return fields


# ---------------------------------------------------------------------------------------------- /setup


class PushTarget(_Frozen):
    """Where this bot listens for push events, as the bot host configured it."""

    listener_enabled: bool
    listener_port: int
    public_url: str | None = None


def _direct_address(public_url: str) -> tuple[str, int] | None:
    """(IP or host, port) when the CAD can post to ``public_url`` itself: it only speaks plain http to
    ``http://{ip}:{port}/sonorancad/event``, so an https URL or one with a path needs FiveM forwarding."""
    parts = urlsplit(public_url)
    if parts.scheme != "http" or not parts.hostname or parts.path.strip("/"):
        return None
    try:
        port = parts.port or 80
    except ValueError:
        return None
    return parts.hostname, port


WEBSOCKET_CHOSEN = (
    "Push events come over **Sonoran's websocket**: the bot connects out to the CAD (TLS), so nothing needs an "
    "open port and there is nothing to enter in the CAD. Keep this only while **no game server** (FiveM) uses "
    "CAD server **{server_id}**: two sessions on one server id may take events away from the game server. If "
    "one does, run /setup again with `push: http` and forward from FiveM instead."
)
HTTP_CHOSEN_HINT = (
    "No game server on this CAD server id (ER:LC, Discord-only)? Run /setup with `push: websocket` instead: "
    "no open port, and the key never travels in plain HTTP."
)


def push_instructions(
    target: PushTarget, server_id: int, *, transport: PushTransport = PushTransport.HTTP
) -> list[dict[str, Any]]:
    """Embed fields telling an admin exactly what to enter in the CAD so push events reach this bot."""
    if transport == PushTransport.WEBSOCKET:
        return [
            {
                "name": "Live alerts: websocket",
                "value": WEBSOCKET_CHOSEN.format(server_id=server_id),
                "inline": False,
            }
        ]
    if not target.listener_enabled:
        return [
            {
                "name": "Live alerts",
                "value": (
                    "This bot's push-event listener is switched off (`[server] enabled = false` in its "
                    "config), so CAD events sent over HTTP won't reach it. Ask the bot host to switch it on, "
                    "or, if no game server uses this CAD server id, run /setup with `push: websocket`. Slash "
                    "commands work either way."
                ),
                "inline": False,
            }
        ]
    where = f"In the CAD open **Admin > Advanced > In-Game Integration** and edit server **{server_id}**"
    forwarding_note = (
        "Use this if a FiveM server with the `sonorancad` resource runs on that CAD server: it writes its "
        "own address into the server entry at start-up, so forward from it instead. In its config set "
    )
    if target.public_url:
        url = target.public_url.rstrip("/") + PUSH_EVENT_PATH
        direct = _direct_address(target.public_url)
        if direct is None:
            option_a = (
                f"The CAD itself only posts plain `http://IP:port{PUSH_EVENT_PATH}`, and this bot's public "
                f"address is `{target.public_url}`, so use FiveM forwarding (below). To use the server entry "
                "instead, the bot host can set `[server] public_url` to `http://<public IP>:<port>`."
            )
        else:
            host, port = direct
            option_a = (
                f"{where}: set its IP to `{host}` and its Listener Port to `{port}` (if Differing Outbound "
                f"IP is on, put `{host}` in the Outbound IP). The CAD then posts events to `{url}`."
            )
        option_b = f'{forwarding_note}`enablePushEventForwarding = true` and `pushEventForwardUrl = "{url}"`.'
    else:
        url = f"http://<this bot's public IP>:{target.listener_port}{PUSH_EVENT_PATH}"
        option_a = (
            f"{where}: set its IP to the public IP address of the machine this bot runs on and its Listener "
            f"Port to `{target.listener_port}` (the bot's `[server] port`); the CAD then posts to `{url}`. "
            "The bot host can set `[server] public_url` so /setup shows the exact address."
        )
        option_b = f'{forwarding_note}`enablePushEventForwarding = true` and `pushEventForwardUrl = "{url}"`.'
    return [
        {"name": "Live alerts, option A: the CAD server entry", "value": option_a, "inline": False},
        {"name": "Live alerts, option B: FiveM forwarding", "value": option_b, "inline": False},
        {"name": "Live alerts without an open port", "value": HTTP_CHOSEN_HINT, "inline": False},
    ]


def setup_success_embed(
    community_id: str,
    server_id: int,
    tier: Tier,
    target: PushTarget,
    *,
    plan_name: str | None = None,
    api_version: int = 1,
    transport: PushTransport = PushTransport.HTTP,
) -> EmbedDict:
    """``plan_name``: the plan as the CAD named it (v2), shown instead of the table's name for ``tier``."""
    plan = (
        neutralise(truncate(plan_name.strip(), 80)) if plan_name and plan_name.strip() else tier.display_name
    )
    embed: EmbedDict = {
        "title": "Connected to Sonoran CAD",
        "color": Colour.GREEN,
        "description": (
            f"Community `{community_id}`, CAD server {server_id}, API v{api_version}. The CAD accepted the "
            f"credentials; this community is on **{plan}**.\n"
            "Next: pick channels with `/config route`, then check them with `/config test`."
        ),
        "fields": [
            *_plan_fields(tier, cad_decides=api_version >= 2),
            *push_instructions(target, server_id, transport=transport),
        ],
        "footer": {
            "text": "The API key is stored encrypted and is never shown again. Events are matched by it."
        },
    }
    return clamp_embed(embed)


SETUP_REJECTED = (
    "The CAD rejected those credentials: check the community ID and API key under Admin > In-Game Integration "
    "> API in the CAD, then run /setup again. Nothing was saved."
)


def setup_unreachable(reason: str) -> str:
    return f"Couldn't check those credentials: {reason} Nothing was saved; run /setup again in a few minutes."


# ---------------------------------------------------------------------------------------------- /config


def category_label(category: Category) -> str:
    return CATEGORY_LABELS[Category(category)]


def _is_are(category: Category) -> str:
    """The verb that agrees with :func:`category_label`: "Unit activity is", "Panic alerts are"."""
    return "is" if Category(category) in _SINGULAR_CATEGORIES else "are"


def _channel(channel_id: int | None) -> str:
    return f"<#{channel_id}>" if channel_id is not None else "no channel"


def _role(role_id: int | None) -> str:
    return f"<@&{role_id}>" if role_id is not None else "none"


def missing_permissions_text(missing: Sequence[str]) -> str:
    return ", ".join(PERMISSION_LABELS.get(name, name.replace("_", " ").title()) for name in missing)


def route_set_message(
    category: Category, channel_id: int | None, missing: Sequence[str], enabled: bool
) -> str:
    label = category_label(category)
    if channel_id is None:
        return f"{label} won't be posted anywhere now (no channel)."
    message = f"{label} will be posted in <#{channel_id}>."
    if not enabled:
        message += (
            f" The route is switched off, though: turn it on with `/config toggle {category.value} on`."
        )
    if missing:
        message += (
            f"\n⚠️ I can't post there yet: I'm missing **{missing_permissions_text(missing)}** in that channel. "
            "Grant them to my role, then run `/config test`."
        )
    return message


def toggle_message(category: Category, enabled: bool, channel_id: int | None) -> str:
    label = category_label(category)
    verb = _is_are(category)
    if not enabled:
        return f"{label} {verb} switched off: nothing of that kind is posted until you turn it back on."
    if channel_id is None:
        has = "has" if verb == "is" else "have"
        return (
            f"{label} {verb} switched on, but {has} no channel yet: "
            f"pick one with `/config route {category.value}`."
        )
    goes = "goes" if verb == "is" else "go"
    return f"{label} {verb} switched on and {goes} to <#{channel_id}>."


def ping_refused_message(category: Category) -> str:
    return (
        f"{category_label(category)} can't ping a role: only new 911 calls and panic alerts ping, so pick "
        "`911` or `panic`."
    )


def ping_message(category: Category, role_id: int | None) -> str:
    label = category_label(category)
    if role_id is None:
        pings = "pings" if _is_are(category) == "is" else "ping"
        return f"{label} no longer {pings} a role."
    return f"{label} will ping <@&{role_id}>."


def role_message(group: CommandGroup, role_id: int | None) -> str:
    label = GROUP_LABELS[group]
    if role_id is None:
        return (
            f"No role is required for {label} any more: back to the default ({GROUP_DEFAULT_ACCESS[group]})."
        )
    return f"Only members with <@&{role_id}> (and server admins) can use {label} now."


def cooldown_message(seconds: int) -> str:
    if seconds == 0:
        return "The /911 cooldown is off: members can send calls back to back."
    return f"Members can send one /911 call every {seconds} s."


RESET_PROMPT = (
    "This forgets everything about this server: the CAD connection (community ID and API key), every route, "
    "ping and command role, the /911 cooldown, and all linked accounts. Members would have to /link again. "
    "Are you sure?"
)
RESET_DONE = "Done: this server's CAD connection, routes, roles and linked accounts are gone. Run /setup to start again."
RESET_NOTHING = "There was nothing stored for this server, so nothing changed."
RESET_CANCELLED = "Reset cancelled; nothing changed."
RESET_EXPIRED = "Reset cancelled: no answer within a minute; nothing changed."
RESET_NOT_YOURS = "Only the admin who ran /config reset can answer this."


class ConfigOverview(_Frozen):
    """Everything /config show prints; ``config`` is None for a server that never ran /setup."""

    config: GuildConfig | None
    tier: Tier | None
    routes: dict[Category, RouteConfig]
    roles: dict[CommandGroup, int | None]
    linked_members: int


def _timestamp(moment: datetime) -> str:
    return f"<t:{int(moment.timestamp())}:R>"


def route_line(route: RouteConfig) -> str:
    parts = [_channel(route.channel_id), "on" if route.enabled else "**off**"]
    if route.category in PINGABLE_CATEGORIES:
        parts.append(f"ping {_role(route.ping_role_id)}")
    line = " · ".join(parts)
    if route.last_error:
        when = f" ({_timestamp(route.last_error_at)})" if route.last_error_at else ""
        line += f"\n⚠️ last error{when}: {route.last_error}"
    return line


def _transport_text(transport: PushTransport) -> str:
    if transport == PushTransport.WEBSOCKET:
        return "websocket (the bot's own session on Sonoran's hub)"
    return "http (the listener, or FiveM's pushEventForwardUrl)"


def config_show_embed(overview: ConfigOverview) -> EmbedDict:
    config = overview.config
    if config is None or not config.is_configured:
        connection = "Not connected: run `/setup`."
    else:
        plan = (
            overview.tier.display_name if overview.tier is not None else "not checked recently (see /status)"
        )
        connection = (
            f"Community ID: `{config.community_id}`\nCAD server: {config.server_id}\n"
            f"API key: {'set' if config.has_api_key else 'not set'}\nPlan: {plan}\n"
            f"Push events: {_transport_text(config.push_transport)}"
        )
    cooldown = (
        config.cooldown_911_s if config is not None else GuildConfig.model_fields["cooldown_911_s"].default
    )
    fields: list[dict[str, Any]] = [{"name": "Sonoran CAD", "value": connection, "inline": False}]
    for category in Category:
        route = overview.routes.get(category) or RouteConfig(guild_id=0, category=category)
        fields.append({"name": category_label(category), "value": route_line(route), "inline": False})
    role_lines = [
        f"{GROUP_LABELS[group]}: {_role(role_id) if role_id is not None else GROUP_DEFAULT_ACCESS[group]}"
        for group, role_id in overview.roles.items()
    ]
    fields.append(
        {"name": "Who can use commands", "value": "\n".join(role_lines) or "defaults", "inline": False}
    )
    fields.append(
        {
            "name": "Other",
            "value": (
                f"/911 cooldown: {'off' if cooldown == 0 else f'{cooldown} s'}\n"
                f"Linked members: {overview.linked_members}"
            ),
            "inline": False,
        }
    )
    return clamp_embed({"title": "Bot configuration", "color": Colour.INFO, "fields": fields})


# ---------------------------------------------------------------------------------------------- /config test

# One realistic event per category, in the CAD's own wire shape, so the sample goes through the real parser
# and the real formatter: what admins see is exactly what a live event of that kind looks like.
_SAMPLE_ENVELOPES: Mapping[Category, tuple[str, dict[str, Any]]] = {
    Category.CALLS_911: (
        "EVENT_911",
        {
            "call": {
                "callId": 1042,
                "isEmergency": True,
                "caller": "Maria Lopez",
                "location": "Alta St / Integrity Way",
                "description": "Two cars collided, one driver not responding",
            },
            "metaData": {"postal": "7012"},
        },
    ),
    Category.PANIC: ("EVENT_UNIT_PANIC", {"identIds": [57], "isPanic": True}),
    Category.DISPATCH: (
        "EVENT_DISPATCH_NEW",
        {
            "dispatch": {
                "callId": 311,
                "origin": 0,
                "status": 1,
                "priority": 2,
                "address": "Legion Square",
                "postal": "7153",
                "title": "Traffic Stop",
                "code": "10-38 - Traffic Stop",
                "description": "Silver sedan, plate 8KXP214",
                "notes": [],
                "idents": [57],
            }
        },
    ),
    Category.UNITS: ("EVENT_UNIT_STATUS", {"identIds": [57], "status": 3}),
    Category.RECORDS: (
        "EVENT_RECORD_ADD",
        {
            "record": {
                "recordTypeId": 3,
                "id": 884,
                "name": "Warrant",
                "type": 2,
                "sections": [
                    {
                        "category": 0,
                        "label": "Subject",
                        "fields": [
                            {"type": "input", "label": "First Name", "value": "Dale", "uid": "first"},
                            {"type": "input", "label": "Last Name", "value": "Whitfield", "uid": "last"},
                        ],
                    }
                ],
            }
        },
    ),
    Category.OTHER: (
        "EVENT_STATION_ALERT",
        {
            "locations": [{"name": "Fire Station 7", "open": ["Bay 1"], "close": []}],
            "message": "Engine 7, structure fire, 1200 Vespucci Blvd",
        },
    ),
}
_SAMPLE_UNIT_NAMES: Mapping[int, str] = {57: "1A-12 Jordan Reyes"}


def sample_alert_embed(category: Category, community_label: str, now: datetime) -> EmbedDict:
    """A sample of what ``category`` looks like when the CAD pushes it, unmistakably marked as a test."""
    event_type, data = _SAMPLE_ENVELOPES[Category(category)]
    outcome = parse_event(event_type, data, {"type": event_type, "data": data})
    context = FormatContext(community_label=community_label, unit_names=_SAMPLE_UNIT_NAMES, now=now)
    formatted = format_event(outcome.events[0], context) if outcome.events else None
    embed: EmbedDict = (
        dict(formatted) if formatted else {"title": category_label(category), "color": Colour.GREY}
    )
    embed["title"] = f"🧪 TEST · {embed.get('title', category_label(category))}"
    embed["author"] = {"name": TEST_ALERT_LABEL}
    embed["footer"] = {"text": f"{TEST_ALERT_LABEL}: sample data, not a real CAD event"}
    return clamp_embed(embed)


class RouteCheck(_Frozen):
    """The outcome of posting a sample to one route."""

    category: Category
    channel_id: int
    enabled: bool
    posted: bool
    problem: str | None = None


def route_checks_embed(checks: Sequence[RouteCheck]) -> EmbedDict:
    if not checks:
        return clamp_embed(
            {
                "title": "Route test",
                "color": Colour.AMBER,
                "description": "No channels are set yet: pick them with `/config route`, then run this again.",
            }
        )
    lines = []
    for check in checks:
        head = f"**{category_label(check.category)}** → <#{check.channel_id}>"
        if check.posted:
            line = f"✅ {head}: posted"
            if not check.enabled:
                line += f" (the route is off; `/config toggle {check.category.value} on` to use it)"
        else:
            line = f"❌ {head}: {check.problem}"
        lines.append(line)
    failed = sum(not check.posted for check in checks)
    colour = Colour.GREEN if failed == 0 else Colour.RED
    summary = "Every route works." if failed == 0 else f"{failed} of {len(checks)} routes can't be posted to."
    return clamp_embed(
        {"title": "Route test", "color": colour, "description": summary + "\n\n" + "\n".join(lines)}
    )


def missing_permissions_problem(channel_name: str, missing: Sequence[str]) -> str:
    return (
        f"I'm missing **{missing_permissions_text(missing)}** in #{channel_name}; grant them to my role in "
        "that channel's permissions"
    )


def deleted_channel_problem(channel_id: int) -> str:
    return f"channel {channel_id} no longer exists (deleted?); pick another with `/config route`"


# ---------------------------------------------------------------------------------------------- /status


class CadProbe(_Frozen):
    """How the CAD answered a GET_VERSION just now."""

    state: Literal["ok", "failed", "not_configured"]
    tier: Tier | None = None
    latency_ms: float | None = None
    problem: str | None = None


class QueueStats(_Frozen):
    depth: int
    oldest_age_s: float | None = None


class StorageFailure(_Frozen):
    """Database writes fail now (disk full, read-only file): SQLite's message and how long ago it last failed."""

    error: str
    age_s: float


class WebsocketState(_Frozen):
    """A guild's websocket session as /status shows it (no key, no token: every text is safe to show)."""

    connected: bool
    authenticated: bool
    since: datetime | None = None  # authenticated since, else connected since
    reconnects: int = 0
    last_event_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    down_since: datetime | None = None
    last_gap_s: float | None = None
    last_gap_started_at: datetime | None = None
    guilds_sharing: int = 1


class StatusReport(_Frozen):
    """What /status shows. ``None`` means the bot cannot tell (shown as "unknown")."""

    cad: CadProbe
    listener_enabled: bool
    transport: PushTransport = PushTransport.HTTP
    websocket: WebsocketState | None = None  # None on a websocket guild: no session (yet)
    last_event_at: datetime | None = None
    guild_queue: QueueStats | None = None
    bot_queue: QueueStats | None = None
    failed_routes: list[RouteConfig] = []
    storage_failure: StorageFailure | None = None


def duration_text(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 1:
        return "under 1 s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86_400:.0f} days"


def _queue_text(stats: QueueStats | None) -> str:
    if stats is None:
        return "unknown"
    if stats.depth == 0:
        return "nothing waiting"
    oldest = f", oldest waiting {duration_text(stats.oldest_age_s)}" if stats.oldest_age_s is not None else ""
    return f"{stats.depth} waiting{oldest}"


def _cad_text(probe: CadProbe) -> str:
    if probe.state == "not_configured":
        return "Not connected: run `/setup`."
    if probe.state == "failed":
        return f"❌ {probe.problem or 'unreachable'}"
    latency = f" in {probe.latency_ms:.0f} ms" if probe.latency_ms is not None else ""
    plan = f" · plan: {probe.tier.display_name}" if probe.tier is not None else ""
    return f"✅ answered{latency}{plan}"


def _websocket_text(state: WebsocketState | None) -> str:
    if state is None:
        return "Transport: websocket. The session is not open yet; the bot opens it within 30 s of /setup."
    shared = f", shared by {state.guilds_sharing} servers" if state.guilds_sharing > 1 else ""
    lines = [f"Transport: websocket (Sonoran's hub{shared})"]
    since = f" since {_timestamp(state.since)}" if state.since is not None else ""
    if state.authenticated:
        lines.append(f"✅ connected and authenticated{since} · reconnects: {state.reconnects}")
    elif state.connected:
        lines.append(f"⚠️ connected{since} but not authenticated · reconnects: {state.reconnects}")
    else:
        lines.append(f"❌ not connected · reconnects: {state.reconnects}")
    if state.down_since is not None:
        lines.append(
            f"⚠️ Down since {_timestamp(state.down_since)}: events sent meanwhile are lost; open calls are "
            "refreshed from the CAD when it is back."
        )
    elif state.last_gap_s is not None:
        started = f" from {_timestamp(state.last_gap_started_at)}" if state.last_gap_started_at else ""
        lines.append(
            f"Last time down: {duration_text(state.last_gap_s)}{started} (open calls were refreshed after it)"
        )
    last = _timestamp(state.last_event_at) if state.last_event_at is not None else "none yet"
    lines.append(f"Last event over the websocket: {last}")
    if state.last_error is not None:
        when = f" ({_timestamp(state.last_error_at)})" if state.last_error_at is not None else ""
        lines.append(f"Last error{when}: {truncate(neutralise(state.last_error), 200)}")
    return "\n".join(lines)


def _push_text(report: StatusReport) -> str:
    if report.transport == PushTransport.WEBSOCKET:
        return _websocket_text(report.websocket)
    if report.listener_enabled:
        last = _timestamp(report.last_event_at) if report.last_event_at is not None else "unknown"
        return f"Transport: http\nListener: on\nLast event received for this community: {last}"
    return "Transport: http\nListener: off on this bot (`[server] enabled = false`), so no CAD events arrive."


def status_embed(report: StatusReport) -> EmbedDict:
    push = _push_text(report)
    if report.storage_failure is not None:
        push += (
            f"\n⚠️ The database refuses writes ({truncate(report.storage_failure.error, 120)}, last "
            f"{duration_text(report.storage_failure.age_s)} ago): events are answered 503 so the CAD sends them "
            "again. Free disk space or fix the file's permissions."
        )
    queue = f"This server: {_queue_text(report.guild_queue)}\nWhole bot: {_queue_text(report.bot_queue)}"
    if report.failed_routes:
        failed = "\n".join(
            f"❌ **{category_label(route.category)}** → {_channel(route.channel_id)}: {route.last_error}"
            + (f" ({_timestamp(route.last_error_at)})" if route.last_error_at else "")
            for route in report.failed_routes
        )
    else:
        failed = "No failures recorded."
    websocket_down = report.transport == PushTransport.WEBSOCKET and not (
        report.websocket is not None and report.websocket.authenticated
    )
    healthy = (
        report.cad.state == "ok"
        and not report.failed_routes
        and report.storage_failure is None
        and not websocket_down
    )
    return clamp_embed(
        {
            "title": "Bot status",
            "color": Colour.GREEN if healthy else Colour.AMBER,
            "fields": [
                {"name": "Sonoran CAD", "value": _cad_text(report.cad), "inline": False},
                {"name": "Push events", "value": push, "inline": False},
                {"name": "Alerts waiting to be posted", "value": queue, "inline": False},
                {"name": "Failed routes", "value": failed, "inline": False},
            ],
        }
    )
