"""The JSON API beside the real Asterisk lab: a number a prisoner waits for is in the staff's
queue; an auditor's token reads it and cannot approve it; an officer's approves it through the
API, and the prisoner's handset (SIPp) then calls it; the call is in the history and the
approval in the audit log under the officer's name. Every answer matches the description."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.e2e.conftest import E2E
from tests.e2e.test_cell_calls import provision
from tests.e2e.test_metrics import HTTP
from tests.protocol.openapi_check import Described

pytestmark = pytest.mark.e2e

MOBILE, DIALLED = "+447911123456", "07911123456"


def token(e2e: E2E, person: str, role: str) -> str:
    made = e2e.cli("token", "add", "--person", person, "--role", role, "--json")
    return str(json.loads(made.stdout)["token"])


def ask(
    described: Described,
    method: str,
    template: str,
    bearer: str,
    body: dict[str, Any] | None = None,
    **path: str,
) -> tuple[int, Any]:
    """The daemon's answer, checked against the description."""
    query = path.pop("query", "")
    url = HTTP + template.format(**path) + (f"?{query}" if query else "")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {bearer}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=15) as r:
            status, kind, text = r.status, r.headers.get_content_type(), r.read().decode()
    except urllib.error.HTTPError as e:
        status, kind, text = e.code, e.headers.get_content_type(), e.read().decode()
    answer = json.loads(text) if kind == "application/json" else text
    described.validate(method, template, status, kind, answer)
    return status, answer


def test_an_officer_approves_through_the_api_and_the_handset_then_calls(e2e: E2E) -> None:
    described = Described()
    cell, prisoner, pin = provision(e2e, (MOBILE, "pending"))
    auditor = token(e2e, f"Audrey {prisoner}", "auditor")
    officer = token(e2e, f"Olly {prisoner}", "officer")
    status, queue = ask(described, "GET", "/contacts/pending", auditor, query="limit=1000")
    assert status == 200
    assert (prisoner, MOBILE) in {(c["prison_number"], c["number"]) for c in queue["contacts"]}
    approve = "/prisoners/{number}/contacts/{contact}/approve"
    why = {"reason": "verified with the prisoner's family"}
    status, _ = ask(described, "POST", approve, auditor, why, number=prisoner, contact=DIALLED)
    assert status == 403
    refused = e2e.call(cell, pin, DIALLED)
    assert (refused["outcome"], refused["reason"]) == ("refused", "contact_pending")
    status, done = ask(described, "POST", approve, officer, why, number=prisoner, contact=DIALLED)
    assert (status, done["status"]) == (200, "approved")
    call = e2e.call(cell, pin, DIALLED, 2)
    assert call["outcome"] == "connected" and call["called_party_saw_invite"] is True
    status, history = ask(described, "GET", "/calls", auditor, query=f"prisoner={prisoner}")
    assert status == 200
    assert [(c["number"], c["decision"], c["reason"]) for c in history["calls"]] == [
        (MOBILE, "allow", "approved_contact"),
        (MOBILE, "refuse", "contact_pending"),
    ]
    status, audit = ask(described, "GET", "/audit", auditor, query="action=contact_approve")
    assert status == 200
    mine = [e for e in audit["entries"] if e["target"] == f"contact:{prisoner}:{MOBILE}"]
    assert [(e["actor"], e["role"], e["reason"]) for e in mine] == [
        (f"Olly {prisoner}", "officer", why["reason"])
    ]
