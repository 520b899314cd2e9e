"""Recording and supervision end to end: the real lab, SIPp parties, PostgreSQL and the disk."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from pydub import AudioSegment

from callcontrol.adapters.ami.session import AmiSession
from callcontrol.adapters.db.engine import make_engine, session_factory
from callcontrol.config import load_settings
from callcontrol.services import recordings
from callcontrol_lab.lab import OBSERVER_USER
from callcontrol_lab.simulator import sipp
from tests.e2e.conftest import E2E, PORTS
from tests.e2e.test_billing import settled
from tests.e2e.test_cell_calls import LONDON, provision

pytestmark = pytest.mark.e2e


def store_dir(e2e: E2E) -> Path:
    return e2e.config.parent / "recordings"


def spool(e2e: E2E) -> Path:
    return e2e.lab.recordings_spool


def recording_of(e2e: E2E, call_id: object, wait: float = 15.0) -> dict[str, object] | None:
    deadline = time.monotonic() + wait
    while True:
        rows = e2e.sql("SELECT * FROM recordings WHERE call_id = $1", call_id)
        if rows:
            return dict(rows[0])
        if time.monotonic() > deadline:
            return None
        time.sleep(0.25)


def tone_power(samples: list[int], rate: int, freq: float) -> float:
    """Goertzel: the power of one frequency in a block of samples."""
    k = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + k * s1 - s2, s1
    return s1 * s1 + s2 * s2 - k * s1 * s2


def token(e2e: E2E, role: str) -> str:
    """A new token for a new person, in a 0600 file of its own; returns the file's path
    (the token never goes on a command line)."""
    person = f"E2E {role.title()} {time.monotonic_ns()}"
    out = e2e.cli("token", "add", "--person", person, "--role", role, "--json")
    made = json.loads(out.stdout)
    path = e2e.config.parent / f"token-{made['id']}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(made["token"] + "\n")
    return str(path)


@contextlib.contextmanager
def call_in_background(e2e: E2E, *args: object) -> Iterator[dict[str, object]]:
    result: dict[str, object] = {}
    thread = threading.Thread(target=lambda: result.update(e2e.call(*args)))  # type: ignore[arg-type]
    thread.start()
    try:
        yield result
    finally:
        thread.join(timeout=120)


def live_call(e2e: E2E, prisoner: str, wait: float = 20.0) -> int:
    """The id of the prisoner's call once the called party has accepted it."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        rows = e2e.sql(
            "SELECT c.id, c.uniqueid FROM calls c JOIN prisoners p ON p.id = c.prisoner_id "
            "WHERE p.prison_number = $1 AND c.ended_at IS NULL",
            prisoner,
        )
        journal = e2e.lab.journal_path.read_text()
        if rows and f"accepted|{rows[0]['uniqueid']}|" in journal:
            return rows[0]["id"]
        time.sleep(0.2)
    raise AssertionError(f"no live accepted call for {prisoner}")


def test_recording_has_each_party_on_its_own_channel_and_the_talk_length(e2e: E2E) -> None:
    cell, prisoner, pin = provision(e2e, (LONDON, "approved"))
    call = e2e.call(cell, pin, "02079460000", 8)
    assert call["outcome"] == "connected", call
    s = settled(e2e, call)
    rec = recording_of(e2e, s["id"])
    assert rec is not None, "no recording stored"
    path = store_dir(e2e) / str(rec["file_name"])
    assert path.exists() and rec["channels"] == 2 and rec["codec"] == "opus"
    # The length matches the talk time (acceptance to hang-up) within a second.
    assert abs(int(rec["duration_ms"]) - 1000 * int(s["talk_seconds"])) <= 1000, (rec, s)
    audio = AudioSegment.from_file(path)
    left, right = audio.split_to_mono()
    rate = audio.frame_rate
    middle = slice(rate * 2, rate * 3)  # one second in the middle of the call
    lp, rp = left.get_array_of_samples()[middle], right.get_array_of_samples()[middle]
    # The called party sends 400 Hz, the handset 1 kHz: each on its own channel.
    assert tone_power(list(lp), rate, 400) > 100 * tone_power(list(lp), rate, 1000)
    assert tone_power(list(rp), rate, 1000) > 100 * tone_power(list(rp), rate, 400)
    uniqueid = e2e.sql("SELECT uniqueid FROM calls WHERE id = $1", s["id"])[0]["uniqueid"]
    assert not (spool(e2e) / f"{uniqueid}.raw").exists(), "the spool file was left behind"
    assert e2e.cli("recordings", "verify").returncode == 0


