"""Officers' commands through the daemon's supervision API: `calls live|cut|listen`; and
`token add|list|revoke`, which keep the API tokens file.

The API is at [http] host:port. The token is read from --token-file FILE (or [http] token_file,
CALLCONTROL_HTTP_TOKEN_FILE), else CALLCONTROL_HTTP_TOKEN (or [http] token): never from the
command line, where every local account sees it (ps, /proc, shell history); --token is refused
unless [lab] enabled. Exit status: 0 done; 1 could not be done (no daemon reached, Asterisk not
connected, an action whose outcome is unknown, a daemon error); 2 refused (bad arguments, no
or bad token, wrong role, no such call, listening to a privileged call, ...). Every error is
one line on stderr, with the API's own words when it answered.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import stat
import sys
from pathlib import Path
from typing import Any

import aiohttp

from callcontrol.adapters.http.auth import ROLES, Principal, TokenError, digest, parse_tokens
from callcontrol.adapters.http.token_store import add_token, list_tokens, revoke_token
from callcontrol.cli import Parents, command, group, table, who
from callcontrol.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError, emit
from callcontrol.config import Settings

Args = argparse.Namespace

TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 3.0
LISTEN_TIMEOUT_S = 45.0  # the officer's phone rings up to 30 s
NOT_REACHED = "no running daemon reached: no call cut"
NO_TOKEN = (
    "no API token (--token-file, CALLCONTROL_HTTP_TOKEN or [http] token_file): live calls not "
    "cut through the daemon; new calls are refused"
)
TOKEN_ON_ARGV = (
    "--token puts the token on the command line, where every local account can read it: "
    "use --token-file FILE or CALLCONTROL_HTTP_TOKEN ([lab] enabled allows it in the lab)"
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


def _read_token_file(path: Path) -> str:
    try:
        st = os.stat(path)
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CliError(f"cannot read the token file {path}: {getattr(e, 'strerror', e)}") from None
    if stat.S_IMODE(st.st_mode) & 0o077:
        print(f"callcontrol: warning: {path} is readable by others: chmod 600 it", file=sys.stderr)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise CliError(f"the token file {path} is empty")
    return lines[0]


def api_token(args: Args, settings: Settings) -> str:
    """The CLI's token: --token-file (or [http] token_file), else [http] token (which
    CALLCONTROL_HTTP_TOKEN overrides); --token only where [lab] enabled."""
    if getattr(args, "token", None):
        if not settings.lab.enabled:
            raise CliError(TOKEN_ON_ARGV, EXIT_USAGE)
        return str(args.token).strip()
    file = getattr(args, "token_file", None) or settings.http.token_file
    if file:
        return _read_token_file(settings.path(file))
    return (settings.http.token or "").strip()


def token_owner(settings: Settings, token: str) -> Principal | None:
    """Whose token this is, by the tokens file, if this account can read it (else None)."""
    try:
        text = settings.path(settings.http.tokens_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return parse_tokens(text)[0].get(digest(token))


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
        raise CliError(
            "no API token: give --token-file FILE, or set CALLCONTROL_HTTP_TOKEN or "
            "[http] token_file"
        )
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


def _tokens_path(settings: Settings) -> Path:
    return settings.path(settings.http.tokens_file)


def _entry(entry: Any) -> dict[str, Any]:
    fields = ("id", "person", "role", "created_at", "created_by", "revoked_at", "revoked_by")
    data = {f: getattr(entry, f) for f in fields}
    return data | {"active": entry.active}


def _token_call(fn: Any, path: Path, *a: Any) -> Any:
    try:
        return fn(path, *a)
    except TokenError as e:
        raise CliError(str(e), EXIT_USAGE) from None
    except OSError as e:
        raise CliError(f"cannot write {path}: {e.strerror or e}", EXIT_FAILED) from None


def token_add(args: Args, settings: Settings) -> int:
    path = _tokens_path(settings)
    token, entry = _token_call(add_token, path, args.person, args.role, who(args))
    data = _entry(entry) | {"token": token, "file": str(path)}
    text = (
        f"token {entry.id} for {entry.person} ({entry.role}) added to {path}; "
        f"it is shown only this once:\n{token}"
    )
    emit(args, data, text)
    return EXIT_OK


def token_list(args: Args, settings: Settings) -> int:
    rows = [_entry(e) for e in _token_call(lambda p: list_tokens(p), _tokens_path(settings))]
    if not args.all:
        rows = [r for r in rows if r["active"]]
    columns = ("id", "person", "role", "created_at", "created_by")
    if args.all:
        columns += ("revoked_at", "revoked_by")
    emit(args, rows, table(rows, columns, "no tokens"))
    return EXIT_OK


def token_revoke(args: Args, settings: Settings) -> int:
    entry = _token_call(revoke_token, _tokens_path(settings), args.id, who(args))
    text = f"token {entry.id} of {entry.person} ({entry.role}) revoked: refused from now on"
    emit(args, _entry(entry), text)
    return EXIT_OK


# --- the commands ------------------------------------------------------------------------------

EXIT_HELP = (
    "Exit status: 0 done; 1 could not be done (no daemon reached, Asterisk not connected, "
    "outcome unknown); 2 refused (no or bad token, wrong role, no such call, privileged call)."
)


def token_options(parser: argparse.ArgumentParser, help: str = "API token") -> None:
    """--token-file, and --token (refused unless [lab] enabled)."""
    parser.add_argument(
        "--token-file",
        metavar="FILE",
        help=f"a file holding the {help} (mode 0600; default: [http] token_file, "
        "else CALLCONTROL_HTTP_TOKEN)",
    )
    parser.add_argument(
        "--token",
        metavar="TOKEN",
        help="the token itself: refused unless [lab] enabled (on the command line every "
        "local account can read it)",
    )


def register(sub: argparse._SubParsersAction, parents: Parents) -> None:
    """Add the `calls` and `token` commands."""
    calls = group(
        sub,
        "calls",
        "calls: live ones through the daemon (list, cut, listen in), and their history",
        "Live calls, through the daemon's supervision API ([http] host and port); and past "
        "calls from the database (`calls history`). " + EXIT_HELP,
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
        token_options(parser)
    from callcontrol.cli.history import register_calls  # it imports this package's helpers

    register_calls(calls, parents)

    tokens = group(
        sub,
        "token",
        "API tokens for officers, administrators and auditors",
        "API tokens, each belonging to a named person, kept as SHA-256 hashes in [http] "
        "tokens_file; the daemon reads the file again whenever it changes. The audit log "
        "names the token's person.",
    )
    add = command(
        tokens,
        "add",
        parents,
        token_add,
        "make a token for a person",
        "Make a random token for a person and store its hash in the tokens file (mode 0600). "
        "The token is printed once, never again: give it to the person, who keeps it in a "
        "file of their own (--token-file) or in CALLCONTROL_HTTP_TOKEN. One active token per "
        "person: revoke the old one first.",
    )
    add.add_argument(
        "--person", required=True, metavar="NAME", help='who the token is for, e.g. "Jane Officer"'
    )
    add.add_argument(
        "--role",
        required=True,
        choices=ROLES,
        help="officer (watch, cut, listen, approve or block contacts, disable), admin (also "
        "enable, reinstate, money and set-up, the audit log) or auditor (reads everything, "
        "the audit log too, and changes nothing)",
    )
    listing = command(
        tokens,
        "list",
        parents,
        token_list,
        "list the tokens (never the tokens themselves)",
        "List the active tokens: id, person, role, when and by whom made. The tokens "
        "themselves are not stored and cannot be shown.",
    )
    listing.add_argument("--all", action="store_true", help="revoked tokens too")
    revoke = command(
        tokens,
        "revoke",
        parents,
        token_revoke,
        "revoke a token at once",
        "Revoke a token: the daemon refuses it from its next request. The entry stays in "
        "the file, marked revoked (see `token list --all`).",
    )
    revoke.add_argument("id", metavar="ID", help="the token's id (see `callcontrol token list`)")
