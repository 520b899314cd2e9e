"""The lab's benchmark switches: the cells' context and the decision AGI, as rendered.

The defaults must render today's production set-up; the switches only what they name.
"""

from __future__ import annotations

import re

import pytest

from callcontrol import channel_vars as cv
from callcontrol.config import Settings
from callcontrol_lab.bench.lab_modes import STATIC_CONTEXT, current_mode, switch_mode
from callcontrol_lab.lab import LAB_DIALPLAN_SOURCE, Lab, LabError

PYST2 = "/var/lib/callcontrol-lab-unit/bench-pyst2/cc-decide-pyst2"


@pytest.fixture
def settings(lab_settings: Settings) -> Settings:
    return lab_settings


def rendered(lab: Lab, name: str) -> str:
    conf = lab.inside(lab.conf_dir)
    path = conf / name if (conf / name).exists() else conf / "dialplan" / name
    return path.read_text()


def section(text: str, name: str) -> str:
    """The lines of one [name] section (the first of that name) of a rendered file."""
    found = re.search(rf"^\[{re.escape(name)}\][^\n]*\n(.*?)(?=^\[|\Z)", text, re.M | re.S)
    assert found, f"no [{name}]"
    return found.group(1)


def setting(text: str, key: str) -> str:
    found = re.findall(rf"^{re.escape(key)} = (.*)$", text, re.M)
    assert len(found) == 1, (key, found)
    return found[0]


def test_by_default_the_cells_ask_the_daemon_over_fastagi(settings: Settings) -> None:
    lab = Lab(settings)
    lab.render()
    assert setting(section(rendered(lab, "pjsip.conf"), "cell-endpoint"), "context") == "cells"
    ext = rendered(lab, "extensions.conf")
    secret = lab.agi_secret  # the first path segment of every FastAGI request
    assert setting(ext, "CC_DECIDE_AGI") == f"agi://127.0.0.1:4573/{secret}/cell-call"
    assert setting(ext, "CC_AGI_URL") == f"agi://127.0.0.1:4573/{secret}"
    assert setting(ext, "CC_CELLS_CONTEXT") == "cells"
    assert "#include dialplan/cells.conf" in ext and "#tryinclude dialplan/bench.conf" in ext
    assert lab.daemon_decide_agi == f"agi://127.0.0.1:4573/{secret}/cell-call"
    assert current_mode(lab) == "daemon"


def test_the_cells_context_is_as_fail_closed_as_before(settings: Settings) -> None:
    lab = Lab(settings, decide_agi=PYST2)
    lab.render()
    conf = rendered(lab, "cells.conf")
    cells, decide = section(conf, "cells"), section(conf, "cc-decide")
    # The decision runs on a Local channel whose time Dial's S() bounds; the arguments are
    # base64 (dialplan/cells.conf); only a successful AGI's one answer is copied back, whole.
    assert (
        "AGI(${CC_DECIDE_AGI},${CC_ENDPOINT_B64},${CC_DIALLED_B64},${CC_CALL_ID_B64},"
        "${CC_HANDSET_UNIQUEID},${CC_HANDSET_B64})" in decide
    )
    agi_at = decide.index("AGI(${CC_DECIDE_AGI}")
    success_at = decide.index('GotoIf($["${AGISTATUS}" != "SUCCESS"]?done)')
    copy_at = decide.index("Set(MASTER_CHANNEL(CC_ANSWER)=${CC_ANSWER})")
    assert agi_at < success_at < copy_at
    assert decide.count("MASTER_CHANNEL(") == 1  # the answer alone: nothing else comes back
    hop_at = cells.index("Dial(Local/decide@cc-decide/n,10,gS(${CC_DECIDE_TIMEOUT}))")
    dial_at = cells.index("Dial(PJSIP/")
    # One snapshot, its whole shape checked (as channel_vars has it, word for word) before
    # any field is cut from it; then the fields' own checks, all before the Dial.
    snapshot_at = cells.index("Set(CC_DECIDED=${CC_ANSWER})")
    assert cells.count("${CC_ANSWER}") == 1
    allow_at = cells.index(f'GotoIf($[${{REGEX("{cv.ALLOW_SHAPE}" ${{CC_DECIDED}})}}]?allowed)')
    assert hop_at < snapshot_at < allow_at < cells.index("CUT(CC_DECIDED,") < dial_at
    for check in (
        'GotoIf($[${REGEX("^[+]?[0-9]{3,20}$" ${CC_NUMBER})}]?:malformed)',
        'GotoIf($[${REGEX("^[0-9]+$" ${CC_LIMIT_MS})}]?:malformed)',
        "GotoIf($[${CC_LIMIT_MS} >= 1000]?:malformed)",
    ):
        assert allow_at < cells.index(check) < dial_at, check
    for shape in (cv.BALANCE_SHAPE, cv.REFUSE_SHAPE):
        assert f'${{REGEX("{shape}" ${{CC_DECIDED}})}}' in cells, shape
    # Whatever decides, the answer is cleared before it runs and the daemon hears the end.
    assert cells.index("Set(CC_ANSWER=)") < hop_at and cells.index("Set(CC_NUMBER=)") < hop_at
    assert decide.index("Set(CC_ANSWER=)") < agi_at
    assert "AGI(${CC_AGI_URL}/call-end," in conf


