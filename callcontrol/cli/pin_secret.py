"""`callcontrol pin-secret status|rotate|retire`: replace the PIN secret without losing PINs.

A PIN is stored as an HMAC with the secret ([security] pin_secret_file), so a new secret alone
would make every stored PIN wrong. `rotate` keeps the old secret in [security]
pin_previous_secrets_file (for checking only) and writes a new one; the daemon reads both at
each PIN check, so it needs no restart. Each prisoner's PIN is stored again with the new secret
the next time they key it right. `status` counts the PINs still
hashed with an old secret; `retire` forgets the old secrets once none is left (the PINs of
prisoners who never called meanwhile would stop working: set them again first, or --force).
"""

from __future__ import annotations

import argparse
import secrets
from pathlib import Path

from callcontrol import private_files
from callcontrol.adapters.db.pin_store import pin_hashes
from callcontrol.cli import Parents, admin_session, command, group
from callcontrol.cli.common import EXIT_OK, CliError, emit
from callcontrol.config import Settings
from callcontrol.domain.pins import key_id, key_usage

Args = argparse.Namespace


def _files(settings: Settings) -> tuple[Path, Path]:
    if settings.security.pin_secret:
        raise CliError(
            "the PIN secret is given in the settings ([security] pin_secret or "
            "CALLCONTROL_SECURITY_PIN_SECRET): move it into [security] pin_secret_file to rotate it"
        )
    s = settings.security
    return settings.path(s.pin_secret_file), settings.path(s.pin_previous_secrets_file)


async def _usage(settings: Settings) -> dict[str, object]:
    keys = settings.pin_keys()
    async with admin_session(settings) as s:
        counts = key_usage(keys, await pin_hashes(s))
    return {
        "current_key": key_id(keys.current),
        "previous_keys": [key_id(k) for k in keys.previous],
        "pins": {k: counts.get(k, 0) for k in ("current", "previous", "legacy", "lost")},
    }


def _text(data: dict[str, object]) -> str:
    pins = data["pins"]
    assert isinstance(pins, dict)
    previous = data["previous_keys"] or ["none"]
    assert isinstance(previous, list)
    return (
        f"current key {data['current_key']}; previous keys kept: {', '.join(previous)}\n"
        f"PINs with the current key: {pins['current']}; with a previous key: "
        f"{pins['previous']}; made before key ids (any key): {pins['legacy']}; with a key no "
        f"longer kept (cannot match: set them again): {pins['lost']}"
    )


async def pin_secret_status(args: Args, settings: Settings) -> int:
    data = await _usage(settings)
    emit(args, data, _text(data))
    return EXIT_OK


def pin_secret_rotate(args: Args, settings: Settings) -> int:
    current, previous = _files(settings)
    with private_files.exclusive(current):
        old = settings.pin_secret().decode()  # refuses a missing or short secret
        kept = previous.read_text().splitlines() if previous.exists() else []
        # The old secret is kept before the new one is written: a PIN check in between finds
        # the old secret in both places, never in neither.
        private_files.write_file(previous, "\n".join([old, *[k for k in kept if k.strip()]]) + "\n")
        new = secrets.token_hex(32)
        private_files.write_file(current, new + "\n")
    data = {"current_key": key_id(new.encode()), "retired_to_previous": key_id(old.encode())}
    text = (
        f"new PIN secret {data['current_key']} in {current}; the old one "
        f"({data['retired_to_previous']}) kept in {previous} for checking. Each PIN is stored "
        "with the new secret when next keyed right; see `callcontrol pin-secret status`. "
        "Back up both files now."
    )
    emit(args, data, text)
    return EXIT_OK


async def pin_secret_retire(args: Args, settings: Settings) -> int:
    _, previous = _files(settings)
    data = await _usage(settings)
    pins = data["pins"]
    assert isinstance(pins, dict)
    waiting = pins["previous"] + pins["legacy"]
    if waiting and not args.force:
        raise CliError(
            f"{waiting} PIN(s) may still need a previous secret: set them again "
            "(`prisoner set-pin`), wait until they are keyed, or --force (they stop working)"
        )
    with private_files.exclusive(previous):
        previous.unlink(missing_ok=True)
    emit(
        args,
        data | {"retired": data["previous_keys"]},
        f"previous PIN secrets removed ({previous})",
    )
    return EXIT_OK


def register(sub: argparse._SubParsersAction, parents: Parents) -> None:
    """Add the `pin-secret` commands."""
    actions = group(
        sub,
        "pin-secret",
        "rotate the PIN secret without losing PINs",
        __doc__.split("\n\n", 1)[1] if __doc__ else "",
    )
    command(
        actions, "status", parents, pin_secret_status, "how many PINs use each secret",
        "Count the prisoners' PINs by the secret they are hashed with: the current one, a "
        "previous one (still kept), one from before key ids (any key), or one no longer kept.",
    )  # fmt: skip
    command(
        actions, "rotate", parents, pin_secret_rotate, "make a new PIN secret, keep the old",
        "Write a new random PIN secret into [security] pin_secret_file and add the old one to "
        "[security] pin_previous_secrets_file. Every PIN still works; each is stored with the "
        "new secret when next keyed right. The running daemon picks it up at the next call.",
    )  # fmt: skip
    retire = command(
        actions, "retire", parents, pin_secret_retire, "forget the previous PIN secrets",
        "Remove [security] pin_previous_secrets_file once `status` shows no PIN using a "
        "previous secret. Refused while some do, unless --force.",
    )  # fmt: skip
    retire.add_argument("--force", action="store_true", help="even if some PINs still need one")
