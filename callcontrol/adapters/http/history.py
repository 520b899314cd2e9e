"""The API's call history: GET /calls (any role with the read right), JSON or CSV.

The same filters as `callcontrol calls history`, as query parameters: prisoner, cell, number,
since, until (dates or date-times, local to [site] timezone unless they carry an offset),
outcome, reason, limit (default 100, at most 10000) and before (the next page: the
``next_before`` of the previous one). JSON: {"calls": [...], "next_before": ID or null}. CSV
(``?format=csv``, or ``Accept: text/csv``): the call detail record of services/cdr.py, with the
next page's id in the ``X-Next-Before`` header when there is one.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from aiohttp import web

from callcontrol.adapters.http import params
from callcontrol.adapters.http.api import ApiError, _json, authorise
from callcontrol.domain.roles import Right
from callcontrol.services import call_history, cdr
from callcontrol.services.call_history import HistoryError, HistoryReader

FILTERS = ("prisoner", "cell", "number", "since", "until", "outcome", "reason", "limit", "before")


@dataclass(frozen=True)
class HistoryApi:
    reader: HistoryReader
    tz: ZoneInfo
    region: str


HISTORY = web.AppKey("history", HistoryApi)


def wants_csv(request: web.Request) -> bool:
    fmt = request.query.get("format", "")
    if fmt not in ("", "json", "csv"):
        raise ApiError(400, "format must be json or csv")
    if fmt:
        return fmt == "csv"
    accept = request.headers.get("Accept", "")
    return any(part.split(";")[0].strip() == "text/csv" for part in accept.split(","))


async def calls_history(request: web.Request) -> web.Response:
    authorise(request, Right.READ)
    api = request.app[HISTORY]
    given = params.query(request, (*FILTERS, "format"))
    if "prisoner" in given:
        params.matching(given["prisoner"], params.PRISON_NUMBER, "prisoner", "a prison number")
    if "cell" in given:
        params.matching(given["cell"], params.CELL_NAME, "cell", "a cell's name")
    csv = wants_csv(request)
    try:
        query = call_history.parse_filter(
            tz=api.tz, region=api.region, **{k: given.get(k) for k in FILTERS}
        )
    except HistoryError as e:
        raise ApiError(400, str(e)) from None
    got = await call_history.page(api.reader, query)
    if not csv:
        return _json({"calls": [cdr.as_dict(r) for r in got.rows], "next_before": got.next_before})
    headers = {"Content-Disposition": 'attachment; filename="calls.csv"'}
    if got.next_before is not None:
        headers["X-Next-Before"] = str(got.next_before)
    return web.Response(
        text=cdr.csv_lines(got.rows), content_type="text/csv", charset="utf-8", headers=headers
    )


def add_routes(app: web.Application, history: HistoryApi) -> None:
    app[HISTORY] = history
    app.router.add_get("/calls", calls_history)
