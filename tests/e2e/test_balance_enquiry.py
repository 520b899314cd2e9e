"""The balance enquiry on a real handset (issue 11, part 2): a SIPp handset keys its PIN and
dials *100, en bloc or in two stages, through the real lab and daemon. Asterisk says the
available credit and the minutes left today (its log names every file it played to the
handset); no call reaches the called party (the simulator's own SIPp watches the trunk), nothing
is reserved or charged, and the enquiry is stored and shown in `calls history`. A wrong PIN, or a
locked handset, gets exactly a call's refusal and hears no figure."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.conftest import E2E
from tests.e2e.softphones import BARESIP
from tests.e2e.test_cell_calls import LONDON, provision
from tests.e2e.test_fail_closed import fake_daemon, read_environment
from tests.e2e.test_softphones import decision_of, phone, pin_prompt, until

pytestmark = pytest.mark.e2e

CODE = "*100"
DAILY_MINUTES = 25  # the site's daily allowance here
SITE_TZ = ZoneInfo("Europe/London")  # [site] timezone, the default
ALLOWANCE = {"CALLCONTROL_BILLING_MAX_MINUTES_PER_DAY": str(DAILY_MINUTES)}  # daemon's env
PLAYING = re.compile(r"<(PJSIP/[^>]+)> Playing '([^']+)'")
WRONG = "2468"


@pytest.fixture(scope="module", autouse=True)
def daily_allowance(e2e: E2E) -> Iterator[None]:
    """The daemon with a daily allowance of 25 minutes; the usual one back afterwards."""
    e2e.daemon.restart(ALLOWANCE)
    yield
    e2e.daemon.restart()


class Played:
    """What Asterisk played to one cell's handset channel, from its log, from now on."""

    def __init__(self, e2e: E2E, cell: str) -> None:
        self.path = e2e.lab.inside(e2e.lab.log_dir) / "messages.log"
        self.start = self.path.stat().st_size if self.path.exists() else 0
        self.cell = cell

    def files(self) -> list[str]:
        """Each file played, as "digits/4" or the prompt's bare name ("cc-pounds")."""
        text = self.path.read_bytes()[self.start :].decode(errors="replace")
        out = []
        for channel, name in PLAYING.findall(text):
            if not channel.startswith(f"PJSIP/{self.cell}-"):
                continue
            stem = name.rsplit(".", 1)[0]
            out.append(stem if stem.startswith("digits/") else stem.rsplit("/", 1)[-1])
        return out

    def until(self, last: str, within: float = 10.0) -> list[str]:
        """The files played, once ``last`` is among them (Asterisk logs as it plays)."""
        deadline = time.monotonic() + within
        while last not in self.files() and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.files()


def say_number(n: int) -> list[str]:
    """The files Asterisk's English SayNumber plays for 0 <= n < 1000."""
    if n == 0:
        return ["digits/0"]
    out = []
    if n >= 100:
        out += [f"digits/{n // 100}", "digits/hundred"]
        n %= 100
    if n >= 20:
        out.append(f"digits/{n - n % 10}")
        n %= 10
    if n:
        out.append(f"digits/{n}")
    return out


def spoken(pence: int, minutes: int) -> list[str]:
    """What the enquiry says for an available credit of ``pence`` (>= 0) and ``minutes``."""
    pounds, rest = divmod(pence, 100)
    out = ["cc-balance-is"]
    if pounds or not rest:
        out += say_number(pounds) + ["cc-pound" if pounds == 1 else "cc-pounds"]
    if rest:
        out += say_number(rest) + ["cc-penny" if rest == 1 else "cc-pence"]
    word = "cc-minute-left-today" if minutes == 1 else "cc-minutes-left-today"
    return out + ["cc-you-have", *say_number(minutes), word]


def enquiry_row(e2e: E2E, call: dict[str, object]) -> dict[str, object]:
    rows = e2e.sql(
        "SELECT d.id, d.at, d.outcome, d.reason, d.dialled, d.number, d.detail, d.decision_ms, "
        "(SELECT count(*) FROM calls c WHERE c.decision_id = d.id) AS calls "
        "FROM call_decisions d WHERE d.sip_call_id = $1",
        call["sip_call_id"],
    )
    assert len(rows) == 1, rows
    return dict(rows[0])


