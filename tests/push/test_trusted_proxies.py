"""Behind a reverse proxy: the client's address comes from X-Forwarded-For only when the connecting peer is a
trusted proxy, read from the right, so one bad sender cannot get the CAD throttled and no client can pick the
address it is known by."""

from __future__ import annotations

import ipaddress
import logging

import pytest

from bot.config import ServerSettings
from bot.push.forwarded import client_address, parse_ip
from tests.push.conftest import API_KEY, PushWorld, envelope

PANIC = {"identIds": [57], "isPanic": True}

TRUSTED = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("127.0.0.1"), ipaddress.ip_network("::1"))


@pytest.mark.parametrize(
    ("peer", "headers", "expected"),
    [
        # no trusted proxy involved: the header is the client's own claim and means nothing
        ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),
        ("203.0.113.9", [], "203.0.113.9"),
        # one trusted proxy: it appended the real peer on the right
        ("127.0.0.1", ["198.51.100.1"], "198.51.100.1"),
        ("10.1.2.3", ["198.51.100.1"], "198.51.100.1"),
        # spoofed entries on the left are skipped: the right-most untrusted address is the client
        ("127.0.0.1", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),
        ("127.0.0.1", ["127.0.0.1, 198.51.100.1"], "198.51.100.1"),
        ("127.0.0.1", ["6.6.6.6", "198.51.100.1"], "198.51.100.1"),  # repeated headers read as one list
        # a chain of trusted proxies is walked through
        ("127.0.0.1", ["198.51.100.1, 10.0.0.5, 10.0.0.6"], "198.51.100.1"),
        ("127.0.0.1", ["6.6.6.6, 198.51.100.1, 10.0.0.5"], "198.51.100.1"),
        # a client claiming to be a trusted proxy is still the right-most untrusted hop's business
        ("127.0.0.1", ["10.0.0.9, 198.51.100.1"], "198.51.100.1"),
        # everything trusted (a sender inside the proxies' network): the left-most hop
        ("127.0.0.1", ["10.0.0.9, 10.0.0.5"], "10.0.0.9"),
        # no header from a trusted proxy: the proxy itself
        ("127.0.0.1", [], "127.0.0.1"),
        # garbage written by a trusted hop stops the walk at the last address a trusted hop vouched for
        ("127.0.0.1", ["198.51.100.1, unknown, 10.0.0.5"], "10.0.0.5"),
        ("127.0.0.1", ["unknown"], "127.0.0.1"),
        # ports, brackets, IPv6, IPv4-mapped IPv6, blanks
        ("127.0.0.1", ["198.51.100.1:4711"], "198.51.100.1"),
        ("127.0.0.1", ["[2001:db8::1]:443"], "2001:db8::1"),
        ("::1", ["2001:db8::1"], "2001:db8::1"),
        ("::ffff:127.0.0.1", ["198.51.100.1"], "198.51.100.1"),
        ("127.0.0.1", ["::ffff:198.51.100.1"], "198.51.100.1"),
        ("127.0.0.1", [" 198.51.100.1 , ,"], "198.51.100.1"),
        # a peer that is not an IP at all (a Unix socket)
        (None, ["198.51.100.1"], "unknown"),
    ],
)
def test_client_address(peer: str | None, headers: list[str], expected: str) -> None:
    assert client_address(peer, headers, TRUSTED) == expected


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    assert client_address("127.0.0.1", ["198.51.100.1"], ()) == "127.0.0.1"


@pytest.mark.parametrize("text", ["", "unknown", "1.2.3", "[::1", "example.org", "1.2.3.4:80:90"])
def test_parse_ip_rejects_what_is_not_an_address(text: str) -> None:
    assert parse_ip(text) is None


# -- through the listener -----------------------------------------------------------------------------


async def _restart(world: PushWorld, trusted: list[str]) -> None:
    await world.restart(
        reopen_storage=False, server=ServerSettings(host="127.0.0.1", port=0, trusted_proxies=trusted)
    )


async def _post(world: PushWorld, forwarded_for: str | None, key: str = "guess") -> int:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for is not None else {}
    return (await world.post(envelope("EVENT_UNIT_PANIC", PANIC, key=key), headers=headers))[0]


async def test_behind_a_trusted_proxy_one_bad_sender_does_not_throttle_another(push_world: PushWorld) -> None:
    await _restart(push_world, ["127.0.0.1"])
    for _ in range(5):  # the test throttle allows 5 failures a minute
        assert await _post(push_world, "203.0.113.7") == 401
    assert await _post(push_world, "203.0.113.7") == 429
    # Another sender behind the same proxy is judged on its own...
    assert await _post(push_world, "198.51.100.1") == 401
    # ...and the CAD's events are accepted.
    assert await _post(push_world, "198.51.100.2", key=API_KEY) == 200


async def test_a_spoofed_left_part_does_not_escape_the_throttle(push_world: PushWorld) -> None:
    await _restart(push_world, ["127.0.0.1"])
    for number in range(5):
        assert await _post(push_world, f"192.0.2.{number}, 203.0.113.7") == 401
    assert await _post(push_world, "192.0.2.99, 203.0.113.7") == 429


async def test_from_an_untrusted_peer_the_header_is_ignored(push_world: PushWorld) -> None:
    await _restart(push_world, ["10.0.0.0/8"])  # the test client connects from 127.0.0.1, not listed
    for number in range(5):
        assert await _post(push_world, f"203.0.113.{number}") == 401
    # Changing the header does not make a new sender: it is 127.0.0.1 all along.
    assert await _post(push_world, "203.0.113.200") == 429


async def test_an_unused_forwarding_header_is_pointed_out_once(
    push_world: PushWorld, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.push.server")
    for _ in range(3):
        await _post(push_world, "203.0.113.7", key=API_KEY)
    hints = [
        record.getMessage() for record in caplog.records if "trusted_proxies is empty" in record.getMessage()
    ]
    assert len(hints) == 1
    assert hints[0].startswith("push events from 127.0.0.1 carry X-Forwarded-For")
