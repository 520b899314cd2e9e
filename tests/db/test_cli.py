"""The operator's commands, run in-process against SQLite and PostgreSQL."""

from __future__ import annotations

import getpass
import hashlib
import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from callcontrol.adapters.db import tables as m
from tests.db.conftest import Cli


@pytest.fixture
def prison(cli: Cli) -> Cli:
    """One cell A1-01 with prisoner A1234BC (PIN 1234) in it."""
    cli.ok("cell", "add", "A1-01", "--wing", "A")
    cli.ok(
        "prisoner", "add", "A1234BC", "--name", "Ann Example", "--pin-stdin", "--cell", "A1-01",
        stdin="1234\n",
    )  # fmt: skip
    return cli


def test_cell_add_prints_the_password_once_and_keeps_its_hash(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = cli.ok("cell", "add", "A1-01")
    assert result.out.startswith("cell A1-01 added; SIP username: A1-01; SIP password ")
    password = result.out.strip().rsplit(" ", 1)[1]
    assert len(password) == 24 and password.isalnum()
    [(realm, cred)] = cli.query(select(m.Cell.sip_realm, m.Cell.sip_md5_cred))
    assert cred == hashlib.md5(f"A1-01:{realm}:{password}".encode()).hexdigest()

    # Given on standard input (never argv): stored as its hash, not printed back.
    monkeypatch.setattr("sys.stdin", io.StringIO("Handset-0002\n"))
    result = cli.ok("cell", "add", "A1-02", "--sip-password-stdin", "--json")
    data = result.json()
    assert data["name"] == "A1-02" and data["enabled"] is True and "sip_password" not in data
    [(cred,)] = cli.query(select(m.Cell.sip_md5_cred).where(m.Cell.name == "A1-02"))
    assert cred == hashlib.md5(b"A1-02:callcontrol:Handset-0002").hexdigest()


def test_a_sip_password_on_the_command_line_is_refused_outside_the_lab(cli: Cli) -> None:
    result = cli("cell", "add", "A1-03", "--sip-password", "Handset-pass-0003")
    assert result.status == 2 and "--sip-password-stdin" in result.err
    assert cli.query(select(m.Cell.name)) == []


def test_cell_set_password(cli: Cli) -> None:
    first = cli.ok("cell", "add", "A1-01", "--json").json()["sip_password"]
    again = cli.ok("cell", "set-password", "A1-01", "--json").json()["sip_password"]
    assert again != first
    [(cred,)] = cli.query(select(m.Cell.sip_md5_cred))
    assert cred == hashlib.md5(f"A1-01:callcontrol:{again}".encode()).hexdigest()
    assert cli("cell", "set-password", "Z9-99").status == 2


def test_json_before_or_after_the_command(prison: Cli) -> None:
    after = prison.ok("cell", "list", "--json").json()
    before = prison.ok("--json", "cell", "list").json()
    assert after == before
    assert [c["name"] for c in after] == ["A1-01"]
    assert "sip_password" not in after[0]
    assert "A1-01" in prison.ok("cell", "list").out


def test_cells_disable_and_enable(prison: Cli) -> None:
    out = prison.ok("cell", "disable", "A1-01", "--reason", "handset broken").out
    assert "cell A1-01 disabled (handset broken)" in out
    [cell] = prison.ok("cell", "list", "--json").json()
    assert cell["enabled"] is False and cell["disabled_reason"] == "handset broken"
    prison.ok("cell", "enable", "A1-01")
    [cell] = prison.ok("cell", "list", "--json").json()
    assert cell["enabled"] is True and cell["disabled_reason"] == ""


def test_prisoners(prison: Cli) -> None:
    prison.ok("cell", "add", "B2-07")
    assert "moved to cell B2-07" in prison.ok("prisoner", "move", "A1234BC", "--cell", "B2-07").out
    prison.ok("prisoner", "suspend", "A1234BC", "--reason", "adjudication")
    [p] = prison.ok("prisoner", "list", "--json").json()
    assert p["prison_number"] == "A1234BC" and p["name"] == "Ann Example"
    assert p["cell"] == "B2-07" and p["active"] is False and p["suspended_reason"] == "adjudication"
    assert "pin_hash" not in p
    prison.ok("prisoner", "reinstate", "A1234BC")
    [p] = prison.ok("prisoner", "list", "--json").json()
    assert p["active"] is True


def test_pin_is_never_stored_in_clear(prison: Cli) -> None:
    prison.ok(
        "prisoner", "add", "B5678CD", "--name", "Bo", "--pin-stdin", "--cell", "A1-01",
        stdin="9870\n",
    )  # fmt: skip
    rows = dict(prison.query(select(m.Prisoner.prison_number, m.Prisoner.pin_hash)))
    for number, pin in (("A1234BC", "1234"), ("B5678CD", "9870")):
        assert rows[number].startswith("h2$")
        assert pin not in rows[number]
    prison.ok("prisoner", "set-pin", "A1234BC", "--pin-stdin", stdin="5555\n")
    [(new,)] = prison.query(
        select(m.Prisoner.pin_hash).where(m.Prisoner.prison_number == "A1234BC")
    )
    assert new != rows["A1234BC"] and new.startswith("h2$")


def test_contacts_and_their_history(prison: Cli) -> None:
    added = prison.ok(
        "contact", "add", "A1234BC", "020 7946 0000", "--kind", "social", "--label", "mother",
        "--json",
    ).json()  # fmt: skip
    assert added["number"] == "+442079460000"
    assert added["status"] == "pending" and added["kind"] == "social"
    prison.ok("contact", "add", "A1234BC", "+44 161 496 0000", "--kind", "legal", "--by", "ops1")
    prison.ok("contact", "approve", "A1234BC", "02079460000", "--by", "officer.smith")
    prison.ok("contact", "block", "A1234BC", "+441614960000")
    prison.ok("contact", "block", "A1234BC", "0113 496 0000", "--by", "security")

    listed = {c["number"]: c for c in prison.ok("contact", "list", "A1234BC", "--json").json()}
    assert {n: c["status"] for n, c in listed.items()} == {
        "+442079460000": "approved",
        "+441614960000": "blocked",
        "+441134960000": "blocked",
    }
    assert listed["+442079460000"]["label"] == "mother"

    history = prison.ok("contact", "history", "A1234BC", "--json").json()
    me = getpass.getuser()
    assert [(h["number"], h["action"], h["old_status"], h["new_status"], h["changed_by"])
            for h in history] == [
        ("+442079460000", "added", "", "pending", me),
        ("+441614960000", "added", "", "pending", "ops1"),
        ("+442079460000", "approved", "pending", "approved", "officer.smith"),
        ("+441614960000", "blocked", "pending", "blocked", me),
        ("+441134960000", "blocked", "", "blocked", "security"),
    ]  # fmt: skip
    now = datetime.now(UTC)
    for h in history:
        assert abs(now - datetime.fromisoformat(h["changed_at"])) < timedelta(minutes=5)
    text = prison.ok("contact", "history", "A1234BC").out
    assert "officer.smith" in text and "approved" in text


def test_contact_limit(prison: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLCONTROL_SITE_MAX_SOCIAL_CONTACTS", "2")
    prison.ok("contact", "add", "A1234BC", "020 7946 0001", "--kind", "social")
    prison.ok("contact", "add", "A1234BC", "020 7946 0002", "--kind", "social")
    before = prison.counts()
    result = prison("contact", "add", "A1234BC", "020 7946 0003", "--kind", "social")
    assert result.status == 2 and result.out == ""
    assert result.err.startswith("callcontrol: error: ") and "social" in result.err
    assert prison.counts() == before
    # The other kind has its own limit; a blocked contact does not count.
    prison.ok("contact", "add", "A1234BC", "020 7946 0009", "--kind", "legal")
    prison.ok("contact", "block", "A1234BC", "020 7946 0001")
    prison.ok("contact", "add", "A1234BC", "020 7946 0003", "--kind", "social")
    # Unblocking the blocked one would make three.
    before = prison.counts()
    result = prison("contact", "approve", "A1234BC", "020 7946 0001")
    assert result.status == 2 and "limit of 2 social contacts" in result.err
    assert prison.counts() == before


def test_global_numbers(cli: Cli) -> None:
    data = cli.ok(
        "number", "allow", "116123", "--privileged", "--label", "Samaritans", "--json"
    ).json()
    assert data["number"] == "116123" and data["privileged"] is True
    assert data["policy"] == "allowed" and data["changed_by"] == getpass.getuser()
    cli.ok("number", "block", "+44 20 7946 0999", "--label", "victim", "--by", "security")
    listed = {n["number"]: n for n in cli.ok("number", "list", "--json").json()}
    assert listed["116123"]["policy"] == "allowed"
    assert listed["+442079460999"]["policy"] == "blocked"
    assert listed["+442079460999"]["changed_by"] == "security"
    # Changing an entry's policy keeps one row.
    cli.ok("number", "allow", "020 7946 0999")
    [(policy, label)] = cli.query(
        select(m.GlobalNumber.policy, m.GlobalNumber.label).where(
            m.GlobalNumber.number == "+442079460999"
        )
    )
    assert (policy, label) == ("allowed", "victim")
    assert "116123" in cli.ok("number", "list").out


ADD_B1 = ("prisoner", "add", "B1", "--name", "B")
REFUSED = {
    "bad cell name": ("cell", "add", "A1/01"),
    "cell name too long": ("cell", "add", "A" * 33),
    "duplicate cell": ("cell", "add", "A1-01"),
    "short SIP password": ("cell", "add", "A1-02", "--sip-password", "short"),
    "SIP password with ;": ("cell", "add", "A1-02", "--sip-password", "abcdefghijkl;mn"),
    "PIN of 3 digits": (*ADD_B1, "--pin-stdin", "--cell", "A1-01"),
    "PIN with letters": (*ADD_B1, "--pin-stdin", "--cell", "A1-01"),
    "PIN of 5 digits": (*ADD_B1, "--pin-stdin", "--cell", "A1-01"),
    "no PIN on stdin": (*ADD_B1, "--pin-stdin", "--cell", "A1-01"),
    "no terminal for the prompt": (*ADD_B1, "--cell", "A1-01"),
    "PIN on argv outside the lab": (*ADD_B1, "--pin", "4321", "--cell", "A1-01"),
    "set-pin on argv outside the lab": ("prisoner", "set-pin", "A1234BC", "--pin", "4321"),
    "two ways to give a PIN": (*ADD_B1, "--pin-stdin", "--generate-pin", "--cell", "A1-01"),
    "unknown cell": (*ADD_B1, "--pin-stdin", "--cell", "Z9"),
    "cellmate's PIN": (*ADD_B1, "--pin-stdin", "--cell", "A1-01"),
    "empty name": ("prisoner", "add", "B1", "--name", " ", "--pin-stdin", "--cell", "A1-01"),
    "bad prison number": ("prisoner", "add", "B-1", "--name", "B", "--pin-stdin",
                          "--cell", "A1-01"),
    "duplicate prisoner": ("prisoner", "add", "A1234BC", "--name", "B", "--pin-stdin",
                           "--cell", "A1-01"),
    "missing --name": ("prisoner", "add", "B1", "--pin-stdin", "--cell", "A1-01"),
    "move to unknown cell": ("prisoner", "move", "A1234BC", "--cell", "Z9"),
    "unknown prisoner": ("prisoner", "suspend", "Z999"),
    "malformed number": ("contact", "add", "A1234BC", "12ab", "--kind", "social"),
    "emergency number": ("contact", "add", "A1234BC", "999", "--kind", "social"),
    "short code as contact": ("contact", "add", "A1234BC", "116123", "--kind", "social"),
    "unknown kind": ("contact", "add", "A1234BC", "020 7946 0000", "--kind", "family"),
    "contact of unknown prisoner": ("contact", "add", "Z999", "020 7946 0000", "--kind", "social"),
    "approve a number not listed": ("contact", "approve", "A1234BC", "020 7946 0000"),
    "global emergency number": ("number", "allow", "112"),
    "global malformed number": ("number", "block", "0800-CALL-NOW"),
    "unknown command": ("cell", "remove", "A1-01"),
    "unknown option": ("cell", "list", "--colour"),
}  # fmt: skip


# What the refused commands read on standard input (a PIN for --pin-stdin).
STDIN = {
    "no PIN on stdin": "",
    "no terminal for the prompt": "",  # not a terminal
    "PIN of 3 digits": "123\n",
    "PIN with letters": "12ab\n",
    "PIN of 5 digits": "12345\n",
    "unknown cell": "1357\n",
    "cellmate's PIN": "1234\n",
    "empty name": "4321\n",
    "bad prison number": "4321\n",
    "duplicate prisoner": "4321\n",
    "missing --name": "1234\n",
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_refused_with_one_line_and_nothing_written(prison: Cli, name: str) -> None:
    before = prison.counts()
    pin_hashes = prison.query(select(m.Prisoner.pin_hash))
    result = prison(*REFUSED[name], stdin=STDIN.get(name))
    assert result.status == 2
    assert result.out == ""
    assert result.err.startswith("callcontrol: error: ")
    assert result.err.count("\n") == 1 and result.err.endswith("\n")
    assert prison.counts() == before
    assert prison.query(select(m.Prisoner.pin_hash)) == pin_hashes


def test_duplicate_contact_refused(prison: Cli) -> None:
    prison.ok("contact", "add", "A1234BC", "020 7946 0000", "--kind", "social")
    before = prison.counts()
    result = prison("contact", "add", "A1234BC", "+442079460000", "--kind", "legal")
    assert result.status == 2 and "already" in result.err
    assert prison.counts() == before


def test_help(cli: Cli) -> None:
    result = cli("--help")
    assert result.status == 0 and "contact" in result.out
    for group in ("db", "cell", "prisoner", "contact", "number"):
        assert cli(group, "--help").status == 0
    result = cli("contact", "add", "--help")
    assert result.status == 0 and "--kind" in result.out and "pending approval" in result.out
