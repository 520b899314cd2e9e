"""The daemon's one answer to a call (channel_vars: CC_ANSWER): what the daemon may say, and
how the dialplan's shapes read anything else. The real dialplan's reading of hostile answers is
tests/e2e/test_fail_closed.py's; here its patterns, run by Python's re as ERE, and the daemon's
side: it never says what the dialplan would not take as meant."""

from __future__ import annotations

import pytest

from callcontrol import channel_vars as cv
from callcontrol.domain.model import Reason

ALLOWED = "allow:approved_contact:+442079460000:1800000:yes"


def test_the_three_answers_read_back_by_field() -> None:
    assert cv.answer(cv.ALLOW, "approved_contact", "+442079460000", "1800000", "yes") == ALLOWED
    assert cv.read_answer(ALLOWED) == {
        cv.DECISION: cv.ALLOW,
        cv.REASON: "approved_contact",
        cv.NUMBER: "+442079460000",
        cv.LIMIT_MS: "1800000",
        cv.RECORD: "yes",
    }
    assert cv.read_answer(cv.answer(cv.ALLOW, "emergency_allowed", "999", "1000", "no")) == {
        cv.DECISION: cv.ALLOW,
        cv.REASON: "emergency_allowed",
        cv.NUMBER: "999",
        cv.LIMIT_MS: "1000",
        cv.RECORD: "no",
    }
    said = cv.answer(cv.BALANCE, "balance_enquiry", "1", "123456789", "99", "25")
    assert said == "balance:balance_enquiry:1:123456789:99:25"
    assert cv.read_answer(said) == {
        cv.DECISION: cv.BALANCE,
        cv.REASON: "balance_enquiry",
        cv.BALANCE_NEGATIVE: "1",
        cv.BALANCE_POUNDS: "123456789",
        cv.BALANCE_PENCE: "99",
        cv.MINUTES_LEFT: "25",
    }
    assert cv.read_answer("refuse:wrong_pin") == {cv.DECISION: cv.REFUSE, cv.REASON: "wrong_pin"}


@pytest.mark.parametrize("reason", list(Reason))
def test_every_reason_fits_the_reason_field(reason: Reason) -> None:
    assert cv.read_answer(cv.answer(cv.REFUSE, reason.value)) is not None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "allow",
        "allow please",
        "ALLOW:approved_contact:+442079460000:1800000:yes",  # the decision word exactly
        "permit:approved_contact:+442079460000:1800000:yes",  # an unknown decision
        ALLOWED + ":extra",  # a field too many
        "allow:approved_contact:+442079460000:1800000",  # one too few (cut short)
        "allow:approved_contact:+442079460000:18000",  # cut inside a field: RECORD gone
        "allow:approved_contact:+44207:9460000:1800000:yes",  # the separator inside a field
        "allow:approved_contact:+4420794600O0:1800000:yes",  # a letter O for a zero
        "allow:approved_contact:++442079460000:1800000:yes",
        "allow:approved_contact:+442079460000:999:yes",  # under a second
        "allow:approved_contact:+442079460000:1234567890:yes",  # ten digits
        "allow:approved_contact:+442079460000:1800000:YES",
        "allow:approved_contact:+442079460000:1800000:maybe",
        "allow::+442079460000:1800000:yes",  # no reason
        "allow:Approved:+442079460000:1800000:yes",
        "allow:approved contact:+442079460000:1800000:yes",
        "allow:approved_contact:+442079460000:1800000:yes\n",  # Python's $ would take it
        " allow:approved_contact:+442079460000:1800000:yes",
        "allow,approved_contact,+442079460000,1800000,yes",  # another separator
        'allow:approved_contact:"+442079460000":1800000:yes',
        "allow:approved_contact:+442079460000:1800000:yes)|Dial(PJSIP/0@pstn",
        "balance:balance_enquiry:0:4:20",  # MINUTES_LEFT missing
        "balance:balance_enquiry:2:4:20:25",
        "balance:balance_enquiry:0:1+1:20:25",
        "balance:balance_enquiry:0:4:100:25",
        "balance:balance_enquiry:0:1234567890:20:25",
        "refuse",
        "refuse:",
        "refuse:not_approved:+442079460000",
        "refuse:not approved",
    ],
)
def test_anything_of_no_shape_is_read_as_no_answer(text: str) -> None:
    assert cv.read_answer(text) is None


@pytest.mark.parametrize(
    ("decision", "fields"),
    [
        (cv.ALLOW, ("approved_contact", "+44:2079460000", "1800000", "yes")),
        (cv.ALLOW, ("approved_contact", "+442079460000", "999", "yes")),  # under a second
        (cv.ALLOW, ("approved_contact", "+442079460000", "0999", "yes")),
        (cv.ALLOW, ("approved_contact", "+442079460000", "1800000", "yes", "extra")),
        (cv.ALLOW, ("approved_contact", "+442079460000", "1800000")),
        (cv.BALANCE, ("balance_enquiry", "0", "4", "120", "25")),
        (cv.REFUSE, ("not_approved", "+442079460000")),
        ("maybe", ("not_approved",)),
    ],
)
def test_the_daemon_never_says_what_the_dialplan_would_misread(
    decision: str, fields: tuple[str, ...]
) -> None:
    with pytest.raises(ValueError):
        cv.answer(decision, *fields)
