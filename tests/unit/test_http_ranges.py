"""Byte ranges (adapters/http/ranges.py): what a browser asks for, and what an attacker might."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from callcontrol.adapters.http.ranges import (
    MAX_HEADER,
    ByteRange,
    Unsatisfiable,
    parse_range,
    serve,
)

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-", (0, 999)),  # what Chromium's media player asks first
        ("bytes=0-0", (0, 0)),
        ("bytes=10-19", (10, 19)),
        ("bytes=500-", (500, 999)),
        ("bytes=999-", (999, 999)),
        ("bytes=-1", (999, 999)),  # the last byte (Ogg's duration is on its last page)
        ("bytes=-200", (800, 999)),
        ("bytes=-5000", (0, 999)),  # a suffix longer than the file: all of it
        ("bytes=990-5000", (990, 999)),  # an end past the file: the file's end
        ("BYTES = 5-6", (5, 6)),  # the unit is case-insensitive, spaces around '=' are fine
        (" bytes=7-8 ", (7, 8)),
        ("bytes=0-999999999999999999", (0, 999)),  # 18 digits: clamped
    ],
)
def test_one_range(header: str, expected: tuple[int, int]) -> None:
    got = parse_range(header, SIZE)
    assert got == ByteRange(*expected, SIZE)
    assert got.content_range() == f"bytes {expected[0]}-{expected[1]}/{SIZE}"
    assert got.length == expected[1] - expected[0] + 1


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "bytes",
        "bytes=",
        "bytes=-",
        "items=0-10",  # another unit
        "bytes=a-b",
        "bytes=--5",
        "bytes=-5-10",  # negative numbers are not ranges
        "bytes=+5-10",
        "bytes=5--10",
        "bytes=0x10-20",
        "bytes=1e3-",
        "bytes=５-６",  # full-width digits: not ASCII
        "bytes=1 0-20",
        "bytes=20-10",  # last before first: invalid, so ignored
        "bytes=0-9999999999999999999",  # 19 digits: refused before any conversion
        "bytes=" + "9" * 5000 + "-",  # a huge number
        "bytes=0-1,2-3",  # several ranges: the whole file, once
        "bytes=0-500,100-600",  # overlapping
        "bytes=0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0",  # the same one many times
        "bytes=" + ",".join(f"{i}-{i}" for i in range(100)),  # many ranges (too long, too)
        "bytes=0-1,",
        "bytes=0-1;q=1",
        "bytes=0-10\r\nX-Evil: 1",
    ],
)
def test_anything_else_is_the_whole_file(header: str | None) -> None:
    assert parse_range(header, SIZE) is None


def test_a_header_longer_than_the_limit_is_ignored_unread() -> None:
    padded = "bytes=" + " " * MAX_HEADER + "0-1"
    assert parse_range(padded, SIZE) is None


@pytest.mark.parametrize(
    "header", ["bytes=1000-", "bytes=1000-2000", "bytes=5000-5001", "bytes=-0"]
)
def test_a_range_past_the_end_is_unsatisfiable(header: str) -> None:
    with pytest.raises(Unsatisfiable):
        parse_range(header, SIZE)


def test_an_empty_file_has_no_ranges() -> None:
    assert parse_range("bytes=0-", 0) is None


# --- serving ----------------------------------------------------------------------------------

DATA = bytes(range(256)) * 4  # 1024 bytes, each position recognisable
ETAG = "ab" * 32


@pytest.fixture
async def client() -> AsyncIterator[TestClient[Any, Any]]:
    async def handler(request: web.Request) -> web.Response:
        name = "x.ogg" if request.query.get("download") else None
        return serve(request, DATA, etag=ETAG, content_type="audio/ogg", attachment=name)

    app = web.Application()
    app.router.add_get("/a", handler)
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_whole_file_without_range(client: TestClient[Any, Any]) -> None:
    got = await client.get("/a")
    assert got.status == 200 and await got.read() == DATA
    assert got.headers["Content-Type"] == "audio/ogg"
    assert got.headers["Accept-Ranges"] == "bytes"
    assert got.headers["ETag"] == f'"{ETAG}"'
    assert "no-store" in got.headers["Cache-Control"]
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Disposition" not in got.headers


async def test_a_range_is_partial_content(client: TestClient[Any, Any]) -> None:
    got = await client.get("/a", headers={"Range": "bytes=100-199"})
    assert got.status == 206
    assert await got.read() == DATA[100:200]
    assert got.headers["Content-Range"] == f"bytes 100-199/{len(DATA)}"
    assert got.headers["Content-Length"] == "100"
    got = await client.get("/a", headers={"Range": "bytes=-24"})
    assert got.status == 206 and await got.read() == DATA[-24:]


async def test_unsatisfiable_is_416_with_the_size(client: TestClient[Any, Any]) -> None:
    got = await client.get("/a", headers={"Range": f"bytes={len(DATA)}-"})
    assert got.status == 416
    assert got.headers["Content-Range"] == f"bytes */{len(DATA)}"
    assert await got.read() == b""


async def test_several_ranges_get_the_whole_file_once(client: TestClient[Any, Any]) -> None:
    got = await client.get("/a", headers={"Range": "bytes=0-1000,0-1000,0-1000"})
    assert got.status == 200 and await got.read() == DATA


async def test_if_range_for_other_content_gets_the_whole_file(client: TestClient[Any, Any]) -> None:
    stale = {"Range": "bytes=0-9", "If-Range": '"something-else"'}
    got = await client.get("/a", headers=stale)
    assert got.status == 200 and await got.read() == DATA
    fresh = {"Range": "bytes=0-9", "If-Range": f'"{ETAG}"'}
    got = await client.get("/a", headers=fresh)
    assert got.status == 206 and await got.read() == DATA[:10]


async def test_a_download_is_an_attachment(client: TestClient[Any, Any]) -> None:
    got = await client.get("/a?download=1", headers={"Range": "bytes=0-"})
    assert got.status == 206 and await got.read() == DATA
    assert got.headers["Content-Disposition"] == 'attachment; filename="x.ogg"'
