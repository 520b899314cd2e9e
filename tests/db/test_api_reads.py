"""The API's reads of cells, prisoners, money and contacts, and the contact acts, over the
operator's services on the real SQL store (SQLite and PostgreSQL), as the daemon wires them
(operator_services); every answer checked against the OpenAPI description."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from callcontrol.adapters.db import tables as m
from callcontrol.adapters.db.engine import make_engine, session_factory
from callcontrol.adapters.db.supervise_store import SqlAuditLog, SqlSuperviseStore
from callcontrol.adapters.http.api import make_app
from callcontrol.adapters.http.auth import TokenFile
from callcontrol.config import Settings
from callcontrol.operator_services import OperatorServices, operator_services
from callcontrol.services.actors import Actor
from callcontrol.services.supervise import Supervisor
from tests.protocol.openapi_check import Described
from tests.protocol.test_http_api import entry
from tests.services.test_supervise import T0, FakeControl

ADMIN = Actor("ada", "admin")
TOKENS = {"officer": "officer-token-0123456789abcdef", "auditor": "auditor-token-0123456789ab"}
OFFICER = {"Authorization": f"Bearer {TOKENS['officer']}"}
AUDITOR = {"Authorization": f"Bearer {TOKENS['auditor']}"}
LONDON, LEEDS, MOBILE = "+442079460000", "+441134960000", "+447911123456"


@dataclass
class Api:
    client: TestClient[Any, Any]
    described: Described
    sessions: Any

    async def get(self, template: str, status: int = 200, query: str = "", **path: str) -> Any:
        url = template.format(**path) + (f"?{query}" if query else "")
        response = await self.client.get(url, headers=AUDITOR)  # any staff role reads
        assert response.status == status, await response.text()
        return await self.described.check(response, "GET", template)

    async def post(
        self, template: str, status: int, body: Any, headers: dict[str, str], **path: str
    ) -> Any:
        response = await self.client.post(template.format(**path), json=body, headers=headers)
        assert response.status == status, await response.text()
        return await self.described.check(response, "POST", template)


async def _site(services: OperatorServices) -> None:
    """Wings A and B; Ann and Bo in A1-01, Cy (suspended) in the disabled B2-01; Ann's money;
    three contacts waiting: two of Ann's added by staff, one Bo asked for at the kiosk."""
    for name, wing in (("A1-01", "A"), ("A1-02", "A"), ("B2-01", "B")):
        await services.cells.add(ADMIN, name, wing=wing)
    await services.cells.disable(ADMIN, "B2-01", "handset smashed")
    for number, name, pin, cell in (
        ("P1", "Ann", "1357", "A1-01"),
        ("P2", "Bo", "2468", "A1-01"),
        ("P3", "Cy", "3579", "B2-01"),
    ):
        await services.prisoners.add(ADMIN, number, name, pin, cell)
    await services.prisoners.suspend(ADMIN, "P3", "under investigation")
    await services.accounts.topup(ADMIN, "P1", 1000, "T1")
    await services.accounts.topup(ADMIN, "P1", 250, "T2")
    await services.contacts.add(ADMIN, "P1", LONDON, "social", "sister")
    await services.contacts.request("P2", "07911123456", "social", "mum", "kiosk")
    await services.contacts.add(ADMIN, "P1", LEEDS, "legal", "solicitor")


@pytest.fixture
async def api(
    db_url: str, settings_for: Callable[..., Settings], tmp_path: Path
) -> AsyncIterator[Api]:
    tokens = tmp_path / "api-tokens"
    tokens.write_text(
        entry("a11ce000", "alice", "officer", TOKENS["officer"])
        + entry("a0d17000", "Audrey Auditor", "auditor", TOKENS["auditor"])
    )
    tokens.chmod(0o600)
    engine = make_engine(db_url)
    sessions = session_factory(engine)
    try:
        services = operator_services(settings_for(db_url), sessions)
        await _site(services)
        supervisor = Supervisor(
            SqlSuperviseStore(sessions),
            FakeControl(),
            SqlAuditLog(sessions),
            clock=lambda: T0 + timedelta(seconds=30),
            channels=dict,
        )
        app = make_app(supervisor, TokenFile(tokens), operator=services)
        async with TestClient(TestServer(app)) as client:
            yield Api(client, Described(), sessions)
    finally:
        await engine.dispose()


async def test_cells(api: Api) -> None:
    got = await api.get("/cells")
    assert [c["name"] for c in got["cells"]] == ["A1-01", "A1-02", "B2-01"]
    assert (got["total"], got["next_offset"]) == (3, None)
    [off] = (await api.get("/cells", query="enabled=false"))["cells"]
    assert (off["name"], off["enabled"], off["disabled_reason"]) == (
        "B2-01",
        False,
        "handset smashed",
    )
    first = await api.get("/cells", query="wing=A&limit=1")
    assert [c["name"] for c in first["cells"]] == ["A1-01"]
    assert (first["total"], first["next_offset"]) == (2, 1)
    second = await api.get("/cells", query="wing=A&limit=1&offset=1")
    assert [c["name"] for c in second["cells"]] == ["A1-02"] and second["next_offset"] is None
    one = await api.get("/cells/{name}", name="A1-01")
    assert (one["prisoners"], one["locked"], one["wing"]) == (["P1", "P2"], False, "A")
    await api.get("/cells/{name}", 404, name="Z9-99")
    await api.get("/cells/{name}", 400, name="A1 01")
    for query in ("limit=1001", "limit=0", "offset=-1", "enabled=yes", "wing=A&wing=B"):
        await api.get("/cells", 400, query=query)