def test_a_privileged_call_leaves_no_audio_and_no_mixmonitor_event(e2e: E2E) -> None:
    cell, prisoner, pin = provision(e2e)
    e2e.cli("contact", "add", prisoner, "020 7946 0999", "--kind", "legal")
    e2e.cli("contact", "approve", prisoner, "020 7946 0999")
    before = set(store_dir(e2e).glob("*")) if store_dir(e2e).exists() else set()
    events: list[dict[str, str]] = []

    async def watch_and_call() -> dict[str, object]:
        # The lab's watcher: the daemon's account never receives MixMonitor or ChanSpy events.
        ami = AmiSession("127.0.0.1", PORTS["ami"], OBSERVER_USER, e2e.lab.observer_secret)
        ami.on("MixMonitor*", lambda event: events.append(dict(event)))
        ami.on("ChanSpy*", lambda event: events.append(dict(event)))
        await ami.start()
        await ami.wait_connected(10)
        try:
            return await asyncio.to_thread(e2e.call, cell, pin, "02079460999", 4)
        finally:
            await asyncio.sleep(1)
            await ami.stop()

    call = asyncio.run(watch_and_call())
    assert call["outcome"] == "connected", call
    s = settled(e2e, call)
    uniqueid = e2e.sql(
        "SELECT uniqueid, privileged, recording_note FROM calls WHERE id = $1", s["id"]
    )[0]
    assert uniqueid["privileged"] is True
    # The call's own record says why it was not recorded.
    assert uniqueid["recording_note"] == "not recorded: privileged (an approved legal contact)"
    time.sleep(2)
    assert events == [], f"AMI saw recording or monitoring of a privileged call: {events}"
    assert not (spool(e2e) / f"{uniqueid['uniqueid']}.raw").exists(), "audio spooled"
    after = set(store_dir(e2e).glob("*")) if store_dir(e2e).exists() else set()
    assert after == before, "a file was stored for a privileged call"
    assert recording_of(e2e, s["id"], wait=0) is None
    assert e2e.sql("SELECT * FROM missing_recordings WHERE call_id = $1", s["id"]) == []


def test_daemon_killed_mid_call_the_recording_is_ingested_after_restart(e2e: E2E) -> None:
    cell, prisoner, pin = provision(e2e, (LONDON, "approved"))
    with call_in_background(e2e, cell, pin, "02079460000", 10) as result:
        live_call(e2e, prisoner)
        time.sleep(2)
        e2e.daemon.stop(signal.SIGKILL)
    assert result.get("outcome") == "connected", result
    e2e.daemon.start()
    s = settled(e2e, result, wait=20)
    rec = recording_of(e2e, s["id"], wait=20)
    assert rec is not None, "the spooled recording was not ingested after the restart"
    assert abs(int(rec["duration_ms"]) - 1000 * int(s["talk_seconds"])) <= 1000
    assert e2e.cli("recordings", "verify").returncode == 0


