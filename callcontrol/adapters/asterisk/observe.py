"""Ask a running Asterisk what `callcontrol asterisk check` compares (adapters/asterisk/expected).

Two ways in, each with the right it needs:
- AMI, logged in as the daemon's account (read call,reporting; write call,reporting,originate):
  the actions that account may send (ListCommands), the dialplan contexts (ShowDialPlan, class
  reporting) and the globals (Getvar, class call or reporting); and, meanwhile, any event it
  receives that the packaged eventfilter keeps back (only while calls make some: Asterisk has no
  command that shows an account's filters).
- Asterisk's CLI over its control socket (`asterisk -rx`, as `asterisk sync` reloads PJSIP: root
  or Asterisk's user): the loaded modules (`module show`), the AMI account's classes (`manager
  show user`) and the PJSIP endpoints (`pjsip list endpoints`). The daemon's AMI account cannot
  read these: ModuleCheck, PJSIPShowEndpoints and Command need classes it must not have.
What cannot be asked is reported as a difference ("cannot check ..."), never taken as fine.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from callcontrol.adapters.ami.events import unused_event
from callcontrol.adapters.ami.session import AmiActionLost, AmiError, AmiSession, AmiUnavailable
from callcontrol.adapters.asterisk.expected import Observed

Rx = Callable[[str], str]  # one CLI command -> its output; raises on failure

_MODULE = re.compile(r"^(\S+\.so)\s.*\s\s(Running)\s", re.MULTILINE)
_PERM = re.compile(r"^\s*(read|write) perm:\s*(\S*)\s*$", re.MULTILINE)
_ENDPOINT = re.compile(r"^\s*Endpoint:\s+([^\s/<]+)", re.MULTILINE)


def observe_cli(rx: Rx, ami_user: str, got: Observed) -> None:
    """Fill in modules, AMI classes and endpoints from Asterisk's CLI (blocking)."""
    try:
        got.modules = {m.group(1) for m in _MODULE.finditer(rx("module show"))}
        user = rx(f"manager show user {ami_user}")
        perms = dict(m.groups() for m in _PERM.finditer(user))
        if "read" in perms and "write" in perms:
            got.ami_classes = (_classes(perms["read"]), _classes(perms["write"]))
        else:
            got.unreachable.append(f"AMI user {ami_user}: not defined in manager.conf")
        got.endpoints = set(_ENDPOINT.findall(rx("pjsip list endpoints")))
    except Exception as e:
        got.unreachable.append(
            f"cannot check modules, the AMI account's classes or PJSIP endpoints: Asterisk's "
            f"CLI (asterisk -rx, root or Asterisk's user) failed: {' '.join(str(e).split())}"
        )


def _classes(text: str) -> list[str]:
    return sorted(c for c in text.split(",") if c and c != "<none>")


async def observe_ami(
    host: str,
    port: int,
    user: str,
    secret: str,
    contexts: Iterable[str],
    globals_: Iterable[str],
    got: Observed,
    timeout: float = 5.0,  # noqa: ASYNC109 - a login and a few actions
) -> None:
    """Fill in the permitted actions, contexts and globals over AMI as the daemon's account."""
    ami = AmiSession(host, port, user, secret, reconnect_s=timeout, action_timeout=timeout)
    unused: set[str] = set()  # events the eventfilter should have kept back, seen meanwhile

    def note(event: Mapping[str, Any]) -> None:
        name = unused_event(event)
        if name:
            unused.add(name)

    ami.on("*", note)
    await ami.start()
    try:
        await ami.wait_connected(timeout)
        listed = await ami.action({"Action": "ListCommands"})
        reply = listed[0] if isinstance(listed, list) else listed
        got.ami_actions = {k for k in dict(reply) if k not in ("Response", "ActionID", "content")}
        present = {}
        for context in contexts:
            try:
                await ami.action({"Action": "ShowDialPlan", "Context": context})
                present[context] = True
            except AmiError as e:
                if "did not find context" not in str(e).lower():
                    raise
                present[context] = False
        got.contexts = present
        values = {}
        for name in globals_:
            reply = await ami.action({"Action": "Getvar", "Variable": f"GLOBAL({name})"})
            first = reply[0] if isinstance(reply, list) else reply
            values[name] = str(first.get("Value", "") or "")
        got.globals = values
        got.ami_unused_events = unused
    except (TimeoutError, AmiUnavailable, AmiError, AmiActionLost) as e:
        got.unreachable.append(
            f"cannot check dialplan contexts, globals or AMI actions: AMI as {user} at "
            f"{host}:{port} failed: {' '.join(str(e).split())}"
        )
    finally:
        await ami.stop()
