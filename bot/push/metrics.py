"""Prometheus metrics of the push pipeline, in a registry owned by one pipeline (never the global one).

Tests and a second bot in the same process then never see each other's numbers, and ``/metrics`` shows only
what this listener did.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from bot.cad.events import EVENT_MODELS, IGNORED_EVENT_TYPES

# Event types become label values; an authenticated sender could still invent any number of them, so only
# types the parser knows keep their name and everything else is counted under one label.
UNKNOWN_TYPE_LABEL = "OTHER"
NO_TYPE_LABEL = "NONE"


def type_label(event_type: str | None) -> str:
    """The metric label for an event type: its name if the parser knows it, else one shared label."""
    if event_type is None:
        return NO_TYPE_LABEL
    if event_type in EVENT_MODELS or event_type in IGNORED_EVENT_TYPES:
        return event_type
    return UNKNOWN_TYPE_LABEL


LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class PushMetrics:
    content_type = CONTENT_TYPE_PLAIN_0_0_4

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.events_received = Counter(
            "sonoran_push_events_received",
            "Push-event requests by event type and the answer they got (accepted, unknown_type, ignored, "
            "invalid_data, no_guild, too_large, bad_request, timeout, client_gone, unauthorized, throttled, "
            "storage_unavailable, duplicate: the other transport's copy of an event already stored).",
            ["type", "outcome"],
            registry=self.registry,
        )
        self.events_processed = Counter(
            "sonoran_push_events_processed",
            "Accepted events after parsing and routing, by type and result "
            "(posted, no_route, unknown_type, ignored, invalid_data, error; local for the bot's own actions).",
            ["type", "outcome"],
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "sonoran_push_auth_failures",
            "Push-event requests whose key was missing or matched no configured community.",
            registry=self.registry,
        )
        self.hub_connects = Counter(
            "sonoran_hub_connects",
            "Websocket sessions to Sonoran's hub that completed the handshake (first connects and reconnects).",
            registry=self.registry,
        )
        self.hub_reconnects = Counter(
            "sonoran_hub_reconnects",
            "Websocket handshakes after a session's first one (the connection was lost and replaced).",
            registry=self.registry,
        )
        self.hub_auth_failures = Counter(
            "sonoran_hub_auth_failures",
            "authenticatev2 calls the hub refused (wrong community, key or server id).",
            registry=self.registry,
        )
        self.hub_events_received = Counter(
            "sonoran_hub_events_received",
            "pushEvent envelopes received over websocket sessions (before the key and type checks).",
            registry=self.registry,
        )
        self.hub_sessions_down = Gauge(
            "sonoran_hub_sessions_down",
            "Websocket sessions that guilds rely on and that are not authenticated now.",
            registry=self.registry,
        )
        self.open_connections = Gauge(
            "sonoran_push_open_connections",
            "Connections the listener is serving now (at most [server] max_connections).",
            registry=self.registry,
        )
        self.connections_refused = Counter(
            "sonoran_push_connections_refused",
            "Connections answered 503 and closed because max_connections were already open.",
            registry=self.registry,
        )
        self.slow_requests = Counter(
            "sonoran_push_slow_requests",
            "Requests given up on because their head (header_timeout_s) or body (body_timeout_s) was too slow.",
            ["part"],
            registry=self.registry,
        )
        self.deliveries = Counter(
            "sonoran_push_deliveries",
            "Discord requests made by the delivery worker: sent, failed (given up), retried (will try again).",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.embeds_delivered = Counter(
            "sonoran_push_embeds_delivered",
            "Embeds posted; above the number of sent messages when backlogs were packed together.",
            registry=self.registry,
        )
        self.outbox_depth = Gauge(
            "sonoran_push_outbox_depth",
            "Deliveries waiting to be sent (messages plus live-card posts and edits).",
            registry=self.registry,
        )
        self.oldest_pending_age = Gauge(
            "sonoran_push_oldest_pending_age_seconds",
            "Age of the oldest delivery still waiting, 0 when nothing waits.",
            registry=self.registry,
        )
        self.inbox_depth = Gauge(
            "sonoran_push_inbox_depth",
            "Accepted push events not yet turned into deliveries.",
            registry=self.registry,
        )
        self.delivery_latency = Histogram(
            "sonoran_push_delivery_latency_seconds",
            "From the moment an event was accepted to the moment its message reached Discord.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def received(self, type_label: str, outcome: str) -> None:
        self.events_received.labels(type=type_label, outcome=outcome).inc()

    def processed(self, type_label: str, outcome: str) -> None:
        self.events_processed.labels(type=type_label, outcome=outcome).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
