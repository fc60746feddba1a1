"""Bad input is a 4xx, never a 503: each hostile body gets its own answer, nothing is stored, no traceback is
logged, and failed keys count towards the throttle. (503 means "the bot could not take it, send it again".)"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import zlib
from urllib.parse import urlsplit

import pytest

from tests.push.conftest import API_KEY, PushWorld, envelope

PANIC = {"identIds": [57], "isPanic": True}
KEY = API_KEY.encode()


def _panic_body(data_json: bytes, key: bytes = b'"' + KEY + b'"') -> bytes:
    return b'{"key": ' + key + b', "type": "EVENT_UNIT_PANIC", "data": ' + data_json + b"}"


def _nested(depth: int) -> bytes:
    """An envelope whose deepest value sits ``depth`` levels down (the envelope itself is level 1)."""
    inner = b"[" * (depth - 2) + b"1" + b"]" * (depth - 2)
    return _panic_body(b'{"identIds": [57], "x": ' + inner + b"}")


async def _inbox_depth(world: PushWorld) -> int:
    rows = await world.storage.db.conn.execute_fetchall("SELECT COUNT(*) FROM push_inbox")
    return int(next(iter(rows))[0])


def _assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    loud = [
        f"{record.name} {record.levelname}: {record.getMessage()}"
        for record in caplog.records
        if record.exc_info or record.levelno >= logging.ERROR
    ]
    assert loud == []


@pytest.mark.parametrize(
    ("raw", "status", "message"),
    [
        (_panic_body(b'{"identIds": [' + b"7" * 5000 + b"]}"), 400, "number with more than 4300 digits"),
        (_panic_body(b"{}", key=b"9" * 4301), 400, "number with more than 4300 digits"),
        (_panic_body(b'{"identIds": [NaN]}'), 400, "NaN is not a JSON number"),
        (_panic_body(b'{"identIds": [Infinity]}'), 400, "Infinity is not a JSON number"),
        (_panic_body(b'{"identIds": [-Infinity]}'), 400, "-Infinity is not a JSON number"),
        (_nested(65), 400, "nested more than 64 levels deep"),
        (_nested(980), 400, "nested more than 64 levels deep"),  # parses, but deeper than any event
        (b"[" * 5000 + b"]" * 5000, 400, "nested more than 64 levels deep"),  # too deep to parse at all
        (_panic_body(b'{"identIds": [57], "note": "caf\xe9"}'), 400, "not valid JSON"),  # Latin-1, not UTF-8
    ],
    ids=[
        "long-int",
        "long-int-key",
        "nan",
        "infinity",
        "minus-infinity",
        "depth-65",
        "depth-980",
        "depth-5000",
        "latin-1",
    ],
)
async def test_malformed_json_is_400_without_a_traceback(
    push_world: PushWorld, caplog: pytest.LogCaptureFixture, raw: bytes, status: int, message: str
) -> None:
    got, answer, _ = await push_world.post(raw=raw)
    assert (got, answer["error"]) == (status, "bad_request")
    assert message in answer["message"]
    assert await _inbox_depth(push_world) == 0
    _assert_no_traceback(caplog)


@pytest.mark.parametrize(
    "raw",
    [
        _nested(64),
        b"\xef\xbb\xbf" + json.dumps(envelope("EVENT_UNIT_PANIC", PANIC)).encode(),
        json.dumps(envelope("EVENT_UNIT_PANIC", PANIC)).encode("utf-16"),
        _panic_body(b'{"identIds": [57, 1e400, -1e400, ' + b"7" * 4300 + b"]}"),
        _panic_body(b'{"identIds": [57], "note": "' + b"\\ud800" * 10_000 + b'"}'),
    ],
    ids=["depth-64", "utf8-bom", "utf16", "huge-but-finite-numbers", "lone-surrogates-in-data"],
)
async def test_unusual_but_valid_json_is_accepted(push_world: PushWorld, raw: bytes) -> None:
    """JSON's own rules decide: the deepest real event is far from 64 levels, json reads UTF-8 with a BOM and
    UTF-16, 1e400 is a (float) number, and a 4,300-digit integer is still an integer."""
    status, answer, _ = await push_world.post(raw=raw)
    assert (status, answer["status"]) == (200, "accepted")


async def test_a_huge_type_is_acknowledged_as_unknown_and_not_stored(push_world: PushWorld) -> None:
    status, answer, _ = await push_world.post(envelope("EVENT_" + "X" * 500_000, PANIC))
    assert (status, answer["status"], answer["reason"]) == (200, "ignored", "unknown event type")
    assert await _inbox_depth(push_world) == 0


@pytest.mark.parametrize(
    "key",
    [
        b'"\\ud800"',
        b'"' + KEY + b'\\udcff"',
        b'"\\udcff' + KEY + b'"',
        b'"\xed\xa0\x80"',  # a surrogate written as UTF-8 bytes: Python's json reads it as a lone surrogate
        b"12345678901234567890123",
        b"1.5",
        b"true",
        b"null",
        b'{"key": "' + KEY + b'"}',
        b'["' + KEY + b'"]',
        b'"' + b"k" * 600 + b'"',
        b'"\\u0000"',
    ],
    ids=[
        "lone-surrogate",
        "key-plus-surrogate",
        "surrogate-plus-key",
        "utf8-encoded-surrogate",
        "big-number",
        "float",
        "bool",
        "null",
        "object",
        "list",
        "huge",
        "nul",
    ],
)
async def test_a_key_that_cannot_match_is_401_and_counts_towards_the_throttle(
    push_world: PushWorld, caplog: pytest.LogCaptureFixture, key: bytes
) -> None:
    raw = _panic_body(json.dumps(PANIC).encode(), key=key)
    for _ in range(5):  # the test throttle allows 5 failures a minute
        status, answer, _ = await push_world.post(raw=raw)
        assert (status, answer["error"]) == (401, "unauthorized")
    status, answer, headers = await push_world.post(raw=raw)
    assert (status, answer["error"]) == (429, "throttled")
    assert "Retry-After" in headers
    assert await _inbox_depth(push_world) == 0
    _assert_no_traceback(caplog)


def _gzip_bomb() -> bytes:
    # 50 MB of spaces inside a JSON object, about 50 kB compressed: only the limit (1 MiB) is ever inflated.
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b" " * 1_048_576
    parts = [compressor.compress(b"{")]
    parts += [compressor.compress(chunk) for _ in range(50)]
    parts.append(compressor.compress(b"}") + compressor.flush())
    return b"".join(parts)


VALID = json.dumps(envelope("EVENT_UNIT_PANIC", PANIC)).encode()


@pytest.mark.parametrize(
    ("encoding", "raw", "status", "message"),
    [
        ("gzip", b"this is not gzip at all", 400, "could not be decoded (Content-Encoding: gzip)"),
        ("deflate", b"\x00\x01 nor deflate", 400, "could not be decoded (Content-Encoding: deflate)"),
        ("gzip", gzip.compress(VALID)[:-12], 400, "not valid JSON"),  # truncated stream
        ("gzip", _gzip_bomb(), 413, "larger than 1048576 bytes"),
        ("br", b"not brotli", 400, None),  # no decoder installed: aiohttp answers 400 itself
        ("zstd", b"not zstd", 400, None),
        ("gzip", gzip.compress(VALID), 200, None),
        ("deflate", zlib.compress(VALID), 200, None),
        ("identity", VALID, 200, None),
    ],
    ids=[
        "gzip-garbage",
        "deflate-garbage",
        "gzip-truncated",
        "gzip-bomb",
        "br",
        "zstd",
        "gzip",
        "deflate",
        "identity",
    ],
)
async def test_content_encoding_that_cannot_be_decoded_is_4xx_without_a_traceback(
    push_world: PushWorld,
    caplog: pytest.LogCaptureFixture,
    encoding: str,
    raw: bytes,
    status: int,
    message: str | None,
) -> None:
    got, answer, _ = await push_world.post(raw=raw, headers={"Content-Encoding": encoding})
    assert got == status, answer
    if message is not None:
        assert message in answer["message"]
    if status != 200:
        assert await _inbox_depth(push_world) == 0
    _assert_no_traceback(caplog)


async def test_a_client_hanging_up_mid_body_logs_no_traceback(
    push_world: PushWorld, caplog: pytest.LogCaptureFixture
) -> None:
    url = urlsplit(push_world.url)
    assert url.hostname is not None and url.port is not None
    for _ in range(3):
        _reader, writer = await asyncio.open_connection(url.hostname, url.port)
        writer.write(
            b"POST /sonorancad/event HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n" + b'{"key": "' + KEY
        )
        await writer.drain()
        writer.close()
        await writer.wait_closed()
    # The listener is still there, and a complete event after the hang-ups is stored as usual.
    status, answer, _ = await push_world.post(envelope("EVENT_UNIT_PANIC", PANIC))
    assert (status, answer["status"]) == (200, "accepted")
    assert await _inbox_depth(push_world) == 1
    _assert_no_traceback(caplog)
    _, metrics = await push_world.get("/metrics")
    assert 'sonoran_push_events_received_total{outcome="client_gone",type="NONE"} 3.0' in metrics


@pytest.mark.parametrize(
    "head",
    [
        b"GET /healthz HTTP/1.1\r\nHost: bot\r\nBad Header\r\n\r\n",
        b"POST /sonorancad/event HTTP/1.1\r\nHost: bot\r\nContent-Length: nope\r\n\r\n",
        b"POST /sonorancad/event HTTP/1.1\r\nHost: bot\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: bot\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,  # a TLS hello on the plain port
    ],
    ids=["bad-header", "bad-content-length", "bad-chunk", "huge-request-line", "tls-hello"],
)
async def test_malformed_http_is_answered_400_and_logged_without_a_traceback(
    push_world: PushWorld, caplog: pytest.LogCaptureFixture, head: bytes
) -> None:
    url = urlsplit(push_world.url)
    assert url.hostname is not None and url.port is not None
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        writer.write(head)
        await writer.drain()
        async with asyncio.timeout(10):
            answer = await reader.read()
    finally:
        writer.close()
    assert answer == b"" or answer.split(b" ", 2)[1] == b"400", answer[:80]
    _assert_no_traceback(caplog)
