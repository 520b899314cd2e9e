"""HTTP byte ranges (RFC 9110 section 14), and serving a file by them, so that a browser's
<audio> can seek in a recording.

One range is served (206 Partial Content). Anything else falls back to the whole file (200),
which the RFC allows (a server may ignore Range): a header that does not parse, another unit
than bytes, more than one range (browsers ask for one; several, overlapping or not, are how a
client makes a server do a lot of work for a little request), an over-long header. A range
that parses but starts at or past the end of the file is not satisfiable (416, with
``Content-Range: bytes */SIZE``). Numbers are bounded (at most 18 digits) before they are
converted, so a huge one costs nothing; an end past the file is the file's end, as the RFC says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aiohttp import web

MAX_HEADER = 200  # characters: one range needs at most about 45
# first-last, first-, or -suffix; ASCII digits only (no signs, no spaces inside a number).
_SPEC = re.compile(r"(?:([0-9]{1,18})-([0-9]{1,18})?|-([0-9]{1,18}))")


class Unsatisfiable(Exception):
    """The one range asked for lies wholly past the end of the file (answer 416)."""


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``first`` to ``last`` inclusive of a file of ``size`` bytes."""

    first: int
    last: int
    size: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1

    def content_range(self) -> str:
        return f"bytes {self.first}-{self.last}/{self.size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The range of ``header`` within a file of ``size`` bytes; None: serve the whole file.

    Raises Unsatisfiable when the one range asked for starts at or past the end."""
    if header is None or len(header) > MAX_HEADER or size < 1:
        return None
    unit, sep, specs = header.strip().partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    parts = specs.split(",")
    if len(parts) != 1:
        return None  # several ranges: the whole file, once
    match = _SPEC.fullmatch(parts[0].strip())
    if match is None:
        return None
    first_text, last_text, suffix_text = match.groups()
    if suffix_text is not None:  # the last N bytes
        suffix = int(suffix_text)
        if suffix == 0:
            raise Unsatisfiable(header)
        return ByteRange(max(0, size - suffix), size - 1, size)
    first = int(first_text)
    last = size - 1 if last_text is None else int(last_text)
    if last_text is not None and last < first:
        return None  # not a valid range: ignored, as the RFC says
    if first >= size:
        raise Unsatisfiable(header)
    return ByteRange(first, min(last, size - 1), size)


def serve(
    request: web.Request,
    data: bytes,
    *,
    etag: str,
    content_type: str,
    attachment: str | None = None,
) -> web.Response:
    """``data`` as the answer to a GET: the range asked for (206), or all of it (200), or 416.

    ``etag`` names this exact content (a strong validator: a recording's SHA-256); an
    ``If-Range`` naming anything else gets the whole file. ``attachment`` is the file name a
    download is saved as (``Content-Disposition: attachment``). Never cached anywhere."""
    quoted = f'"{etag}"'
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": quoted,
        "Cache-Control": "no-store, private",
        "X-Content-Type-Options": "nosniff",
    }
    if attachment is not None:
        headers["Content-Disposition"] = f'attachment; filename="{attachment}"'
    if_range = request.headers.get("If-Range")
    header = request.headers.get("Range") if if_range in (None, quoted) else None
    try:
        wanted = parse_range(header, len(data))
    except Unsatisfiable:
        headers["Content-Range"] = f"bytes */{len(data)}"
        return web.Response(status=416, headers=headers)
    if wanted is None:
        return web.Response(body=data, content_type=content_type, headers=headers)
    headers["Content-Range"] = wanted.content_range()
    body = data[wanted.first : wanted.last + 1]
    return web.Response(status=206, body=body, content_type=content_type, headers=headers)
