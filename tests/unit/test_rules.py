from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from callcontrol.domain.model import (
    Contact,
    ContactKind,
    ContactStatus,
    Decision,
    GlobalNumber,
    GlobalPolicy,
    Handset,
    Outcome,
    Prisoner,
    Reason,
)
from callcontrol.domain.pins import hash_pin
from callcontrol.domain.rules import (
    SitePolicy,
    check_handset,
    check_prisoner,
    contact_limit_reached,
    decide_number,
    match_pin,
    matching_prisoners,
)

SECRET = b"site-secret"
NOW = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)

LONDON = "+442079460000"
DIALLED_LONDON = "020 7946 0000"
MOBILE = "+447911123456"
SAMARITANS = "116123"


def prisoner(pid: int, prison_number: str, pin: str, *, active: bool = True) -> Prisoner:
    return Prisoner(
        id=pid,
        prison_number=prison_number,
        name=f"Prisoner {pid}",
        pin_hash=hash_pin(SECRET, prison_number, pin),
        cell="A-1-01",
        active=active,
    )


def contact(
    number: str = LONDON,
    status: ContactStatus = ContactStatus.APPROVED,
    kind: ContactKind = ContactKind.SOCIAL,
) -> Contact:
    return Contact(number=number, kind=kind, status=status)


def glob(number: str, policy: GlobalPolicy, privileged: bool = False) -> dict[str, GlobalNumber]:
    return {number: GlobalNumber(number=number, policy=policy, privileged=privileged)}


def decide(
    dialled: str = DIALLED_LONDON,
    contacts: Sequence[Contact] = (),
    global_numbers: Mapping[str, GlobalNumber] | None = None,
    policy: SitePolicy | None = None,
    call_in_progress: bool = False,
) -> Decision:
    return decide_number(
        dialled,
        contacts=contacts,
        global_numbers=global_numbers or {},
        policy=policy or SitePolicy(),
        call_in_progress=call_in_progress,
    )


def assert_refused(decision: Decision, reason: Reason, number: str | None) -> None:
    assert decision.outcome is Outcome.REFUSE
    assert not decision.allowed
    assert decision.reason is reason
    assert decision.number == number
    assert not decision.privileged


def assert_allowed(decision: Decision, reason: Reason, number: str, privileged: bool) -> None:
    assert decision.outcome is Outcome.ALLOW
    assert decision.allowed
    assert decision.reason is reason
    assert decision.number == number
    assert decision.privileged is privileged


# --- handset -----------------------------------------------------------------


def test_unknown_handset_refused() -> None:
    assert_refused(check_handset(None), Reason.UNKNOWN_HANDSET, None)


def test_disabled_handset_refused() -> None:
    decision = check_handset(Handset(cell="A-1-01", sip_username="a101", enabled=False))
    assert_refused(decision, Reason.HANDSET_DISABLED, None)


def test_enabled_handset_goes_on() -> None:
    assert check_handset(Handset(cell="A-1-01", sip_username="a101", enabled=True)) is None


# --- PIN -----------------------------------------------------------------------


def test_match_pin_finds_the_right_cellmate() -> None:
    alice, bob = prisoner(1, "A1111AA", "1234"), prisoner(2, "B2222BB", "5678")
    assert match_pin([alice, bob], "1234", SECRET) is alice
    assert match_pin([alice, bob], "5678", SECRET) is bob


def test_match_pin_wrong_pin_or_empty_cell() -> None:
    alice = prisoner(1, "A1111AA", "1234")
    assert match_pin([alice], "0000", SECRET) is None
    assert match_pin([], "1234", SECRET) is None


def test_match_pin_wrong_secret() -> None:
    alice = prisoner(1, "A1111AA", "1234")
    assert match_pin([alice], "1234", b"other-secret") is None


def test_cellmates_sharing_a_pin_match_nobody() -> None:
    alice, bob = prisoner(1, "A1111AA", "1234"), prisoner(2, "B2222BB", "1234")
    assert matching_prisoners([alice, bob], "1234", SECRET) == [alice, bob]
    assert match_pin([alice, bob], "1234", SECRET) is None


def test_match_pin_matches_a_suspended_prisoner_for_check_prisoner_to_refuse() -> None:
    carol = prisoner(3, "C3333CC", "4321", active=False)
    matched = match_pin([carol], "4321", SECRET)
    assert matched is carol
    assert_refused(check_prisoner(matched, None, NOW), Reason.PRISONER_SUSPENDED, None)


