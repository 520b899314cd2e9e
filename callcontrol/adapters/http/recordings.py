"""The API's recordings: GET /recordings (search) and GET /recordings/{id}/audio (play, download).

Who: a token whose role has Right.RECORDINGS (domain/roles.py: officer, admin, auditor).

Search, with the call history's filters as query parameters (prisoner, cell, number, since,
until: dates or date-times local to [site] timezone unless they carry an offset; limit, default
100, at most 10000; before: the ``next_before`` of the previous page) and ``call_id``:
{"recordings": [...], "next_before": ID or null}, newest first.

Audio: the stored Ogg Opus (``audio/ogg``), checked against its SHA-256 first (a file or row
that does not match is refused, 500 with the reason, and nothing is served). ``Range`` requests
are answered (206), so a player can seek. ``?download=1`` answers with ``Content-Disposition:
attachment`` and is audited as a download; otherwise it is a play. ``?play=ID`` (8 to 64
letters, digits, - or _) names one play: its further requests (a player's seeks) are not audited
again. Every play and every download is in the audit log, under the token's person, before
the bytes are sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from callcontrol.adapters.http import params, ranges
from callcontrol.adapters.http.api import ApiError, _json, authorise
from callcontrol.domain.roles import Right
from callcontrol.services.recording_access import (
    DOWNLOAD,
    PLAY,
    SHARED_FILTERS,
    Audio,
    Damaged,
    Gone,
    RecordingService,
    RecordingView,
    parse_query,
)

FILTERS = (*SHARED_FILTERS, "call_id")
AUDIO_TYPE = "audio/ogg"


@dataclass(frozen=True)
class RecordingsApi:
    service: RecordingService
    tz: ZoneInfo
    region: str


RECORDINGS = web.AppKey("recordings", RecordingsApi)


def view_dict(v: RecordingView) -> dict[str, Any]:
    """A recording as the API (and the console) show it."""
    return {
        "recording_id": v.recording_id,
        "call_id": v.call_id,
        "prisoner": {"prison_number": v.prisoner, "name": v.prisoner_name},
        "cell": v.cell,
        "number": v.number,
        "started_at": v.started_at,
        "duration_s": round(v.duration_ms / 1000, 1),
        "bytes": v.bytes,
        "codec": v.codec,
        "channels": v.channels,
        "sha256": v.sha256,
        "purged_at": v.purged_at,
        "audio": None if v.purged_at else f"/recordings/{v.recording_id}/audio",
    }


def download_name(v: RecordingView) -> str:
    return f"recording-{v.recording_id}-call-{v.call_id}.ogg"


async def search(request: web.Request) -> web.Response:
    actor = authorise(request, Right.RECORDINGS)
    api = request.app[RECORDINGS]
    given = params.query(request, FILTERS)
    if "prisoner" in given:
        params.matching(given["prisoner"], params.PRISON_NUMBER, "prisoner", "a prison number")
    if "cell" in given:
        params.matching(given["cell"], params.CELL_NAME, "cell", "a cell's name")
    query = parse_query(tz=api.tz, region=api.region, **{k: given.get(k) for k in FILTERS})
    got = await api.service.search(actor, query)
    return _json({"recordings": [view_dict(v) for v in got.rows], "next_before": got.next_before})


async def audio(request: web.Request) -> web.Response:
    actor = authorise(request, Right.RECORDINGS)
    given = params.query(request, ("download", "play"))
    download = given.get("download", "") not in ("", "0")
    play_id = None if download else given.get("play")
    recording_id = int(request.match_info["recording_id"])
    try:
        got = await request.app[RECORDINGS].service.fetch(
            actor, recording_id, DOWNLOAD if download else PLAY, play_id
        )
    except Gone as e:
        raise ApiError(410, str(e)) from None
    except Damaged as e:
        raise ApiError(500, str(e)) from None
    return answer(request, got, download)


def answer(request: web.Request, got: Audio, download: bool) -> web.Response:
    """The audio as asked for (a range of it, or all), as an attachment for a download."""
    return ranges.serve(
        request,
        got.data,
        etag=got.view.sha256,
        content_type=AUDIO_TYPE,
        attachment=download_name(got.view) if download else None,
    )


def add_routes(app: web.Application, recordings: RecordingsApi) -> None:
    app[RECORDINGS] = recordings
    app.router.add_get("/recordings", search)
    # No HEAD: every request for the audio is a play or a download, audited.
    app.router.add_get(r"/recordings/{recording_id:\d{1,18}}/audio", audio, allow_head=False)
