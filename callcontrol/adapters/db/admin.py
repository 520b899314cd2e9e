"""The operator's use cases on the database: cells, prisoners, contact lists, global numbers.

Each function takes an AsyncSession, checks its input with the domain functions, changes rows
and flushes; the caller commits (or rolls back). A refusal raises AdminError with a message
meant for the operator: the caller must then roll the session back (the checks come before
the changes, but a constraint broken by a concurrent writer is only seen at the flush).
"""

from __future__ import annotations

import re
import secrets
import string
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from callcontrol.adapters.db.tables import Cell, Contact, ContactChange, GlobalNumber, Prisoner
from callcontrol.domain import model, sip_digest
from callcontrol.domain.model import ContactKind, ContactStatus, GlobalPolicy
from callcontrol.domain.numbers import is_short_code, normalise_for_list
from callcontrol.domain.pins import Keys, as_keys, hash_pin, valid_pin_format
from callcontrol.domain.rules import contact_limit_reached, matching_prisoners

CELL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
PRISON_NUMBER = re.compile(r"[A-Za-z0-9]{1,32}")
# A SIP password goes into pjsip.conf: printable ASCII, no space, no comment characters.
SIP_PASSWORD = re.compile(r"[!-~]{12,128}")
SIP_PASSWORD_FORBIDDEN = ";#"
GENERATED_PASSWORD_LENGTH = 24
_PASSWORD_ALPHABET = string.ascii_letters + string.digits


class AdminError(Exception):
    """An operator's request refused: the message (``str(e)``) says why."""


class SharedPinError(AdminError):
    """The PIN is a cellmate's: a generated PIN is drawn again, a typed one refused."""


# --- checks on plain values --------------------------------------------------------------------


def _text(value: str, what: str, max_len: int, required: bool = False) -> str:
    value = value.strip()
    if required and not value:
        raise AdminError(f"{what} must not be empty")
    if len(value) > max_len:
        raise AdminError(f"{what} is too long (at most {max_len} characters)")
    if any(not ch.isprintable() for ch in value):
        raise AdminError(f"{what} contains control characters")
    return value


def _check(pattern: re.Pattern[str], value: str, what: str, rule: str) -> None:
    if not pattern.fullmatch(value):
        raise AdminError(f"invalid {what} {value!r}: {rule}")


def check_sip_password(password: str) -> str:
    """The password if pjsip.conf can hold it safely, else AdminError."""
    if not SIP_PASSWORD.fullmatch(password) or any(c in password for c in SIP_PASSWORD_FORBIDDEN):
        raise AdminError(
            "invalid SIP password: 12 to 128 printable ASCII characters, without spaces, ';' or '#'"
        )
    return password


def generate_sip_password() -> str:
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(GENERATED_PASSWORD_LENGTH))


def _check_pin(pin: str, pin_digits: int) -> None:
    if not valid_pin_format(pin, pin_digits):
        raise AdminError(f"invalid PIN: it must be exactly {pin_digits} digits")


def _list_number(number: str, region: str) -> str:
    """The number normalised for a list (E.164 or a short code), else AdminError."""
    result = normalise_for_list(number, region)
    if not result.ok or result.number is None:
        raise AdminError(f"cannot list number {number!r}: {result.problem or 'not understood'}")
    return result.number


def _kind(kind: str) -> ContactKind:
    try:
        return ContactKind(kind)
    except ValueError:
        raise AdminError(f"invalid contact kind {kind!r}: social or legal") from None


def _by(changed_by: str) -> str:
    return _text(changed_by, "changed by", 100, required=True)


async def _flush(session: AsyncSession, duplicate: str) -> None:
    """Flush; a unique constraint broken by a concurrent writer is a refusal too."""
    try:
        await session.flush()
    except IntegrityError:
        raise AdminError(duplicate) from None


# --- cells -------------------------------------------------------------------------------------


async def get_cell(session: AsyncSession, name: str) -> Cell:
    cell = await session.scalar(select(Cell).where(Cell.name == name))
    if cell is None:
        raise AdminError(f"no cell named {name!r}")
    return cell


