"""The console's recordings: search them, play one in the page, download it.

/console/recordings            the search form (prisoner, cell, number, dates, call id) and
                               the results, newest first, a page at a time
/console/recordings/{id}       one recording: its details, an <audio controls> player and a
                               download link, once the recording is found intact (else why not)
/console/recordings/{id}/audio the audio (Range requests answered, so the player can seek);
                               ``?download=1`` as an attachment

Right.RECORDINGS (officer, admin, auditor). The page names its player's requests with a play id
made when the page is shown, so one play (its seeks included) is one audit entry; each download
is one. The service (services/recording_access.py) checks the file against its SHA-256 and
writes the audit entry, under the person's name, before the bytes go out.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from callcontrol.adapters.http.recordings import (
    FILTERS,
    RecordingsApi,
    answer,
)
from callcontrol.adapters.web.base import deps, error_page, render, require
from callcontrol.domain.roles import Right
from callcontrol.services.errors import Invalid, NotFound
from callcontrol.services.recording_access import (
    DOWNLOAD,
    PLAY,
    Damaged,
    Gone,
    RecordingService,
    parse_query,
)

RECORDING = r"/recordings/{recording_id:\d{1,18}}"


def _api(request: web.Request) -> RecordingsApi:
    api = deps(request).recordings
    if api is None:
        raise web.HTTPNotFound()
    return api


def _service(request: web.Request) -> RecordingService:
    return _api(request).service


def _id(request: web.Request) -> int:
    return int(request.match_info["recording_id"])


async def search_page(request: web.Request) -> web.Response:
    actor = require(request, Right.RECORDINGS)
    given = {k: request.query.get(k, "").strip() for k in FILTERS}
    searched = any(given.values())
    rows: list[Any] = []
    error, next_page = "", ""
    try:
        api = _api(request)
        filters = {k: v or None for k, v in given.items()}
        query = parse_query(tz=api.tz, region=api.region, **filters)
        page = await _service(request).search(actor, query)
        rows = list(page.rows)
        if page.next_before is not None:
            following = {k: v for k, v in given.items() if v and k != "before"}
            next_page = "?" + urlencode({**following, "before": page.next_before})
    except Invalid as e:
        error = str(e)
    return render(
        request, "recordings.html", title="Recordings", given=given, rows=rows, error=error,
        searched=searched, next_page=next_page,
    )  # fmt: skip


async def recording_page(request: web.Request) -> web.Response:
    actor = require(request, Right.RECORDINGS)
    service, recording_id = _service(request), _id(request)
    problem = ""
    try:
        view = await service.check(actor, recording_id)
    except (Damaged, Gone) as e:
        problem = str(e)
        view = await service.view(actor, recording_id)
    except NotFound:
        raise web.HTTPNotFound() from None
    return render(
        request, "recording.html", title=f"Recording {view.recording_id}", rec=view,
        problem=problem, play_id=secrets.token_urlsafe(12),
        status=200 if not problem else 409,
    )  # fmt: skip


async def audio(request: web.Request) -> web.Response:
    actor = require(request, Right.RECORDINGS)
    download = request.query.get("download", "") not in ("", "0")
    play_id = None if download else (request.query.get("play") or None)
    try:
        got = await _service(request).fetch(
            actor, _id(request), DOWNLOAD if download else PLAY, play_id
        )
    except Damaged as e:
        return error_page(request, 409, "Refused", str(e))
    except NotFound:
        raise web.HTTPNotFound() from None
    return answer(request, got, download)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/recordings", search_page)
    app.router.add_get(RECORDING, recording_page)
    # No HEAD: every request for the audio is a play or a download, audited.
    app.router.add_get(RECORDING + "/audio", audio, allow_head=False)
