from callcontrol.domain.roles import ADMIN, AUDITOR, OFFICER, ROLES, Right, changes, may


def test_an_auditor_reads_and_never_changes() -> None:
    for right in Right:
        assert may(AUDITOR, right) is (not changes(right))


def test_an_officer_may_not_do_an_admins_acts_nor_read_the_audit_log() -> None:
    assert may(OFFICER, Right.SUPERVISE) and may(OFFICER, Right.READ)
    assert not may(OFFICER, Right.ADMINISTER)
    assert not may(OFFICER, Right.AUDIT)


def test_an_admin_may_everything_and_an_unknown_role_nothing() -> None:
    assert all(may(ADMIN, r) for r in Right)
    assert not any(may("root", r) for r in Right)
    assert not any(may("", r) for r in Right)
    assert set(ROLES) == {OFFICER, ADMIN, AUDITOR}