async def add_cell(
    session: AsyncSession, name: str, sip_password: str | None = None, wing: str = ""
) -> tuple[Cell, str]:
    """Add a cell and its handset's SIP endpoint (username = cell name).

    Returns the cell and its SIP password: the one given, or a generated one. Only its digest
    hash is stored (domain/sip_digest.py): the caller shows the password once.
    """
    _check(
        CELL_NAME, name, "cell name", "1 to 32 letters, digits, '-' or '_', not '-' or '_' first"
    )
    wing = _text(wing, "wing", 32)
    password = generate_sip_password() if sip_password is None else sip_password
    check_sip_password(password)
    taken = await session.scalar(
        select(Cell.id).where((Cell.name == name) | (Cell.sip_username == name))
    )
    if taken is not None:
        raise AdminError(f"cell {name} already exists")
    cred = sip_digest.md5_cred(name, sip_digest.REALM, password)
    cell = Cell(
        name=name,
        wing=wing,
        sip_username=name,
        sip_realm=sip_digest.REALM,
        sip_md5_cred=cred,
        enabled=True,
    )
    session.add(cell)
    await _flush(session, f"cell {name} already exists")
    return cell, password


async def set_sip_password(
    session: AsyncSession, name: str, sip_password: str | None = None
) -> tuple[Cell, str]:
    """Give a cell's handset a new SIP password (given, or generated); returns it to show once.

    For a handset replaced or a password exposed; the stored hash is replaced, so the old
    password stops working at the next `callcontrol asterisk sync`.
    """
    cell = await get_cell(session, name)
    password = generate_sip_password() if sip_password is None else sip_password
    check_sip_password(password)
    cell.sip_realm = sip_digest.REALM
    cell.sip_md5_cred = sip_digest.md5_cred(cell.sip_username, cell.sip_realm, password)
    await session.flush()
    return cell, password


async def disable_cell(session: AsyncSession, name: str, reason: str = "") -> Cell:
    """Disable a cell's handset: every call from it is refused until it is enabled."""
    return await _set_cell(session, name, False, _text(reason, "reason", 2000))


async def enable_cell(session: AsyncSession, name: str) -> Cell:
    return await _set_cell(session, name, True, "")


async def _set_cell(session: AsyncSession, name: str, enabled: bool, reason: str) -> Cell:
    cell = await get_cell(session, name)
    cell.enabled, cell.disabled_reason = enabled, reason
    await session.flush()
    return cell


async def list_cells(session: AsyncSession) -> list[Cell]:
    return list(await session.scalars(select(Cell).order_by(Cell.name)))


# --- prisoners ---------------------------------------------------------------------------------


async def get_prisoner(session: AsyncSession, prison_number: str) -> Prisoner:
    prisoner = await session.scalar(select(Prisoner).where(Prisoner.prison_number == prison_number))
    if prisoner is None:
        raise AdminError(f"no prisoner with prison number {prison_number!r}")
    return prisoner


async def _refuse_shared_pin(
    session: AsyncSession, cell: Cell, pin: str, secret: Keys, besides: int | None = None
) -> None:
    """Refuse a PIN a cellmate already has: the handset could not tell who is calling."""
    rows = await session.scalars(select(Prisoner).where(Prisoner.cell_id == cell.id))
    cellmates = [
        model.Prisoner(p.id, p.prison_number, p.name, p.pin_hash, cell.name, p.active)
        for p in rows
        if p.id != besides
    ]
    if matching_prisoners(cellmates, pin, secret):
        raise SharedPinError(f"a prisoner in cell {cell.name} already has this PIN: choose another")


async def add_prisoner(
    session: AsyncSession,
    prison_number: str,
    name: str,
    pin: str,
    cell: str,
    secret: Keys,
    pin_digits: int = 4,
) -> Prisoner:
    """Add a prisoner in ``cell`` with ``pin`` (only its keyed hash is stored)."""
    _check(PRISON_NUMBER, prison_number, "prison number", "1 to 32 letters or digits")
    name = _text(name, "name", 200, required=True)
    _check_pin(pin, pin_digits)
    the_cell = await get_cell(session, cell)
    duplicate = f"prisoner {prison_number} already exists"
    if await session.scalar(select(Prisoner.id).where(Prisoner.prison_number == prison_number)):
        raise AdminError(duplicate)
    await _refuse_shared_pin(session, the_cell, pin, secret)
    prisoner = Prisoner(
        prison_number=prison_number,
        name=name,
        pin_hash=hash_pin(as_keys(secret).current, prison_number, pin),
        cell_id=the_cell.id,
        active=True,
    )
    session.add(prisoner)
    await _flush(session, duplicate)
    return prisoner


async def move_prisoner(session: AsyncSession, prison_number: str, cell: str) -> Prisoner:
    prisoner = await get_prisoner(session, prison_number)
    the_cell = await get_cell(session, cell)
    if prisoner.cell_id == the_cell.id:
        raise AdminError(f"prisoner {prison_number} is already in cell {cell}")
    prisoner.cell_id = the_cell.id
    await session.flush()
    return prisoner