async def test_prisoners_their_money_and_statement(api: Api) -> None:
    got = await api.get("/prisoners", query="cell=A1-01")
    assert [(p["prison_number"], p["name"]) for p in got["prisoners"]] == [
        ("P1", "Ann"),
        ("P2", "Bo"),
    ]
    [cy] = (await api.get("/prisoners", query="active=false"))["prisoners"]
    assert (cy["prison_number"], cy["suspended_reason"]) == ("P3", "under investigation")
    ann = await api.get("/prisoners/{number}", number="P1")
    assert (ann["cell"], ann["active"]) == ("A1-01", True)
    assert ann["money"] == {"balance_pence": 1250, "reserved_pence": 0, "available_pence": 1250}
    assert set(ann["limits"]) == {
        "max_call_s",
        "site_max_call_s",
        "max_social_contacts",
        "max_legal_contacts",
    }
    statement = await api.get("/prisoners/{number}/statement", number="P1")
    assert statement["money"]["balance_pence"] == 1250
    assert [
        (x["kind"], x["amount_pence"], x["balance_after_pence"]) for x in statement["lines"]
    ] == [
        ("topup", 250, 1250),
        ("topup", 1000, 1000),
    ]  # newest first
    page = await api.get("/prisoners/{number}/statement", query="limit=1&offset=1", number="P1")
    assert [x["reference"] for x in page["lines"]] == ["T1"] and page["next_offset"] is None
    await api.get("/prisoners/{number}", 404, number="NOBODY")
    await api.get("/prisoners/{number}/statement", 404, number="NOBODY")
    await api.get("/prisoners", 400, query="cell=..%2F")


async def test_the_contact_queue_across_prisoners(api: Api) -> None:
    queue = await api.get("/contacts/pending")
    assert [(c["prison_number"], c["number"], c["kind"]) for c in queue["contacts"]] == [
        ("P1", LONDON, "social"),
        ("P2", MOBILE, "social"),
        ("P1", LEEDS, "legal"),
    ]  # oldest first
    assert queue["contacts"][1]["prisoner_name"] == "Bo"
    assert "kiosk" in queue["contacts"][1]["requested_by"]
    legal = await api.get("/contacts/pending", query="kind=legal")
    assert [c["number"] for c in legal["contacts"]] == [LEEDS]
    mine = await api.get("/prisoners/{number}/contacts", number="P1")
    assert sorted(c["number"] for c in mine["contacts"]) == [LEEDS, LONDON]
    await api.get("/contacts/pending", 400, query="kind=family")
    await api.get("/prisoners/{number}/contacts", 400, query="status=gone", number="P1")


async def test_officers_approve_and_block_with_a_reason_under_their_name(api: Api) -> None:
    approve = "/prisoners/{number}/contacts/{contact}/approve"
    block = "/prisoners/{number}/contacts/{contact}/block"
    why = {"reason": "sister verified by the family liaison officer"}
    # An auditor reads and never changes: refused, and nothing is written.
    await api.post(approve, 403, why, AUDITOR, number="P1", contact=LONDON)
    await api.post(approve, 400, {}, OFFICER, number="P1", contact=LONDON)
    await api.post(approve, 400, {"reason": "  "}, OFFICER, number="P1", contact=LONDON)
    assert len((await api.get("/contacts/pending"))["contacts"]) == 3
    done = await api.post(approve, 200, why, OFFICER, number="P1", contact=LONDON)
    assert (done["number"], done["status"]) == (LONDON, "approved")
    # The same number written as the region writes it is the same contact.
    await api.post(approve, 409, why, OFFICER, number="P1", contact="02079460000")
    await api.post(approve, 404, why, OFFICER, number="P1", contact="+442079460999")
    await api.post(approve, 404, why, OFFICER, number="NOBODY", contact=LONDON)
    await api.post(approve, 400, why, OFFICER, number="P1", contact="0207%0A946")
    no = {"reason": "threats to the family", "label": "not mum"}
    blocked = await api.post(block, 200, no, OFFICER, number="P2", contact="07911123456")
    assert (blocked["number"], blocked["status"], blocked["label"]) == (
        MOBILE,
        "blocked",
        "not mum",
    )
    await api.post(block, 409, no, OFFICER, number="P2", contact=MOBILE)
    await api.post(block, 400, {**no, "kind": "family"}, OFFICER, number="P2", contact=LEEDS)
    # What is left for staff, and what each prisoner's history says (newest first).
    queue = await api.get("/contacts/pending")
    assert [c["number"] for c in queue["contacts"]] == [LEEDS]
    approved = await api.get("/prisoners/{number}/contacts", query="status=approved", number="P1")
    assert [c["number"] for c in approved["contacts"]] == [LONDON]
    history = await api.get("/prisoners/{number}/contact-history", number="P1")
    latest = history["changes"][0]
    assert (latest["number"], latest["new_status"], latest["changed_by"]) == (
        LONDON,
        "approved",
        "alice",
    )
    assert latest["note"] == why["reason"] and history["total"] == 3
    async with api.sessions() as s:
        rows = await s.scalars(select(m.AuditEntry).where(m.AuditEntry.actor == "alice"))
        acts = sorted((e.action, e.role, e.reason) for e in rows)
    assert acts == [
        ("contact_approve", "officer", why["reason"]),
        ("contact_block", "officer", no["reason"]),
    ]
