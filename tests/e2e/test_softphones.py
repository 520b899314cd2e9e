"""Real handsets, not only SIPp (issue 10, part 3): Debian's baresip as the cell handset against
the real lab and daemon, and a scripted SIP peer for what a hostile handset would send.

The called party is the lab's SIPp (accepting with 1); the handset registers or not, keys its PIN
as RFC 2833 events, offers u-law, A-law or G.722 only, dials en bloc or in two stages, tries a
transfer. Each call is checked where it lands: the decision, the settlement, the recording."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydub import AudioSegment

from callcontrol.config import load_settings
from callcontrol_lab.simulator.records import cell_password
from callcontrol_lab.simulator.sipp import RunDir, called_party_command, find_sipp, stage_scenario
from tests.e2e.conftest import E2E, PORTS
from tests.e2e.sip_peer import SipHandset
from tests.e2e.softphones import BARESIP, LINPHONEC, Baresip, Linphone
from tests.e2e.test_cell_calls import LONDON, provision
from tests.e2e.test_recording import recording_of, store_dir, tone_power

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(BARESIP is None, reason="baresip missing: run scripts/system-deps.sh"),
]

_serial = itertools.count(1)


@pytest.fixture(scope="module")
def called_party(e2e: E2E) -> Iterator[None]:
    """The lab's called party (SIPp), answering every call and accepting it with 1."""
    prefix = find_sipp(load_settings(e2e.config))
    run = RunDir.create(prefix, "callcontrol-softphones-")
    cmd = called_party_command(
        prefix, run, stage_scenario(run, "called_party.xml"),
        ip="127.0.0.1", port=PORTS["pstn"], media_port=16000, mode="accept", calls=0,
    )  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    until(lambda: _bound(PORTS["pstn"]), "the called party's SIPp", timeout=10, every=0.05)
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        run.remove()


@pytest.fixture(scope="module")
def prison(e2e: E2E) -> tuple[str, str, str, str]:
    """One cell (its prisoner may call LONDON, PIN 1357) for every call here, one after the
    other, and a second cell that nobody calls from: (cell, prisoner, pin, other cell)."""
    cell, prisoner, pin = provision(e2e, (LONDON, "approved"))
    other, _, _ = provision(e2e)
    return cell, prisoner, pin, other


def _bound(port: int) -> bool:
    """Is something listening on this UDP port of 127.0.0.1?"""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@contextlib.contextmanager
def phone(e2e: E2E, cell: str, tmp: Path, **options: object) -> Iterator[Baresip]:
    password = asyncio.run(cell_password(load_settings(e2e.config), cell))
    assert password
    p = Baresip(tmp / f"baresip-{next(_serial)}", cell, password, PORTS["pjsip"], **options)  # type: ignore[arg-type]
    try:
        yield p
    finally:
        p.close()


def until(check, what: str, timeout: float = 15.0, every: float = 0.1):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def pin_prompt(e2e: E2E) -> None:
    """Wait until the decision's AGI runs (its GET DATA plays the prompt, digits interrupt)."""
    until(lambda: "Local/decide@cc-decide" in e2e.lab.rx("core show channels concise"), "AGI")
    time.sleep(0.5)


def failures(e2e: E2E, cell: str) -> int:
    rows = e2e.sql(
        "SELECT count(*) AS n FROM pin_failures f JOIN cells c ON c.id = f.cell_id "
        "WHERE c.name = $1",
        cell,
    )
    return int(rows[0]["n"])


def decision_of(e2e: E2E, call_id: str) -> dict[str, object]:
    """The decision on the call with this SIP Call-ID, with its settlement once there is one."""
    rows = e2e.sql(
        "SELECT d.outcome, d.reason, d.dialled, d.number, d.sip_call_id, c.id AS call_id, "
        "c.uniqueid, c.talk_seconds, c.charge_pence, c.settled_at FROM call_decisions d "
        "LEFT JOIN calls c ON c.decision_id = d.id WHERE d.sip_call_id = $1",
        call_id,
    )
    return dict(rows[0]) if rows else {}


