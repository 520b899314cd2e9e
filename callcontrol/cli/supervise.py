"""Officers' commands through the daemon's supervision API: `calls live|cut|listen`; and
`token add`, which writes the API tokens file.

The API is at [http] host:port; the token comes from --token, else CALLCONTROL_HTTP_TOKEN or
[http] token. Exit status: 0 done; 1 could not be done (no daemon reached, Asterisk not
connected, an action whose outcome is unknown, a daemon error); 2 refused (bad arguments, no
or bad token, wrong role, no such call, listening to a privileged call, ...). Every error is
one line on stderr, with the API's own words when it answered.
"""

from __future__ import annotations

import argparse
import ipaddress
from typing import Any

import aiohttp

from callcontrol.adapters.http.auth import ROLES, TokenError, add_token
from callcontrol.cli import Parents, command, group, table
from callcontrol.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError, emit
from callcontrol.config import Settings

Args = argparse.Namespace

TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 3.0
LISTEN_TIMEOUT_S = 45.0  # the officer's phone rings up to 30 s
NOT_REACHED = "no running daemon reached: no call cut"
NO_TOKEN = (
    "no API token (--token, CALLCONTROL_HTTP_TOKEN or [http] token): live calls not cut "
    "through the daemon; new calls are refused"
)


class ApiUnreachable(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_FAILED)


class ApiTimeout(ApiUnreachable):
    """Sent, but no answer in time: the outcome is unknown."""


class ApiRefused(CliError):
    """The API answered with an error: 4xx (exit 2) except 409, or 5xx and 409 (exit 1)."""

    def __init__(self, status: int, message: str) -> None:
        failed = status >= 500 or status == 409
        super().__init__(message, EXIT_FAILED if failed else EXIT_USAGE)
        self.http_status = status


def base_url(settings: Settings) -> str:
    host = settings.http.host
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass  # a host name
    return f"http://{host}:{settings.http.port}"


def api_token(args: Args, settings: Settings) -> str:
    """--token, else [http] token (which CALLCONTROL_HTTP_TOKEN overrides)."""
    return (getattr(args, "token", None) or settings.http.token or "").strip()


async def api(
    settings: Settings,
    method: str,
    path: str,
    token: str = "",
    body: dict[str, Any] | None = None,
    wait_s: float = TIMEOUT_S,
) -> Any:
    """One request to the API; its JSON answer, or ApiUnreachable / ApiRefused."""
    url = base_url(settings) + path
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    limits = aiohttp.ClientTimeout(total=wait_s, sock_connect=CONNECT_TIMEOUT_S)
    try:
        async with (
            aiohttp.ClientSession(timeout=limits) as session,
            session.request(method, url, json=body, headers=headers) as response,
        ):
            try:
                data = await response.json(content_type=None)
            except ValueError:
                data = None
            status = response.status
    except TimeoutError:
        raise ApiTimeout(
            f"the daemon at {url} did not answer within {wait_s:g} s: the outcome is unknown "
            "(see `callcontrol calls live`)"
        ) from None
    except aiohttp.ClientError as e:
        raise ApiUnreachable(f"no running daemon reached at {base_url(settings)}: {e}") from None
    if status >= 400:
        error = data.get("error") if isinstance(data, dict) else None
        raise ApiRefused(status, f"{error or 'HTTP ' + str(status)} (HTTP {status})")
    return data


def _need_token(args: Args, settings: Settings) -> str:
    token = api_token(args, settings)
    if not token:
        raise CliError("no API token: give --token, or set CALLCONTROL_HTTP_TOKEN or [http] token")
    return token


# --- calls -------------------------------------------------------------------------------------


def _left(seconds: Any) -> str:
    if seconds is None:
        return "-"
    return f"{seconds // 60}:{seconds % 60:02d}"


async def calls_live(args: Args, settings: Settings) -> int:
    data = await api(settings, "GET", "/calls/live", _need_token(args, settings))
    rows = [
        {
            "call": c["call_id"],
            "cell": c["cell"],
            "prisoner": c["prisoner"]["prison_number"],
            "name": c["prisoner"]["name"],
            "number": c["number"],
            "started": c["started_at"],
            "left": _left(c["seconds_left"]),
            "recorded": "yes" if c["recorded"] else "no",
            "privileged": "yes" if c["privileged"] else "no",
            "channel": c["channel"],
        }
        for c in data["calls"]
    ]
    text = table(rows, tuple(rows[0]) if rows else (), "no live calls")
    if not data.get("asterisk_connected", True):
        text += "\nwarning: the daemon is not connected to Asterisk: this list may be out of date"
    emit(args, data, text)
    return EXIT_OK


async def calls_cut(args: Args, settings: Settings) -> int:
    body = {"reason": args.reason}
    path = f"/calls/{args.call}/cut"
    data = await api(settings, "POST", path, _need_token(args, settings), body)
    emit(args, data, f"call {args.call} cut ({data.get('channel')} hung up)")
    return EXIT_OK


