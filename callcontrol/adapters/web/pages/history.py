"""Call history: search every decision (prisoner, cell, number, dates, outcome, reason) and
export what was found as CSV. The filters are services/call_history.py's, as the operator's
`calls history` and the API's GET /calls take them; the CSV is services/cdr.py's (formulas
neutralised). An export is audited: it takes call records out of the system."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from callcontrol.adapters.web.base import audit, deps, render, require, secure_headers
from callcontrol.domain.model import Reason
from callcontrol.domain.roles import Right
from callcontrol.services import call_history, cdr
from callcontrol.services.call_history import OUTCOMES, HistoryError

FIELDS = ("prisoner", "cell", "number", "since", "until", "outcome", "reason")
PAGE_ROWS = 100


def _given(request: web.Request) -> dict[str, str]:
    """The filters filled in (empty ones left out)."""
    return {k: request.query[k].strip() for k in FIELDS if request.query.get(k, "").strip()}


def _query(request: web.Request, given: dict[str, str], **extra: Any) -> Any:
    api = deps(request).history
    return call_history.parse_filter(tz=api.tz, region=api.region, **given, **extra)


async def history(request: web.Request) -> web.Response:
    require(request, Right.READ)
    given = _given(request)
    context: dict[str, Any] = {
        "given": given,
        "outcomes": OUTCOMES,
        "reasons": [r.value for r in Reason],
        "rows": [],
        "error": "",
        "next_href": "",
        "csv_href": "",
        "searched": bool(given) or "search" in request.query,
    }
    if context["searched"]:
        try:
            query = _query(request, given, limit=PAGE_ROWS, before=request.query.get("before"))
        except HistoryError as e:
            context["error"] = str(e)
            return render(request, "history.html", status=400, **context)
        got = await call_history.page(deps(request).history.reader, query)
        context["rows"] = got.rows
        if got.next_before is not None:
            context["next_href"] = "?" + urlencode({**given, "before": got.next_before})
        context["csv_href"] = "/console/history.csv?" + urlencode(given)
    return render(request, "history.html", **context)


async def export_csv(request: web.Request) -> web.StreamResponse:
    actor = require(request, Right.READ)
    given = _given(request)
    try:
        query = _query(request, given)
    except HistoryError as e:
        raise web.HTTPBadRequest(text=str(e)) from None
    what = ", ".join(f"{k}={v}" for k, v in given.items()) or "every call"
    await audit(request, actor, "history_export", "calls", detail=f"CSV of {what}")
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": 'attachment; filename="calls.csv"',
        }
    )
    secure_headers(response)
    await response.prepare(request)
    await response.write(cdr.csv_header().encode())
    batch: list[Any] = []
    async for row in call_history.every_row(deps(request).history.reader, query):
        batch.append(row)
        if len(batch) == 500:
            await response.write(cdr.csv_lines(batch, header=False).encode())
            batch = []
    if batch:
        await response.write(cdr.csv_lines(batch, header=False).encode())
    await response.write_eof()
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/history", history)
    app.router.add_get("/history.csv", export_csv)