def accepted(e2e: E2E, call_id: str) -> dict[str, object]:
    """The cell's allowed call, once its called party has accepted it (the journal says so)."""

    def check() -> dict[str, object] | None:
        d = decision_of(e2e, call_id)
        done = d.get("uniqueid") and f"accepted|{d['uniqueid']}|" in journal.read_text()
        return d if done else None

    journal = e2e.lab.journal_path
    return until(check, "the called party's acceptance")  # type: ignore[no-any-return]


def talk_and_hang_up(e2e: E2E, p: Baresip, talk_s: float = 3.0) -> dict[str, object]:
    """Once the called party has accepted, talk, hang up; the settled call."""
    accepted(e2e, p.call_id)
    time.sleep(talk_s)
    p.command("hangup")
    p.wait_event("CALL_CLOSED")
    return settlement(e2e, p.call_id)


def settlement(e2e: E2E, call_id: str) -> dict[str, object]:
    def check() -> dict[str, object] | None:
        d = decision_of(e2e, call_id)
        return d if d.get("settled_at") else None

    return until(check, "the settlement")  # type: ignore[no-any-return]


def check_recording(e2e: E2E, settled: dict[str, object]) -> None:
    """Recorded for the talk time, the handset's 1 kHz tone on its own channel."""
    rec = recording_of(e2e, settled["call_id"])
    assert rec is not None, "no recording stored"
    assert abs(int(rec["duration_ms"]) - 1000 * int(settled["talk_seconds"])) <= 1000, (
        rec,
        settled,
    )
    audio = AudioSegment.from_file(store_dir(e2e) / str(rec["file_name"]))
    called, handset = audio.split_to_mono()
    rate = audio.frame_rate
    # Each party at its own pitch (a G.722 leg mixed at 16 kHz once halved both): the called
    # party's 400 Hz on the left, the handset's 1 kHz on the right.
    hs = list(handset.get_array_of_samples()[rate : rate * 2])
    cp = list(called.get_array_of_samples()[rate : rate * 2])
    assert tone_power(hs, rate, 1000) > 100 * tone_power(hs, rate, 500)
    assert tone_power(cp, rate, 400) > 100 * tone_power(cp, rate, 200)


def test_a_registered_baresip_calls_with_its_pin_bridged_recorded_and_billed(
    e2e: E2E, prison: tuple[str, str, str, str], called_party: None, tmp_path: Path
) -> None:
    cell, prisoner, pin, _ = prison
    with phone(e2e, cell, tmp_path, register=True) as p:
        until(lambda: f"{cell}/sip:" in e2e.lab.rx("pjsip show contacts"), "REGISTER")
        p.dial("02079460000")
        p.wait_event("CALL_ESTABLISHED")
        pin_prompt(e2e)
        p.keys(pin + "#")
        settled = talk_and_hang_up(e2e, p)
    assert (settled["outcome"], settled["reason"], settled["number"]) == (
        "allow", "approved_contact", LONDON,
    )  # fmt: skip
    assert int(settled["talk_seconds"]) >= 2
    check_recording(e2e, settled)
    # A few seconds at 3.1p a minute round to 0p: on the statement all the same.
    rows = json.loads(e2e.cli("account", "statement", prisoner, "--json").stdout)
    [line] = [r for r in rows if r["call_id"] == settled["call_id"]]
    assert line["talk_seconds"] == settled["talk_seconds"]


def sip_peer(e2e: E2E, cell: str) -> SipHandset:
    password = asyncio.run(cell_password(load_settings(e2e.config), cell))
    assert password
    return SipHandset(cell, password, PORTS["pjsip"])


def contacts(e2e: E2E, aor: str) -> list[str]:
    return [
        line.split()[1]
        for line in e2e.lab.rx("pjsip show contacts").splitlines()
        if line.strip().startswith("Contact:") and line.split()[1].startswith(f"{aor}/sip:")
    ]