async def calls_listen(args: Args, settings: Settings) -> int:
    body = {"officer_endpoint": args.officer, "reason": args.reason}
    path = f"/calls/{args.call}/listen"
    token = _need_token(args, settings)
    data = await api(settings, "POST", path, token, body, wait_s=LISTEN_TIMEOUT_S)
    endpoint = data.get("officer_endpoint")
    emit(args, data, f"{endpoint} answered: it listens to call {args.call} (listen only)")
    return EXIT_OK


# --- for `cell disable` and `prisoner suspend` (cli/admin.py) ----------------------------------


async def cut_live_calls(settings: Settings, path: str, reason: str, token: str) -> dict[str, Any]:
    """Ask the daemon to cut the live calls at ``path`` (/cells/NAME/cut-calls, ...) once the
    database says no more calls. Never raises: returns what happened, with a "note" to print
    and "failed" true when the daemon was reached but not every call could be cut."""
    result: dict[str, Any] = {"daemon": "not reached", "calls_cut": [], "calls_not_cut": []}
    try:
        data = await api(settings, "POST", path, token, {"reason": reason})
    except ApiTimeout as e:
        return result | {"daemon": "reached", "note": str(e), "failed": True}
    except ApiUnreachable:
        return result | {"note": NOT_REACHED, "failed": False}
    except ApiRefused as e:
        note = f"the daemon refused to cut calls: {e}; no call cut"
        return result | {"daemon": "reached", "note": note, "failed": True}
    cut, not_cut = data.get("calls_cut", []), data.get("calls_not_cut", [])
    note = f"{len(cut)} live call(s) cut" if cut else "no live call to cut"
    if not_cut:
        why = "; ".join(f"call {c['call_id']}: {c['error']}" for c in not_cut)
        note += f"; {len(not_cut)} could NOT be cut: {why}"
    result |= {"daemon": "reached", "calls_cut": cut, "calls_not_cut": not_cut}
    return result | {"note": note, "failed": bool(not_cut)}


# --- tokens ------------------------------------------------------------------------------------


def token_add(args: Args, settings: Settings) -> int:
    path = settings.path(settings.http.tokens_file)
    try:
        token = add_token(path, args.name, args.role)
    except TokenError as e:
        raise CliError(str(e), EXIT_USAGE) from None
    except OSError as e:
        raise CliError(f"cannot write {path}: {e.strerror or e}", EXIT_FAILED) from None
    data = {"name": args.name, "role": args.role, "token": token, "file": str(path)}
    text = (
        f"token for {args.name} ({args.role}) added to {path}; it is shown only this once:\n{token}"
    )
    emit(args, data, text)
    return EXIT_OK


# --- the commands ------------------------------------------------------------------------------

EXIT_HELP = (
    "Exit status: 0 done; 1 could not be done (no daemon reached, Asterisk not connected, "
    "outcome unknown); 2 refused (no or bad token, wrong role, no such call, privileged call)."
)


def _token_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--token",
        metavar="TOKEN",
        help="API token (default: CALLCONTROL_HTTP_TOKEN, else [http] token)",
    )


def register(sub: argparse._SubParsersAction, parents: Parents) -> None:
    """Add the `calls` and `token` commands."""
    calls = group(
        sub,
        "calls",
        "live calls, through the running daemon: list, cut, listen in",
        "Live calls, through the daemon's supervision API ([http] host and port). " + EXIT_HELP,
    )
    live = command(
        calls,
        "live",
        parents,
        calls_live,
        "list the calls in progress",
        "List the calls in progress: cell, prisoner, number, time left, recorded or not.",
    )
    cut = command(
        calls,
        "cut",
        parents,
        calls_cut,
        "end a call now",
        "Hang up a call at once (both parties). Audited with your token's name and the "
        "reason. A cut whose outcome is unknown is never retried: check and cut again.",
    )
    cut.add_argument("call", type=int, metavar="CALL", help="the call's id (see `calls live`)")
    cut.add_argument("--reason", required=True, metavar="R", help="why, for the audit log")
    listen = command(
        calls,
        "listen",
        parents,
        calls_listen,
        "listen to a call from an officer's phone",
        "Ring an officer's SIP endpoint; once answered it hears the call (listen only, no "
        "beep). Refused for privileged (legal) calls, which are never monitored. Audited.",
    )
    listen.add_argument("call", type=int, metavar="CALL", help="the call's id")
    listen.add_argument(
        "--officer",
        required=True,
        metavar="ENDPOINT",
        help="the officer's endpoint: PJSIP/officer-1 or officer-1",
    )
    listen.add_argument("--reason", default="", metavar="R", help="why, for the audit log")
    for parser in (live, cut, listen):
        _token_option(parser)

    tokens = group(
        sub,
        "token",
        "API tokens for officers and administrators",
        "API tokens, kept in [http] tokens_file (ROLE NAME TOKEN lines); the daemon reads "
        "the file again whenever it changes. Remove a line to revoke a token.",
    )
    add = command(
        tokens,
        "add",
        parents,
        token_add,
        "make a token",
        "Make a random token for NAME and append it to the tokens file (mode 0600). The "
        "token is printed once, never again.",
    )
    add.add_argument("name", metavar="NAME", help="who the token is for, e.g. officer.smith")
    add.add_argument("--role", required=True, choices=ROLES, help="officer or admin")