def test_a_decision_agi_is_rendered_as_the_global(settings: Settings) -> None:
    lab = Lab(settings, decide_agi=PYST2)
    lab.render()
    assert setting(rendered(lab, "extensions.conf"), "CC_DECIDE_AGI") == PYST2
    assert setting(section(rendered(lab, "pjsip.conf"), "cell-endpoint"), "context") == "cells"
    assert current_mode(lab) == "pyst2"


def test_the_static_context_bridges_as_cells_does_and_only_when_chosen(
    settings: Settings,
) -> None:
    lab = Lab(settings, cells_context=STATIC_CONTEXT)
    lab.render()
    context = setting(section(rendered(lab, "pjsip.conf"), "cell-endpoint"), "context")
    assert context == "bench-static"
    assert setting(rendered(lab, "extensions.conf"), "CC_CELLS_CONTEXT") == "bench-static"
    bench = rendered(lab, "bench.conf")
    static = section(bench, "bench-static")
    assert 'GotoIf($["${CC_CELLS_CONTEXT}" != "bench-static"]?refused,1)' in static
    assert "AGI(" not in static and "hangup_handler_push" not in static
    # The PIN is read as the daemon asks for it: agent-pass, every key up to "#", 8 s each.
    assert "Read(CC_PIN,agent-pass,20,,1,8)" in static
    for needed in ("__CC_CALLER_UNIQUEID=${UNIQUEID}", "__CC_RECORD_TO=${CC_RECORDINGS}/"):
        assert needed in static
    # The same Dial as an allowed call in cells, options and all.
    cells_dial = re.search(
        r"Dial\(PJSIP/\$\{CC_NUMBER\}@pstn,(.*)\)$", rendered(lab, "cells.conf"), re.M
    )
    static_dial = re.search(r"Dial\(PJSIP/\$\{EXTEN\}@pstn,(.*)\)$", static, re.M)
    assert cells_dial and static_dial and cells_dial.group(1) == static_dial.group(1)
    assert current_mode(lab) == "static"


def test_switch_on_a_lab_that_is_not_running_renders_and_back(settings: Settings) -> None:
    lab = Lab(settings)
    switch_mode(lab, "static")
    assert "context = bench-static" in rendered(lab, "pjsip.conf")
    switch_mode(lab, "pyst2", pyst2_agi=PYST2)
    assert setting(rendered(lab, "extensions.conf"), "CC_DECIDE_AGI") == PYST2
    assert "context = cells" in rendered(lab, "pjsip.conf")
    switch_mode(lab, "daemon")
    assert (lab.cells_context, lab.decide_agi) == ("cells", None)
    fresh = Lab(settings)
    fresh.render()
    assert rendered(lab, "extensions.conf") == rendered(fresh, "extensions.conf")
    with pytest.raises(ValueError):
        switch_mode(lab, "asterisk")


@pytest.mark.parametrize("context", ["", "cells,x", "cells;", "a b", "${EVIL}", "x" * 65])
def test_a_context_name_that_could_break_the_configuration_is_refused(
    settings: Settings, context: str
) -> None:
    with pytest.raises(LabError):
        Lab(settings, cells_context=context)


@pytest.mark.parametrize(
    "agi", ["", "/x,y", "/x;comment", "/x y", "${CC_AGI_URL}/cell-call", "agi://h/$[1]"]
)
def test_a_decision_agi_that_could_break_the_dialplan_is_refused(
    settings: Settings, agi: str
) -> None:
    with pytest.raises(LabError):
        Lab(settings, decide_agi=agi)


def test_a_context_that_no_dialplan_file_defines_is_refused_at_render(
    settings: Settings,
) -> None:
    lab = Lab(settings, cells_context="nowhere")
    with pytest.raises(LabError, match="nowhere"):
        lab.render()
    assert "[bench-static]" in (LAB_DIALPLAN_SOURCE / "bench.conf").read_text()