def test_a_handset_registers_only_as_itself_and_holds_one_contact(
    e2e: E2E, prison: tuple[str, str, str, str]
) -> None:
    """Its own AOR: 200, one contact, the newest replacing the last. Another cell's, the trunk's,
    the officers' desk's: refused, and their contacts stay what the configuration says."""
    cell, _, _, other = prison
    peer = sip_peer(e2e, cell)
    try:
        assert peer.register(cell) == 200
        assert peer.register(cell, contact_port=peer.lport + 1) == 200  # a rebooted phone
        assert contacts(e2e, cell) == [f"{cell}/sip:{cell}@127.0.0.1:{peer.lport + 1}"]
        for aor in (other, "pstn", "officers"):
            assert peer.register(aor) in (403, 404), aor
        assert contacts(e2e, other) == []
        assert contacts(e2e, "pstn") == [f"pstn/sip:127.0.0.1:{PORTS['pstn']}"]
        assert contacts(e2e, "officers") == ["officers/sip:127.0.0.1:5190"]
        assert peer.register(cell, expires=0) == 200
    finally:
        peer.close()


@pytest.mark.parametrize("codec", ["PCMA", "G722/16000/1"])
def test_a_handset_offering_only_a_law_or_g722_is_bridged_and_recorded(
    e2e: E2E, prison: tuple[str, str, str, str], called_party: None, tmp_path: Path, codec: str
) -> None:
    """Unregistered too: the INVITE's digest is enough."""
    cell, _, pin, _ = prison
    with phone(e2e, cell, tmp_path, codecs=codec) as p:
        p.dial("02079460000")
        p.wait_event("CALL_ESTABLISHED")
        pin_prompt(e2e)
        p.keys(pin + "#")
        settled = talk_and_hang_up(e2e, p)
    assert (settled["outcome"], settled["number"]) == ("allow", LONDON)
    assert f"Set audio encoder: {codec.split('/')[0]} " in p.log.read_text()
    check_recording(e2e, settled)


def test_a_hash_ends_a_pin_and_never_costs_a_try(
    e2e: E2E, prison: tuple[str, str, str, str], called_party: None, tmp_path
) -> None:
    """1111# (wrong), then the right PIN ended by #: one failure, the call goes through."""
    cell, _, pin, _ = prison
    with phone(e2e, cell, tmp_path) as p:
        p.dial("02079460000")
        p.wait_event("CALL_ESTABLISHED")
        pin_prompt(e2e)
        before = failures(e2e, cell)
        p.keys("1111#")
        until(lambda: failures(e2e, cell) == before + 1, "the wrong PIN")
        time.sleep(0.5)  # the daemon's next GET DATA: "password incorrect, please enter..."
        p.keys(pin + "#")
        settled = talk_and_hang_up(e2e, p, talk_s=1.0)
    assert (settled["outcome"], settled["reason"]) == ("allow", "approved_contact")
    assert failures(e2e, cell) == before + 1


def test_two_stage_dialling_pin_then_the_number_keyed(
    e2e: E2E, prison: tuple[str, str, str, str], called_party: None, tmp_path: Path
) -> None:
    """A desk phone's hotline dials [site] two_stage_number ("0"): PIN, then the number."""
    cell, _, pin, _ = prison
    with phone(e2e, cell, tmp_path) as p:
        p.dial("0")
        p.wait_event("CALL_ESTABLISHED")
        pin_prompt(e2e)
        p.keys(pin + "#")
        time.sleep(1.0)  # the PIN is checked; "please enter the number you wish to call"
        p.keys("02079460000#")
        settled = talk_and_hang_up(e2e, p, talk_s=1.0)
    assert (settled["outcome"], settled["reason"]) == ("allow", "approved_contact")
    assert (settled["dialled"], settled["number"]) == ("02079460000", LONDON)


def test_two_stage_keyed_digits_are_decided_like_an_en_bloc_number(
    e2e: E2E, prison: tuple[str, str, str, str], tmp_path: Path
) -> None:
    cell, _, pin, _ = prison
    with phone(e2e, cell, tmp_path) as p:
        p.dial("0")
        p.wait_event("CALL_ESTABLISHED")
        pin_prompt(e2e)
        p.keys(pin + "#")
        time.sleep(1.0)
        p.keys("999888#")  # not a number
        p.wait_event("CALL_CLOSED", timeout=15)
    d = until(lambda: decision_of(e2e, p.call_id), "the decision")
    assert (d["outcome"], d["reason"], d["dialled"]) == ("refuse", "invalid_number", "999888")