# --- prisoner ------------------------------------------------------------------


def test_locked_pin_refused() -> None:
    alice = prisoner(1, "A1111AA", "1234")
    decision = check_prisoner(alice, NOW + timedelta(minutes=1), NOW)
    assert_refused(decision, Reason.PIN_LOCKED, None)


def test_lock_beats_suspension() -> None:
    carol = prisoner(3, "C3333CC", "4321", active=False)
    assert_refused(check_prisoner(carol, NOW + timedelta(minutes=1), NOW), Reason.PIN_LOCKED, None)


def test_expired_lock_goes_on() -> None:
    alice = prisoner(1, "A1111AA", "1234")
    assert check_prisoner(alice, NOW, NOW) is None
    assert check_prisoner(alice, NOW - timedelta(minutes=1), NOW) is None
    assert check_prisoner(alice, None, NOW) is None


# --- number --------------------------------------------------------------------


@pytest.mark.parametrize("dialled", ["", "abc", "*123#", "12", "0" * 21, "01632 960000"])
def test_invalid_number(dialled: str) -> None:
    decision = decide(dialled, contacts=[contact()])
    assert_refused(decision, Reason.INVALID_NUMBER, None)
    assert decision.detail


@pytest.mark.parametrize("dialled", ["999", "112"])
def test_emergency_refused_by_default(dialled: str) -> None:
    assert_refused(decide(dialled), Reason.EMERGENCY_NUMBER, dialled)


@pytest.mark.parametrize("dialled", ["999", "112"])
def test_emergency_allowed_by_policy_is_privileged(dialled: str) -> None:
    policy = SitePolicy(emergency_calls_allowed=True)
    assert_allowed(decide(dialled, policy=policy), Reason.EMERGENCY_ALLOWED, dialled, True)


def test_emergency_allowed_even_with_a_call_in_progress() -> None:
    policy = SitePolicy(emergency_calls_allowed=True)
    decision = decide("999", policy=policy, call_in_progress=True)
    assert_allowed(decision, Reason.EMERGENCY_ALLOWED, "999", True)


def test_approved_social_contact_allowed_not_privileged() -> None:
    decision = decide(contacts=[contact()])
    assert_allowed(decision, Reason.APPROVED_CONTACT, LONDON, False)


@pytest.mark.parametrize("dialled", ["020 7946 0000", "02079460000", "+442079460000"])
def test_contact_matched_whatever_the_format(dialled: str) -> None:
    assert decide(dialled, contacts=[contact()]).allowed


def test_approved_legal_contact_is_privileged() -> None:
    decision = decide(contacts=[contact(kind=ContactKind.LEGAL)])
    assert_allowed(decision, Reason.APPROVED_CONTACT, LONDON, True)


def test_contacts_for_other_numbers_do_not_count() -> None:
    decision = decide(contacts=[contact(MOBILE, kind=ContactKind.LEGAL)])
    assert_refused(decision, Reason.NOT_APPROVED, LONDON)


def test_pending_contact_refused() -> None:
    decision = decide(contacts=[contact(status=ContactStatus.PENDING)])
    assert_refused(decision, Reason.CONTACT_PENDING, LONDON)


def test_not_approved() -> None:
    assert_refused(decide(), Reason.NOT_APPROVED, LONDON)


def test_blocked_contact_refused() -> None:
    decision = decide(contacts=[contact(status=ContactStatus.BLOCKED)])
    assert_refused(decision, Reason.BLOCKED_NUMBER, LONDON)


def test_globally_blocked_refused() -> None:
    decision = decide(global_numbers=glob(LONDON, GlobalPolicy.BLOCKED))
    assert_refused(decision, Reason.BLOCKED_NUMBER, LONDON)


def test_globally_allowed() -> None:
    decision = decide(global_numbers=glob(LONDON, GlobalPolicy.ALLOWED))
    assert_allowed(decision, Reason.GLOBAL_ALLOWED, LONDON, False)


def test_globally_allowed_privileged() -> None:
    decision = decide(global_numbers=glob(LONDON, GlobalPolicy.ALLOWED, privileged=True))
    assert_allowed(decision, Reason.GLOBAL_ALLOWED, LONDON, True)


def test_listed_short_code_globally_allowed() -> None:
    numbers = glob(SAMARITANS, GlobalPolicy.ALLOWED, privileged=True)
    decision = decide("116 123", global_numbers=numbers)
    assert_allowed(decision, Reason.GLOBAL_ALLOWED, SAMARITANS, True)