@contextlib.contextmanager
def officer_desk(e2e: E2E) -> Iterator[None]:
    """A SIPp that answers on the officers' desk, as an officer's phone would."""
    settings = load_settings(e2e.config)
    prefix = sipp.find_sipp(settings)
    run = sipp.RunDir.create(prefix, "e2e-officer-")
    scenario = sipp.stage_scenario(run, "called_party.xml")
    cmd = sipp.called_party_command(
        prefix,
        run,
        scenario,
        ip="127.0.0.1",
        port=settings.asterisk.officers_port,
        media_port=17600,
        mode="answer",
        calls=0,
    )
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGUSR1)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
        run.remove()


def audit(e2e: E2E, action: str, target: str) -> list[dict[str, object]]:
    rows = e2e.sql("SELECT * FROM audit_log WHERE action = $1 AND target = $2", action, target)
    return [dict(r) for r in rows]


def test_an_officer_cuts_a_live_call_within_a_second(e2e: E2E) -> None:
    officer = token(e2e, "officer")
    cell, prisoner, pin = provision(e2e, (LONDON, "approved"))
    with call_in_background(e2e, cell, pin, "02079460000", 30) as result:
        call_id = live_call(e2e, prisoner)
        live = json.loads(e2e.cli("calls", "live", "--json", "--token-file", officer).stdout)
        assert call_id in [c["call_id"] for c in live["calls"]]
        e2e.cli("calls", "cut", str(call_id), "--reason", "threats", "--token-file", officer)
    assert result["outcome"] == "connected" and result["ended_by"] == "network", result
    assert float(result["talk_s"]) < 20, result  # type: ignore[arg-type]
    entries = audit(e2e, "cut", f"call:{call_id}")
    assert entries and entries[0]["reason"] == "threats"
    # Within a second of the officer's act, as the daemon saw both (the command line's own
    # start-up, seconds on a loaded machine, is not part of the cut).
    (ended,) = e2e.sql("SELECT ended_at FROM calls WHERE id = $1", call_id)
    assert ended["ended_at"] is not None
    assert abs((ended["ended_at"] - entries[0]["at"]).total_seconds()) < 1.0
    assert str(entries[0]["actor"]).startswith("E2E Officer ")  # the token's person


def test_listening_in_works_and_is_refused_on_a_privileged_call(e2e: E2E) -> None:
    officer = token(e2e, "officer")
    cell, prisoner, pin = provision(e2e, (LONDON, "approved"))
    e2e.cli("contact", "add", prisoner, "020 7946 0999", "--kind", "legal")
    e2e.cli("contact", "approve", prisoner, "020 7946 0999")
    with officer_desk(e2e):
        with call_in_background(e2e, cell, pin, "02079460000", 12) as result:
            call_id = live_call(e2e, prisoner)
            e2e.cli(
                "calls",
                "listen",
                str(call_id),
                "--officer",
                "officers",
                "--reason",
                "intelligence",
                "--token-file",
                officer,
            )
        assert result["outcome"] == "connected", result
        assert audit(e2e, "listen", f"call:{call_id}")
        log = (e2e.lab.inside(e2e.lab.log_dir) / "messages.log").read_text(errors="replace")
        assert "cc-listen" in log and "ChanSpy" in log
        with call_in_background(e2e, cell, pin, "02079460999", 8) as result:
            call_id = live_call(e2e, prisoner)
            refused = e2e.cli(
                "calls",
                "listen",
                str(call_id),
                "--officer",
                "officers",
                "--token-file",
                officer,
                check=False,
            )
        assert refused.returncode == 2 and "privileged" in refused.stderr, refused
        assert audit(e2e, "listen_refused", f"call:{call_id}")