def test_an_en_bloc_number_ended_by_hash_and_a_pin_by_sip_info(
    e2e: E2E, prison: tuple[str, str, str, str], called_party: None
) -> None:
    """INVITE to 02079460000# (%23 on the wire), the PIN keyed as SIP INFO: allowed."""
    cell, _, pin, _ = prison
    peer = sip_peer(e2e, cell)
    try:
        call_id = f"hash-{next(_serial)}@cell"
        log = peer.call("02079460000%23", call_id, keys=pin + "#", stay_s=9)
    finally:
        peer.close()
    assert log.answered_at is not None
    d = settlement(e2e, call_id)
    assert (d["outcome"], d["number"], d["dialled"]) == ("allow", LONDON, "02079460000#")


@pytest.mark.skipif(LINPHONEC is None, reason="linphone-cli missing: run scripts/system-deps.sh")
def test_linphone_keys_its_pin_as_sip_info(
    e2e: E2E, prison: tuple[str, str, str, str], called_party: None, tmp_path: Path
) -> None:
    cell, _, pin, _ = prison
    password = asyncio.run(cell_password(load_settings(e2e.config), cell))
    assert password
    p = Linphone(tmp_path / "linphone", cell, password, PORTS["pjsip"])
    try:
        p.dial("02079460000")
        pin_prompt(e2e)
        p.keys(pin + "#")
        call_id = until(lambda: _call_id_of(p.sip_log), "the INVITE's Call-ID")
        accepted(e2e, call_id)
        p.command("terminate")
        d = settlement(e2e, call_id)
    finally:
        p.close()
    assert (d["outcome"], d["reason"], d["number"]) == ("allow", "approved_contact", LONDON)
    sip = p.sip_log.read_text()
    assert "application/dtmf-relay" in sip and "Signal=#" in sip  # SIP INFO, not RFC 2833


def _call_id_of(log: Path) -> str | None:
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("Call-ID: "):
            return line.split(" ", 1)[1].strip()
    return None


def test_a_transfer_is_refused_at_once_and_hold_plays_a_tone(
    e2e: E2E, prison: tuple[str, str, str, str], called_party: None, tmp_path: Path
) -> None:
    cell, _, pin, _ = prison
    log = e2e.lab.inside(e2e.lab.log_dir) / "messages.log"
    with phone(e2e, cell, tmp_path) as p:
        p.dial("02079460000")
        p.wait_event("CALL_ESTABLISHED")
        pin_prompt(e2e)
        p.keys(pin + "#")
        accepted(e2e, p.call_id)
        mark = log.stat().st_size
        p.command("hold")
        until(
            lambda: (
                "Started music on hold, class 'default', on channel 'PJSIP/pstn-"
                in log.read_text()[mark:]
            ),
            "music on hold for the called party",
            timeout=5,
        )
        p.command("resume")
        started = time.monotonic()
        p.command("transfer", f"sip:02079460001@127.0.0.1:{PORTS['pjsip']}")
        failed = p.wait_event("TRANSFER_FAILED", timeout=5)
        assert time.monotonic() - started < 2.0 and "603" in str(failed["param"]), failed
        p.command("hangup")
        call_id = p.call_id
    d = settlement(e2e, call_id)
    assert d["number"] == LONDON  # the one call, to the one number allowed
    assert "transfer attempt blocked" in log.read_text()[mark:]


@pytest.mark.parametrize("pseudo", ["h", "i", "t", "T", "s", "e", "a", "o"])
def test_the_cells_pattern_matches_no_pseudo_extension(e2e: E2E, pseudo: str) -> None:
    """A hangup runs no cell logic (no h in [cells]); a handset dialling one gets 404."""
    out = e2e.lab.rx(f"dialplan show {pseudo}@cells")
    assert f"There is no existence of {pseudo}@cells extension" in out, out


def test_a_handset_dialling_a_pseudo_extension_gets_404(
    e2e: E2E, prison: tuple[str, str, str, str]
) -> None:
    cell, _, _, _ = prison
    peer = sip_peer(e2e, cell)
    try:
        call_id = f"pseudo-{next(_serial)}@cell"
        log = peer.call("h", call_id, stay_s=2)
    finally:
        peer.close()
    assert log.statuses[-1] == 404 and log.answered_at is None, log
    assert e2e.sql("SELECT id FROM call_decisions WHERE sip_call_id = $1", call_id) == []