async def suspend_prisoner(session: AsyncSession, prison_number: str, reason: str = "") -> Prisoner:
    """Suspend a prisoner's calls (every call refused) until reinstated."""
    return await _set_active(session, prison_number, False, _text(reason, "reason", 2000))


async def reinstate_prisoner(session: AsyncSession, prison_number: str) -> Prisoner:
    return await _set_active(session, prison_number, True, "")


async def _set_active(session: AsyncSession, number: str, active: bool, reason: str) -> Prisoner:
    prisoner = await get_prisoner(session, number)
    prisoner.active, prisoner.suspended_reason = active, reason
    await session.flush()
    return prisoner


async def set_pin(
    session: AsyncSession, prison_number: str, pin: str, secret: Keys, pin_digits: int = 4
) -> Prisoner:
    """Give a prisoner a new PIN."""
    _check_pin(pin, pin_digits)
    prisoner = await get_prisoner(session, prison_number)
    if prisoner.cell_id is not None:
        cell = await session.get_one(Cell, prisoner.cell_id)
        await _refuse_shared_pin(session, cell, pin, secret, besides=prisoner.id)
    prisoner.pin_hash = hash_pin(as_keys(secret).current, prison_number, pin)
    await session.flush()
    return prisoner


async def list_prisoners(session: AsyncSession) -> list[tuple[Prisoner, str | None]]:
    """Every prisoner with the name of their cell (None when they have none)."""
    rows = await session.execute(
        select(Prisoner, Cell.name)
        .outerjoin(Cell, Prisoner.cell_id == Cell.id)
        .order_by(Prisoner.prison_number)
    )
    return [(p, cell) for p, cell in rows]


# --- contacts ----------------------------------------------------------------------------------


def _as_domain(c: Contact) -> model.Contact:
    return model.Contact(c.number, ContactKind(c.kind), ContactStatus(c.status), c.label)


async def _contacts(session: AsyncSession, prisoner: Prisoner) -> list[Contact]:
    query = select(Contact).where(Contact.prisoner_id == prisoner.id)
    return list(await session.scalars(query.order_by(Contact.kind, Contact.number)))


async def add_contact(
    session: AsyncSession,
    prison_number: str,
    number: str,
    kind: str,
    label: str,
    changed_by: str,
    region: str,
    max_social: int,
    max_legal: int,
) -> Contact:
    """Put a number on a prisoner's list, pending approval."""
    the_kind = _kind(kind)
    label = _text(label, "label", 200)
    changed_by = _by(changed_by)
    normalised = _list_number(number, region)
    if is_short_code(normalised):
        raise AdminError(f"{normalised} is a short code: list it for everyone (number allow)")
    prisoner = await get_prisoner(session, prison_number)
    existing = await _contacts(session, prisoner)
    for c in existing:
        if c.number == normalised:
            raise AdminError(f"{normalised} is already listed for {prison_number} ({c.status})")
    _check_limit(prison_number, existing, the_kind, max_social, max_legal)
    contact = Contact(prisoner_id=prisoner.id, number=normalised, kind=the_kind.value, label=label)
    return await _change(session, contact, ContactStatus.PENDING, changed_by, f"{the_kind} contact")


def _check_limit(
    prison_number: str, others: list[Contact], kind: ContactKind, max_social: int, max_legal: int
) -> None:
    if contact_limit_reached([_as_domain(c) for c in others], kind, max_social, max_legal):
        limit = max_legal if kind is ContactKind.LEGAL else max_social
        raise AdminError(f"{prison_number} has reached the limit of {limit} {kind} contacts")


_ACTIONS = {
    ContactStatus.PENDING: "added",
    ContactStatus.APPROVED: "approved",
    ContactStatus.BLOCKED: "blocked",
}


async def _change(
    session: AsyncSession, contact: Contact, new: ContactStatus, changed_by: str, note: str = ""
) -> Contact:
    """Set the contact's status and write it in the history. A new contact has old status ""."""
    old = "" if contact.id is None else contact.status
    contact.status = new.value
    if contact.id is None:
        session.add(contact)
        await _flush(session, f"{contact.number} is already on that prisoner's list")
    change = ContactChange(
        contact_id=contact.id,
        prisoner_id=contact.prisoner_id,
        number=contact.number,
        action=_ACTIONS[new],
        old_status=old,
        new_status=new.value,
        changed_by=changed_by,
        changed_at=datetime.now(UTC),
        note=note,
    )
    session.add(change)
    await session.flush()
    return contact


