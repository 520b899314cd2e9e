"""`callcontrol asterisk check`: compare a running Asterisk with what callcontrol needs of it."""

from __future__ import annotations

import argparse
import asyncio
import logging

from callcontrol.cli.common import EXIT_FAILED, EXIT_OK, emit
from callcontrol.config import ConfigError, Settings

DESCRIPTION = (
    "Compare the running Asterisk with what callcontrol needs and print one line per "
    "difference; exit status 0 only when nothing differs. Checked: every module of the "
    "packaged modules.conf is loaded; the daemon's AMI account has the read and write classes "
    "of the packaged manager.conf and no system, command or config, and receives no event "
    "that its eventfilter keeps back (seen only while calls make events: Asterisk cannot be "
    "asked for an account's filters); every context of the "
    "packaged cells dialplan exists; the CC_ globals are set (CC_AGI_URL with the secret of "
    "[agi] secret_file, shown as ***); a PJSIP endpoint exists for every enabled cell and none "
    "for a disabled one. Contexts, globals and the account's permitted actions are asked over "
    "AMI as the daemon's account ([ami], read call,reporting is enough); modules, the account's "
    "classes and the endpoints over Asterisk's CLI control socket (`asterisk -rx`: root or "
    "Asterisk's user, as for `asterisk sync`). Whatever cannot be asked is a difference too."
)


def register(ast_sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    check = ast_sub.add_parser(
        "check",
        parents=parents,
        help="compare the running Asterisk with what callcontrol needs; one line a difference",
        description=DESCRIPTION,
    )
    check.add_argument(
        "--timeout", type=float, default=5.0, help="seconds for the AMI login and each action"
    )
    check.set_defaults(handler=asterisk_check)


async def _handsets(settings: Settings) -> dict[str, bool]:
    from callcontrol.adapters.db.cell_endpoints import opened

    async with opened(settings) as cells:
        return await cells.handsets()


async def asterisk_check(args: argparse.Namespace, settings: Settings) -> int:
    from callcontrol.adapters.agi.secret import AgiSecretError, load_secret
    from callcontrol.adapters.asterisk import control, expected, observe

    logging.getLogger("callcontrol.ami").setLevel(logging.CRITICAL)  # said once, below
    got = expected.Observed()
    try:
        agi_secret = load_secret(settings.path(settings.agi.secret_file))
    except AgiSecretError as e:
        agi_secret = ""
        got.unreachable.append(f"cannot check CC_AGI_URL's secret: {e}")
    try:
        handsets = await _handsets(settings)
    except Exception as e:
        handsets = {}
        got.unreachable.append(f"cannot read the cells to check PJSIP endpoints: {e}")
    want = expected.expected(settings, agi_secret, handsets)
    await asyncio.to_thread(
        observe.observe_cli, lambda cmd: control.rx(settings, cmd), want.ami_user, got
    )
    try:
        ami_secret = settings.ami_secret()
    except ConfigError as e:
        got.unreachable.append(f"cannot check over AMI: {e}")
    else:
        a = settings.ami
        await observe.observe_ami(
            a.host, a.port, a.username, ami_secret, want.contexts, want.globals, got, args.timeout
        )
    lines = expected.differences(want, got)
    checked = {
        "modules": len(want.modules),
        "contexts": len(want.contexts),
        "globals": len(want.globals),
        "handsets": len(handsets),
    }
    summary = (
        f"Asterisk matches: {checked['modules']} modules, {checked['contexts']} contexts, "
        f"{checked['globals']} globals, the AMI account and {checked['handsets']} handset(s)"
    )
    emit(args, {"ok": not lines, "differences": lines, "checked": checked},
         "\n".join(lines) if lines else summary)  # fmt: skip
    return EXIT_FAILED if lines else EXIT_OK
