"""Finding SIPp, staging the run folder, the command lines, and the scenarios themselves."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from callcontrol.config import load_settings
from callcontrol_lab.simulator import sipp
from callcontrol_lab.simulator.sipp import (
    SIM_DIR,
    RunDir,
    SimError,
    called_party_command,
    find_sipp,
    handset_command,
    stage_scenario,
)


def _settings(tmp_path: Path):
    return load_settings(env={"CALLCONTROL_LAB_ROOT": str(tmp_path / "root")})


def test_sipp_on_the_path_when_new_enough(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(sipp.shutil, "which", lambda name: "/usr/bin/sipp")
    monkeypatch.setattr(sipp, "sipp_version", lambda prefix: (3, 8))
    assert find_sipp(_settings(tmp_path)) == ["/usr/bin/sipp"]


def test_too_old_sipp_falls_back_to_the_lab_root(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(sipp.shutil, "which", lambda name: "/usr/bin/sipp")
    monkeypatch.setattr(sipp, "sipp_version", lambda prefix: (3, 5))
    root = tmp_path / "root"
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "sipp").touch()
    assert find_sipp(_settings(tmp_path)) == ["chroot", str(root), "sipp"]


def test_no_sipp_anywhere(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(sipp.shutil, "which", lambda name: None)
    with pytest.raises(SimError, match="no SIPp 3.6"):
        find_sipp(_settings(tmp_path))


def test_version_parsing(tmp_path: Path) -> None:
    fake = tmp_path / "sipp"
    fake.write_text("#!/bin/sh\necho ' SIPp v3.8.0-TLS-SCTP-PCAP.'\nexit 99\n")
    fake.chmod(0o755)
    assert sipp.sipp_version([str(fake)]) == (3, 8)
    assert sipp.sipp_version([str(tmp_path / "missing")]) is None


def test_run_dir_inside_a_chroot(tmp_path: Path) -> None:
    root = tmp_path / "root"
    run = RunDir.create(["chroot", str(root), "sipp"])
    try:
        assert run.host.parent == root / "tmp"
        assert run.inner == Path("/tmp") / run.host.name
        assert run.s("x.csv") == f"/tmp/{run.host.name}/x.csv"
    finally:
        run.remove()
    assert not run.host.exists()


def test_run_dir_without_chroot() -> None:
    run = RunDir.create(["/usr/bin/sipp"])
    try:
        assert run.host == run.inner and run.host.is_dir()
    finally:
        run.remove()


def test_staged_scenario_plays_audio_from_the_run_folder(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "host", Path("/tmp/run1"))
    run.host.mkdir()
    assert stage_scenario(run, "handset.xml") == "/tmp/run1/handset.xml"
    text = run.h("handset.xml").read_text(encoding="iso-8859-1")
    assert 'rtp_stream="/tmp/run1/handset-1000hz.ulaw,-1,0"' in text
    assert 'rtp_stream="audio/' not in text
    assert (
        run.h("handset-1000hz.ulaw").read_bytes()
        == (SIM_DIR / "audio" / "handset-1000hz.ulaw").read_bytes()
    )
    stage_scenario(run, "called_party.xml")
    assert run.h("called-party-400hz.ulaw").exists()


def test_missing_scenario(tmp_path: Path) -> None:
    run = RunDir(tmp_path, tmp_path)
    with pytest.raises(SimError, match="cannot read scenario"):
        stage_scenario(run, "nope.xml")


def test_command_lines() -> None:
    run = RunDir(Path("/r/tmp/x"), Path("/tmp/x"))
    prefix = ["chroot", "/r", "sipp"]
    hs = handset_command(
        prefix,
        run,
        "/tmp/x/handset.xml",
        "/tmp/x/handset.csv",
        host="127.0.0.1",
        port=5060,
        ip="127.0.0.1",
        local_port=5080,
        media_port=6000,
        call_id_prefix="ccsim-A1-01-abcd-",
    )
    assert hs[:4] == ["chroot", "/r", "sipp", "127.0.0.1:5060"]
    line = " ".join(hs)
    for part in (
        "-sf /tmp/x/handset.xml",
        "-inf /tmp/x/handset.csv",
        "-p 5080",
        "-mp 6000",
        "-m 1",
        "-cid_str ccsim-A1-01-abcd-%u",
        "-log_file /tmp/x/handset_logs.log",
        "-message_file /tmp/x/handset_messages.log",
        "-trace_logs",
        "-trace_msg",
    ):
        assert part in line
    cp = " ".join(
        called_party_command(
            prefix,
            run,
            "/tmp/x/called_party.xml",
            ip="127.0.0.1",
            port=5070,
            media_port=16000,
            mode="busy",
            ring_ms=500,
        )
    )
    for part in (
        "-p 5070",
        "-mp 16000",
        "-key mode busy",
        "-key ring_ms 500",
        "-key hangup_ms 0",
        "-key accept_ms 1500",
        "-key accept_digit 1",
        "-key decline_digit 2",
        "-key dtmf_ms 200",
        "-m 1",
        "-log_file /tmp/x/called_party_logs.log",
    ):
        assert part in cp
    accept = " ".join(
        called_party_command(
            prefix,
            run,
            "/tmp/x/called_party.xml",
            ip="127.0.0.1",
            port=5070,
            media_port=16000,
            mode="accept",
            accept_ms=2500,
            accept_digit="5",
            decline_digit="9",
            dtmf_ms=120,
            calls=0,
        )
    )
    for part in (
        "-key mode accept",
        "-key accept_ms 2500",
        "-key accept_digit 5",
        "-key decline_digit 9",
        "-key dtmf_ms 120",
    ):
        assert part in accept
    assert " -m " not in accept  # serves calls until stopped


# SIPp's own keywords in called_party.xml; every other [keyword] must come with -key.
_SIPP_KEYWORDS = {
    "branch", "call_id", "call_number", "clock_tick", "len", "local_ip", "local_ip_type",
    "local_port", "media_ip", "media_ip_type", "media_port", "next_url", "pid", "routes",
    "rtpstream_audio_port", "transport",
}  # fmt: skip


def test_called_party_command_gives_every_key_of_the_scenario() -> None:
    text = (SIM_DIR / "scenarios" / "called_party.xml").read_text(encoding="iso-8859-1")
    used = set(re.findall(r"\[([a-z_]+)\]", text)) - _SIPP_KEYWORDS
    cmd = called_party_command(
        ["sipp"], RunDir(Path("/x"), Path("/x")), "s.xml", ip="i", port=1, media_port=2, mode="m"
    )
    given = {cmd[i + 1] for i, arg in enumerate(cmd) if arg == "-key"}
    # SIPp refuses to start on a keyword without a -key ("Unsupported keyword 'accept_ms'").
    assert used == given


def test_called_party_keys_its_digit_with_the_offered_payload_type() -> None:
    text = (SIM_DIR / "scenarios" / "called_party.xml").read_text(encoding="iso-8859-1")
    # Asterisk offers telephone-event as 101 and decodes only that from the called party.
    assert 'play_dtmf="[accept_digit],[dtmf_ms],[$dtmf_pt]"' in text
    assert 'play_dtmf="[decline_digit],[dtmf_ms],[$dtmf_pt]"' in text
    assert 'regexp="a=rtpmap:([0-9]+) telephone-event/8000" search_in="body"' in text
    assert text.count("a=rtpmap:[$dtmf_pt] telephone-event/8000") == 2  # 200 and re-INVITE 200
    assert '<assignstr assign_to="dtmf_pt" value="96"/>' in text  # no telephone-event offered
    # the audio pauses while keying, and resumes
    key = text[text.index('<label id="key_wait"/>') : text.index('<label id="busy"/>')]
    assert key.index('rtp_stream="pause"') < key.index("play_dtmf") < key.index("resume")
    assert "CCSIM|dtmf|" in key


@pytest.mark.parametrize("name", ["handset.xml", "called_party.xml"])
def test_scenarios_are_well_formed_and_jump_to_existing_labels(name: str) -> None:
    path = SIM_DIR / "scenarios" / name
    tree = ET.parse(path)
    labels = {e.get("id") for e in tree.iter("label")}
    targets = {e.get("next") for e in tree.iter() if e.get("next")}
    targets |= {e.get("ontimeout") for e in tree.iter() if e.get("ontimeout")}
    assert targets <= labels
    assert "_unexp.main" in labels  # the BYE (and CANCEL) handling depends on it


def test_handset_scenario_uses_the_injection_fields() -> None:
    text = (SIM_DIR / "scenarios" / "handset.xml").read_text(encoding="iso-8859-1")
    used = {int(n) for n in re.findall(r"\[field(\d+)\]", text)}
    assert used == set(range(12))
    assert "a=rtpmap:96 telephone-event/8000" in text  # see LAB-NOTES: 96, not 101
    assert "[authentication username=[field0] password=[field1]]" in text