def minutes_expected(decided_at: datetime) -> int:
    """The allowance, unless the day ends sooner (a run just before local midnight)."""
    if decided_at.tzinfo is None:  # stored as UTC
        decided_at = decided_at.replace(tzinfo=UTC)
    local = decided_at.astimezone(SITE_TZ)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), SITE_TZ)
    return min(DAILY_MINUTES, int((midnight - decided_at).total_seconds()) // 60)


def nothing_placed(e2e: E2E, call: dict[str, object], prisoner: str, credit: int) -> None:
    """No call reached the called party; nothing was opened, reserved or charged."""
    assert call["called_party_saw_invite"] is False, call
    assert call["ended_by"] == "network", call  # Asterisk hung up once it had spoken
    [account] = e2e.sql(
        "SELECT a.balance_pence, a.reserved_pence, "
        "(SELECT count(*) FROM reservations r WHERE r.prisoner_id = p.id) AS reservations, "
        "(SELECT count(*) FROM calls c WHERE c.prisoner_id = p.id) AS calls "
        "FROM accounts a JOIN prisoners p ON p.id = a.prisoner_id WHERE p.prison_number = $1",
        prisoner,
    )
    assert dict(account) == {
        "balance_pence": credit,
        "reserved_pence": 0,
        "reservations": 0,
        "calls": 0,
    }


@pytest.mark.parametrize("dialling", ["en_bloc", "two_stage"])
def test_star_100_says_the_balance_and_the_minutes_left_and_places_no_call(
    e2e: E2E, dialling: str
) -> None:
    cell, prisoner, pin = provision(e2e, (LONDON, "approved"), credit=420)
    played = Played(e2e, cell)
    if dialling == "en_bloc":
        call = e2e.call(cell, pin, CODE, 20)
    else:  # dial "0", key the PIN, then the code when asked for the number
        call = e2e.call(cell, pin, "0", 20, "--pin", CODE, "--pin-tries", "2")
    assert (call["decision"], call["reason"]) == ("service", "balance_enquiry"), call
    nothing_placed(e2e, call, prisoner, 420)

    row = enquiry_row(e2e, call)
    minutes = minutes_expected(row["at"])  # type: ignore[arg-type]
    print(f"\n{dialling}: the enquiry took {row['decision_ms']:.1f} ms once the PIN was in")
    assert (row["outcome"], row["reason"], row["dialled"], row["number"], row["calls"]) == (
        "service",
        "balance_enquiry",
        CODE,
        None,
        0,
    )
    assert str(row["detail"]).startswith(f"available 420p; {minutes} min left today"), row
    # "Your balance is 4 pounds 20 pence. You have 25 minutes left today."
    files = played.until("cc-minutes-left-today")
    assert files[files.index("cc-balance-is") :] == spoken(420, minutes), files
    assert "cc-refused" not in files

    history = json.loads(e2e.cli("calls", "history", "--prisoner", prisoner, "--json").stdout)
    [shown] = history["calls"]
    assert (shown["decision"], shown["reason"], shown["dialled"]) == (
        "service",
        "balance_enquiry",
        CODE,
    )
    assert shown["decision_id"] == row["id"] and shown["call_id"] is None
    service = e2e.cli("calls", "history", "--outcome", "service", "--cell", cell, "--json")
    assert [r["decision_id"] for r in json.loads(service.stdout)["calls"]] == [row["id"]]
    log = e2e.daemon.log.read_text(errors="replace")
    assert f"SERVICE call from handset {cell} prisoner {prisoner} to '{CODE}'" in log


def test_no_credit_says_zero_pounds_and_zero_minutes(e2e: E2E) -> None:
    cell, prisoner, pin = provision(e2e, (LONDON, "approved"), credit=0)
    played = Played(e2e, cell)
    call = e2e.call(cell, pin, CODE + "#", 20)
    assert (call["decision"], call["reason"]) == ("service", "balance_enquiry"), call
    files = played.until("cc-minutes-left-today")
    assert files[files.index("cc-balance-is") :] == spoken(0, 0), files
    assert enquiry_row(e2e, call)["dialled"] == CODE + "#"


@pytest.mark.skipif(BARESIP is None, reason="baresip missing: run scripts/system-deps.sh")
def test_a_real_softphone_hears_its_balance(e2e: E2E, tmp_path: Path) -> None:
    """Debian's baresip dials *100 and keys its PIN as RFC 2833 events: 1 pound 37 pence."""
    cell, _, pin = provision(e2e, (LONDON, "approved"), credit=137)
    played = Played(e2e, cell)
    with phone(e2e, cell, tmp_path) as p:
        p.dial(CODE)
        p.wait_event("CALL_ESTABLISHED")
        pin_prompt(e2e)
        p.keys(pin + "#")
        p.wait_event("CALL_CLOSED", timeout=30)  # Asterisk hangs up once it has spoken
        call_id = p.call_id
    d = until(lambda: decision_of(e2e, call_id), "the enquiry's record")
    assert (d["outcome"], d["reason"], d["dialled"], d["call_id"]) == (
        "service",
        "balance_enquiry",
        CODE,
        None,
    )
    [row] = e2e.sql("SELECT at FROM call_decisions WHERE sip_call_id = $1", call_id)
    files = played.until("cc-minutes-left-today")
    expected = spoken(137, minutes_expected(row["at"]))
    assert files[files.index("cc-balance-is") :] == expected, files
    assert expected[1:3] == ["digits/1", "cc-pound"]  # one pound, not "one pounds"


def _failures(e2e: E2E, cell: str) -> int:
    rows = e2e.sql(
        "SELECT count(*) AS n FROM pin_failures f JOIN cells c ON c.id = f.cell_id "
        "WHERE c.name = $1",
        cell,
    )
    return int(rows[0]["n"])


def _refused(e2e: E2E, cell: str, pin: str, dial: str, *extra: str) -> tuple[object, ...]:
    """A call's facts and the files played to the handset after its PIN: never a figure."""
    played = Played(e2e, cell)
    call = e2e.call(cell, pin, dial, 3, *extra)
    files = played.until("cc-refused")
    return (
        call["outcome"],
        call["decision"],
        call["reason"],
        call["sip_status"],
        call["ended_by"],
        call["called_party_saw_invite"],
        tuple(files),
    )


def test_a_wrong_pin_then_star_100_is_refused_like_a_call_and_counts(e2e: E2E) -> None:
    enquirer, prisoner, pin = provision(e2e, (LONDON, "approved"), credit=420)
    caller, _, _ = provision(e2e, (LONDON, "approved"), credit=420)
    enquiry = _refused(e2e, enquirer, WRONG, CODE, "--pin-tries", "3")
    call = _refused(e2e, caller, WRONG, "02079460000", "--pin-tries", "3")
    assert enquiry == call, (enquiry, call)
    assert enquiry == ("refused", "refuse", "wrong_pin", 200, "network", False, ("cc-refused",))
    assert _failures(e2e, enquirer) == _failures(e2e, caller) == 3

    # Two more wrong PINs lock the handset: the right PIN keyed for *100 is not even looked at.
    locking = _refused(e2e, enquirer, WRONG, CODE, "--pin", WRONG, "--pin", pin, "--pin-tries", "3")
    assert locking[2] == "pin_locked" and locking[-1] == ("cc-refused",), locking
    locked = _refused(e2e, enquirer, pin, CODE)
    assert locked == ("refused", "refuse", "pin_locked", 200, "network", False, ("cc-refused",))
    assert _failures(e2e, enquirer) == 5
    reasons = e2e.sql(
        "SELECT d.outcome, d.reason FROM call_decisions d JOIN prisoners p "
        "ON p.id = d.prisoner_id WHERE p.prison_number = $1",
        prisoner,
    )
    assert reasons == []  # no PIN matched: no enquiry of that prisoner's was ever answered


GOOD = "balance:balance_enquiry:0:4:20:25"
SAID = tuple(spoken(420, 25))
REFUSED = ("cc-refused",)
# What something else on the daemon's port sets, in order (CC_ANSWER unless named).
FORGED = [
    ([GOOD], SAID),  # the control: the same liar with whole numbers is heard
    (["balance:balance_enquiry:0:1+1:20:25"], REFUSED),  # an expression, not a number
    (["balance:balance_enquiry:0:4:5)|Dial(PJSIP/02079460000@pstn:25"], REFUSED),
    (["balance:balance_enquiry:2:4:20:25"], REFUSED),
    (["balance:balance_enquiry:0:1234567890:20:25"], REFUSED),  # ten digits
    (["balance:balance_enquiry:0:4"], REFUSED),  # figures missing
    (["balance:balance_enquiry:0:4:20:25:0"], REFUSED),  # a figure too many
    # The old protocol's variables: nothing reads them any more.
    (
        [
            ("CC_BALANCE_NEGATIVE", "0"),
            ("CC_BALANCE_POUNDS", "4"),
            ("CC_BALANCE_PENCE", "20"),
            ("CC_MINUTES_LEFT", "25"),
            ("CC_DECISION", "balance"),
        ],
        REFUSED,
    ),
]


@pytest.mark.parametrize(
    ("sets", "heard"),
    FORGED,
    ids=["control", "expression", "app", "sign", "long", "missing", "extra", "old-variables"],
)
def test_figures_that_are_not_whole_numbers_are_refused_unsaid(
    e2e: E2E, sets: list[str | tuple[str, str]], heard: tuple[str, ...]
) -> None:
    """Something else on the daemon's port answers "balance" with figures the daemon never
    sends: the dialplan checks the answer's shape, then each figure again, before any
    expression or SayNumber reads it, and refuses."""
    cell, _, pin = provision(e2e, (LONDON, "approved"))

    def lying(conn: socket.socket) -> None:
        read_environment(conn)
        f = conn.makefile("rwb", buffering=0)
        for one in sets:
            name, value = one if isinstance(one, tuple) else ("CC_ANSWER", one)
            f.write(f'SET VARIABLE {name} "{value}"\n'.encode())
            f.readline()
        conn.close()

    played = Played(e2e, cell)
    e2e.daemon.stop()
    try:
        with fake_daemon(lying):
            call = e2e.call(cell, pin, CODE, 20 if heard == SAID else 3)
    finally:
        e2e.daemon.start(ALLOWANCE)
    assert call["called_party_saw_invite"] is False, call
    assert tuple(played.until(heard[-1])) == heard