def test_disabling_a_cell_cuts_its_call_and_blocks_new_ones(e2e: E2E) -> None:
    officer = token(e2e, "officer")
    cell, prisoner, pin = provision(e2e, (LONDON, "approved"))
    with call_in_background(e2e, cell, pin, "02079460000", 30) as result:
        live_call(e2e, prisoner)
        out = e2e.cli("cell", "disable", cell, "--reason", "phone misused", "--token-file", officer)
        assert "1 live call(s) cut" in out.stdout, out.stdout
    assert result["ended_by"] == "network" and float(result["talk_s"]) < 20, result  # type: ignore[arg-type]
    assert audit(e2e, "disable", f"cell:{cell}")
    call = e2e.call(cell, pin, "02079460000")
    # Refused by the decision, or (once the daemon's cells sync reloaded PJSIP) by Asterisk's
    # digest check before any decision: either way never bridged.
    blocked = (call["outcome"], call["reason"]) == ("refused", "handset_disabled") or (
        call["outcome"] == "failed" and call["sip_status"] in (401, 403)
    )
    assert blocked and call["called_party_saw_invite"] is False, call


def tamper(e2e: E2E, sql: str) -> None:
    """Change a row as an attacker with the database's superuser would: past the triggers."""

    async def run() -> None:
        conn = await asyncpg.connect(e2e.db_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await conn.execute(f"SET session_replication_role = replica; {sql}")
        finally:
            await conn.close()

    asyncio.run(run())


def test_verify_names_an_altered_file_and_row_and_purge_keeps_the_chain(e2e: E2E) -> None:
    """Last in this file: it purges every recording made so far."""
    cell, _, pin = provision(e2e, (LONDON, "approved"))
    call = e2e.call(cell, pin, "02079460000", 3)
    rec = recording_of(e2e, settled(e2e, call)["id"])
    assert rec is not None
    path = store_dir(e2e) / str(rec["file_name"])
    original = path.read_bytes()
    path.write_bytes(original + b"tampered")
    tamper(e2e, f"UPDATE recordings SET duration_ms = duration_ms + 5000 WHERE id = {rec['id']}")
    try:
        out = e2e.cli("recordings", "verify", check=False)
        assert out.returncode == 1
        problems = out.stdout + out.stderr
        assert f"recording {rec['id']}" in problems and "altered" in problems, problems
        assert "duration_ms" in problems, problems
    finally:
        path.write_bytes(original)
        tamper(
            e2e, f"UPDATE recordings SET duration_ms = duration_ms - 5000 WHERE id = {rec['id']}"
        )
    assert e2e.cli("recordings", "verify").returncode == 0
    # Retention: a call recorded 100 days ago (its audio taken from this call) is purged.
    old = old_recording(e2e, path)
    old_path = store_dir(e2e) / str(old["file_name"])
    assert old_path.exists()
    e2e.cli("recordings", "purge", "--older-than-days", "90", "--by", "e2e")
    assert not old_path.exists() and path.exists()
    receipts = e2e.sql("SELECT body FROM recording_chain WHERE kind = 'deletion'")
    assert any(f'"recording_id":{old["id"]}' in r["body"] for r in receipts), receipts
    assert e2e.cli("recordings", "verify").returncode == 0
    assert e2e.sql("SELECT * FROM audit_log WHERE action = 'purge' AND actor = 'e2e'")
    anchored_chain_catches_a_rewrite(e2e, rec)


def rewrite_chain(e2e: E2E, recording_id: object, number: str) -> None:
    """Give a recording another number and rewrite the chain from its entry on, rows and head
    included, so that every link agrees again: what the database's superuser can do."""
    from callcontrol.domain.chain import GENESIS, canonical, entry_hash, parse

    statements, prev, changed = [], GENESIS, False
    for e in e2e.sql("SELECT id, kind, recording_id, body FROM recording_chain ORDER BY id"):
        event = parse(e["body"]) or {}
        if e["kind"] == "recording" and e["recording_id"] == recording_id:
            event["number"], changed = number, True
        body = canonical(event)
        link = entry_hash(prev, body)
        if changed:
            statements.append(
                f"UPDATE recording_chain SET body = $${body}$$, prev_hash = '{prev}', "
                f"entry_hash = '{link}' WHERE id = {e['id']}"
            )
            if e["kind"] == "recording":
                statements.append(
                    f"UPDATE recordings SET number = '{event['number']}', prev_entry_hash = "
                    f"'{prev}', entry_hash = '{link}' WHERE id = {e['recording_id']}"
                )
        prev = link
    statements.append(f"UPDATE recording_chain_head SET entry_hash = '{prev}' WHERE id = 1")
    tamper(e2e, "; ".join(statements))


def anchored_chain_catches_a_rewrite(e2e: E2E, rec: dict[str, object]) -> None:
    """The daemon signed the chain's head (at start); the purge signed it again. A chain
    rewritten consistently passes plain verify but not verify against the checkpoints."""
    var = e2e.config.parent / "var"
    lines = (var / "chain-checkpoints").read_text().splitlines()
    assert lines[0].startswith("callcontrol-chain-checkpoint v1 entries=0 "), lines  # the daemon
    public, off_host = e2e.config.parent / "chain.pub", e2e.config.parent / "off-host"
    public.unlink(missing_ok=True)
    e2e.cli("recordings", "export-key", "--to", str(public))
    off_host.write_text((var / "chain-checkpoints").read_text())
    anchored = ("recordings", "verify", "--public-key", str(public), "--checkpoints", str(off_host))
    assert e2e.cli(*anchored).returncode == 0
    rewrite_chain(e2e, rec["id"], "+447700900999")
    try:
        assert e2e.cli("recordings", "verify").returncode == 0  # the links alone cannot tell
        out = e2e.cli(*anchored, check=False)
        assert out.returncode == 1 and "the chain was rewritten" in out.stdout, out
    finally:  # put it back (a checkpoint the daemon may have signed meanwhile stays)
        rewrite_chain(e2e, rec["id"], str(rec["number"]))
    assert e2e.cli("recordings", "verify").returncode == 0


def old_recording(e2e: E2E, like: Path) -> dict[str, object]:
    """A settled call from 100 days ago with real audio, ingested by the real service."""
    ids = e2e.sql(
        "SELECT c.prisoner_id, c.cell_id, c.decision_id FROM calls c ORDER BY c.id DESC LIMIT 1"
    )[0]
    then = datetime.now(UTC) - timedelta(days=100)
    uniqueid = f"old-{time.monotonic_ns()}"
    decision = e2e.sql(
        "INSERT INTO call_decisions (at, handset, cell_id, prisoner_id, dialled, number, outcome,"
        " reason, detail, privileged, channel, uniqueid, sip_call_id) VALUES ($1, 'old', $2, $3,"
        " '02079460000', '+442079460000', 'allow', 'approved_contact', '', false, 'PJSIP/old',"
        " $4, '') RETURNING id",
        then,
        ids["cell_id"],
        ids["prisoner_id"],
        uniqueid,
    )[0]["id"]
    call_id = e2e.sql(
        "INSERT INTO calls (decision_id, prisoner_id, cell_id, number, privileged, channel,"
        " uniqueid, started_at, answered_at, ended_at, settled_at, accepted, talk_seconds,"
        " charge_pence) VALUES ($1, $2, $3, '+442079460000', false, 'PJSIP/old', $4, $5, $5, $5,"
        " $5, true, 3, 1) RETURNING id",
        decision,
        ids["prisoner_id"],
        ids["cell_id"],
        uniqueid,
        then,
    )[0]["id"]
    raw = e2e.config.parent / f"{uniqueid}.raw"
    AudioSegment.from_file(like).set_frame_rate(8000).set_sample_width(2).export(
        raw, format="s16le"
    )

    async def ingest() -> None:
        engine = make_engine(e2e.db_url)
        try:
            await recordings.ingest(session_factory(engine), store_dir(e2e), call_id, raw, 24000)
        finally:
            await engine.dispose()

    asyncio.run(ingest())
    rec = recording_of(e2e, call_id, wait=0)
    assert rec is not None
    return rec
