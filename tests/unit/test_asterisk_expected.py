"""`asterisk check`: what is expected (from the packaged configuration) and the differences."""

from __future__ import annotations

import asyncio
import socket

from callcontrol.adapters.asterisk import expected as ex
from callcontrol.adapters.asterisk.observe import observe_ami, observe_cli
from callcontrol.config import Settings

SECRET = "a" * 64


def clean(settings: Settings, handsets: dict[str, bool]) -> tuple[ex.Expected, ex.Observed]:
    """What a correct Asterisk would report."""
    want = ex.expected(settings, SECRET, handsets)
    values = {name: "set" for name in want.globals} | dict(want.global_values)
    got = ex.Observed(
        modules=set(want.modules) | {"res_musiconhold.so"},
        ami_classes=want.ami_classes,
        ami_actions=set(ex.NEEDED_ACTIONS) | {"Ping", "Status"},
        contexts=dict.fromkeys(want.contexts, True),
        globals=values,
        endpoints={u for u, on in handsets.items() if on} | {"pstn", "officers"},
    )
    return want, got


def test_the_packaged_configuration_names_what_the_dialplan_and_daemon_need() -> None:
    modules = ex.packaged_modules()
    for needed in ("res_speech.so", "res_agi.so", "app_mixmonitor.so", "app_chanspy.so",
                   "res_audiosocket.so", "chan_audiosocket.so",
                   "bridge_builtin_interval_features.so", "func_base64.so", "res_pjsip.so",
                   "codec_ulaw.so"):  # fmt: skip
        assert needed in modules
    assert {"cells", "cc-decide", "cc-call-end", "cc-listen"} <= set(ex.packaged_contexts())
    assert {"CC_AGI_URL", "CC_DECIDE_AGI", "CC_JOURNAL"} <= set(ex.packaged_globals())
    read, write = ex.packaged_ami_classes()
    assert read == ["call", "reporting"] and "system" not in write and "command" not in write


def test_a_clean_asterisk_has_no_difference() -> None:
    want, got = clean(Settings(), {"A1-01": True, "A1-02": False})
    assert ex.differences(want, got) == []


def test_each_difference_is_one_line() -> None:
    want, got = clean(Settings(), {"A1-01": True, "A1-02": False})
    assert got.modules is not None and got.contexts is not None and got.globals is not None
    got.modules.discard("res_agi.so")
    got.contexts["cc-decide"] = False
    got.globals["CC_RING_TIMEOUT"] = "99"
    got.globals["CC_JOURNAL"] = ""
    got.endpoints = {"A1-02"}
    assert ex.differences(want, got) == [
        "module res_agi.so: not loaded",
        "dialplan context [cc-decide]: missing",
        "global CC_RING_TIMEOUT: is 99, expected 45",
        "global CC_JOURNAL: not set",
        "PJSIP endpoint A1-01: missing (the cell is enabled)",
        "PJSIP endpoint A1-02: present although the cell is disabled",
    ]


def test_an_ami_account_with_more_rights_is_a_difference() -> None:
    want, got = clean(Settings(), {})
    got.ami_classes = (["call", "reporting"], ["call", "originate", "reporting", "system"])
    got.ami_actions = (got.ami_actions or set()) | {"Command", "UpdateConfig"}
    lines = ex.differences(want, got)
    assert "AMI user callcontrol: write classes include system (never allowed)" in lines
    assert (
        "AMI user callcontrol: write classes are call,originate,reporting,system, "
        "expected call,originate,reporting"
    ) in lines
    assert "AMI user callcontrol: may send Command (class command: never allowed)" in lines
    assert "AMI user callcontrol: may send UpdateConfig (class config: never allowed)" in lines


def test_the_agi_secret_is_never_shown() -> None:
    want, got = clean(Settings(), {})
    assert got.globals is not None
    got.globals["CC_AGI_URL"] = "agi://127.0.0.1:4573/other"
    got.globals["CC_DECIDE_AGI"] = f"agi://127.0.0.1:9999/{SECRET}/cell-call"
    lines = ex.differences(want, got)
    assert lines == [
        "global CC_AGI_URL: does not carry the secret of [agi] secret_file",
        "global CC_DECIDE_AGI: is agi://127.0.0.1:9999/***/cell-call, "
        "expected agi://127.0.0.1:4573/***/cell-call",
    ]
    assert not any(SECRET in line for line in lines)


# As Asterisk 22 prints them (columns narrowed): "Not Running" is not loaded.
MODULE_SHOW = """Module            Description              Use Count  Status      Support Level
res_agi.so        Asterisk Gateway Interface    1          Running              core
func_base64.so    base64 encode/decode          0          Not Running          core
2 modules loaded
"""
MANAGER_USER = """
          username: callcontrol
         read perm: call,reporting
        write perm: call,reporting,originate
"""
ENDPOINTS = """
 Endpoint:  <Endpoint/CID.....................................>  <State.....>  <Channels.>
==========================================================================================

 Endpoint:  A1-01                                                Unavailable   0 of inf
 Endpoint:  pstn                                                 Not in use    0 of inf
"""


def test_the_cli_answers_are_read() -> None:
    answers = {
        "module show": MODULE_SHOW,
        "manager show user callcontrol": MANAGER_USER,
        "pjsip list endpoints": ENDPOINTS,
    }
    got = ex.Observed()
    observe_cli(answers.__getitem__, "callcontrol", got)
    assert got.modules == {"res_agi.so"}
    assert got.ami_classes == (["call", "reporting"], ["call", "originate", "reporting"])
    assert got.endpoints == {"A1-01", "pstn"}
    assert got.unreachable == []


def test_what_cannot_be_asked_is_a_difference_not_a_pass() -> None:
    def refused(command: str) -> str:
        raise OSError("Unable to connect to remote asterisk")

    want, _ = clean(Settings(), {"A1-01": True})
    got = ex.Observed()
    observe_cli(refused, "callcontrol", got)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    asyncio.run(observe_ami("127.0.0.1", port, "callcontrol", "x", ["cells"], [], got, 0.3))
    lines = ex.differences(want, got)
    assert len(lines) == 2, lines
    assert lines[0].startswith("cannot check modules, the AMI account's classes or PJSIP")
    assert "Unable to connect to remote asterisk" in lines[0]
    assert lines[1].startswith("cannot check dialplan contexts, globals or AMI actions")