async def _find_contact(session: AsyncSession, prisoner: Prisoner, number: str) -> Contact | None:
    return await session.scalar(
        select(Contact).where(Contact.prisoner_id == prisoner.id, Contact.number == number)
    )


async def approve_contact(
    session: AsyncSession,
    prison_number: str,
    number: str,
    changed_by: str,
    region: str,
    max_social: int | None = None,
    max_legal: int | None = None,
) -> Contact:
    """Approve a pending (or blocked) contact: the prisoner may now call it.

    A blocked contact does not count towards the limits: with the limits given, approving one
    is refused when the prisoner has reached the limit of its kind.
    """
    changed_by = _by(changed_by)
    normalised = _list_number(number, region)
    prisoner = await get_prisoner(session, prison_number)
    contact = await _find_contact(session, prisoner, normalised)
    if contact is None:
        raise AdminError(f"{normalised} is not on the list of {prison_number}: add it first")
    if contact.status == ContactStatus.APPROVED:
        raise AdminError(f"{normalised} is already approved for {prison_number}")
    if contact.status == ContactStatus.BLOCKED and max_social is not None and max_legal is not None:
        others = [c for c in await _contacts(session, prisoner) if c.id != contact.id]
        _check_limit(prison_number, others, ContactKind(contact.kind), max_social, max_legal)
    return await _change(session, contact, ContactStatus.APPROVED, changed_by)


async def block_contact(
    session: AsyncSession,
    prison_number: str,
    number: str,
    changed_by: str,
    region: str,
    kind: str = "social",
    label: str = "",
) -> Contact:
    """Block a number for one prisoner; a number not yet on the list is added as blocked."""
    the_kind = _kind(kind)
    label = _text(label, "label", 200)
    changed_by = _by(changed_by)
    normalised = _list_number(number, region)
    prisoner = await get_prisoner(session, prison_number)
    contact = await _find_contact(session, prisoner, normalised)
    if contact is None:
        contact = Contact(prisoner_id=prisoner.id, number=normalised, kind=the_kind.value)
        contact.label = label
        return await _change(session, contact, ContactStatus.BLOCKED, changed_by, "not listed")
    if contact.status == ContactStatus.BLOCKED:
        raise AdminError(f"{normalised} is already blocked for {prison_number}")
    contact.label = label or contact.label
    return await _change(session, contact, ContactStatus.BLOCKED, changed_by)


async def list_contacts(session: AsyncSession, prison_number: str) -> list[Contact]:
    prisoner = await get_prisoner(session, prison_number)
    return await _contacts(session, prisoner)


async def contact_history(session: AsyncSession, prison_number: str) -> list[ContactChange]:
    """Every change to the prisoner's contacts, oldest first."""
    prisoner = await get_prisoner(session, prison_number)
    query = select(ContactChange).where(ContactChange.prisoner_id == prisoner.id)
    return list(await session.scalars(query.order_by(ContactChange.changed_at, ContactChange.id)))


# --- global numbers ----------------------------------------------------------------------------


async def _set_global(
    session: AsyncSession,
    number: str,
    policy: GlobalPolicy,
    privileged: bool,
    label: str,
    changed_by: str,
    region: str,
) -> GlobalNumber:
    label = _text(label, "label", 200)
    changed_by = _by(changed_by)
    normalised = _list_number(number, region)
    entry = await session.scalar(select(GlobalNumber).where(GlobalNumber.number == normalised))
    if entry is None:
        entry = GlobalNumber(number=normalised, label=label)
        session.add(entry)
    elif label:
        entry.label = label
    entry.policy, entry.privileged = policy.value, privileged
    entry.changed_by, entry.updated_at = changed_by, datetime.now(UTC)
    await _flush(session, f"{normalised} was changed by someone else at the same time: retry")
    return entry


async def block_number(
    session: AsyncSession, number: str, label: str, changed_by: str, region: str = "GB"
) -> GlobalNumber:
    """Block a number for every prisoner (it beats any approval)."""
    policy = GlobalPolicy.BLOCKED
    return await _set_global(session, number, policy, False, label, changed_by, region)


async def allow_number(
    session: AsyncSession,
    number: str,
    privileged: bool,
    label: str,
    changed_by: str,
    region: str = "GB",
) -> GlobalNumber:
    """Allow a number for every prisoner; ``privileged`` calls are never recorded."""
    policy = GlobalPolicy.ALLOWED
    return await _set_global(session, number, policy, privileged, label, changed_by, region)


async def list_global_numbers(session: AsyncSession) -> list[GlobalNumber]:
    query = select(GlobalNumber).order_by(GlobalNumber.policy, GlobalNumber.number)
    return list(await session.scalars(query))