def test_unlisted_short_code_invalid() -> None:
    decision = decide("116123", contacts=[contact()])
    assert_refused(decision, Reason.INVALID_NUMBER, None)
    assert "not listed" in decision.detail


def test_listed_short_code_globally_blocked() -> None:
    decision = decide("116123", global_numbers=glob(SAMARITANS, GlobalPolicy.BLOCKED))
    assert_refused(decision, Reason.BLOCKED_NUMBER, SAMARITANS)


def test_blocked_contact_beats_global_allowed() -> None:
    decision = decide(
        contacts=[contact(status=ContactStatus.BLOCKED)],
        global_numbers=glob(LONDON, GlobalPolicy.ALLOWED, privileged=True),
    )
    assert_refused(decision, Reason.BLOCKED_NUMBER, LONDON)


def test_global_block_beats_approved_contact() -> None:
    decision = decide(
        contacts=[contact(kind=ContactKind.LEGAL)],
        global_numbers=glob(LONDON, GlobalPolicy.BLOCKED),
    )
    assert_refused(decision, Reason.BLOCKED_NUMBER, LONDON)


def test_blocked_entry_beats_approved_entry_for_same_number() -> None:
    decision = decide(contacts=[contact(), contact(status=ContactStatus.BLOCKED)])
    assert_refused(decision, Reason.BLOCKED_NUMBER, LONDON)


def test_blocked_beats_call_in_progress() -> None:
    decision = decide(contacts=[contact(status=ContactStatus.BLOCKED)], call_in_progress=True)
    assert_refused(decision, Reason.BLOCKED_NUMBER, LONDON)


def test_call_in_progress_refused() -> None:
    decision = decide(contacts=[contact()], call_in_progress=True)
    assert_refused(decision, Reason.CALL_IN_PROGRESS, LONDON)


def test_call_in_progress_refuses_global_allowed_too() -> None:
    decision = decide(global_numbers=glob(LONDON, GlobalPolicy.ALLOWED), call_in_progress=True)
    assert_refused(decision, Reason.CALL_IN_PROGRESS, LONDON)


def test_global_allowed_beats_pending_contact() -> None:
    decision = decide(
        contacts=[contact(status=ContactStatus.PENDING)],
        global_numbers=glob(LONDON, GlobalPolicy.ALLOWED),
    )
    assert_allowed(decision, Reason.GLOBAL_ALLOWED, LONDON, False)


def test_plain_string_statuses_are_honoured() -> None:
    # Adapters might hand over plain strings from the database: still blocked.
    blocked = Contact(number=LONDON, kind="social", status="blocked")  # type: ignore[arg-type]
    assert_refused(decide(contacts=[blocked]), Reason.BLOCKED_NUMBER, LONDON)


def test_international_contact() -> None:
    paris = "+33142685300"
    decision = decide("0033 1 42 68 53 00", contacts=[contact(paris)])
    assert_allowed(decision, Reason.APPROVED_CONTACT, paris, False)


# --- contact limits --------------------------------------------------------------


def test_contact_limit_counts_only_that_kind() -> None:
    social = [contact(f"+4479111234{i:02d}") for i in range(3)]
    assert contact_limit_reached(social, ContactKind.SOCIAL, max_social=3, max_legal=3)
    assert not contact_limit_reached(social, ContactKind.LEGAL, max_social=3, max_legal=3)


def test_contact_limit_not_reached_below_limit() -> None:
    social = [contact(f"+4479111234{i:02d}") for i in range(2)]
    assert not contact_limit_reached(social, ContactKind.SOCIAL, max_social=3, max_legal=1)


def test_blocked_contacts_do_not_count() -> None:
    existing = [
        contact("+447911123400"),
        contact("+447911123401", status=ContactStatus.PENDING),
        contact("+447911123402", status=ContactStatus.BLOCKED),
    ]
    assert not contact_limit_reached(existing, ContactKind.SOCIAL, max_social=3, max_legal=0)
    assert contact_limit_reached(existing, ContactKind.SOCIAL, max_social=2, max_legal=0)


def test_legal_limit() -> None:
    legal = [contact(kind=ContactKind.LEGAL)]
    assert contact_limit_reached(legal, ContactKind.LEGAL, max_social=10, max_legal=1)
    assert not contact_limit_reached(legal, ContactKind.LEGAL, max_social=10, max_legal=2)


def test_zero_limit_means_none_allowed() -> None:
    assert contact_limit_reached([], ContactKind.LEGAL, max_social=10, max_legal=0)
