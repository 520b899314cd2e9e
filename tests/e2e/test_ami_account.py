"""The daemon's AMI account is not a master key, against the real lab (issue 9, section 3).

With the daemon's own secret: no dialplan rewrite, no CLI command, no reload, no Originate of a
shell; what the daemon needs still works. The built-in secret logs nobody in. The trunk and the
officers' desk are recognised by address and port only, never by a From user. An Originate into
[cc-listen] without the daemon's one-time id (none, made up, reused, or for a privileged call)
runs no ChanSpy; listening from a desk that is not configured is refused.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from callcontrol.adapters.ami.session import AmiError, AmiSession, AmiUnavailable
from callcontrol.config import BUILTIN_AMI_SECRET, load_settings
from callcontrol_lab.lab import OBSERVER_USER
from tests.e2e.conftest import E2E, PORTS
from tests.e2e.test_cell_calls import LONDON, provision
from tests.e2e.test_recording import audit, call_in_background, live_call, officer_desk, token

pytestmark = pytest.mark.e2e


@asynccontextmanager
async def daemon_account(e2e: E2E, secret: str | None = None) -> AsyncIterator[AmiSession]:
    """An AMI session as the daemon's user, with its secret (the file the lab rendered)."""
    settings = load_settings(e2e.config)
    async with _logged_in(settings.ami.username, secret or settings.ami_secret()) as ami:
        yield ami


@asynccontextmanager
async def lab_watcher(e2e: E2E) -> AsyncIterator[AmiSession]:
    """An AMI session as the lab's watcher (read call, no eventfilter): every call event."""
    async with _logged_in(OBSERVER_USER, e2e.lab.observer_secret) as ami:
        yield ami


@asynccontextmanager
async def _logged_in(username: str, secret: str) -> AsyncIterator[AmiSession]:
    ami = AmiSession("127.0.0.1", PORTS["ami"], username, secret)
    await ami.start()
    try:
        await ami.wait_connected(10)
        yield ami
    finally:
        await ami.stop()


def dialplan(e2e: E2E, context: str) -> str:
    return e2e.lab.rx(f"dialplan show {context}")


# --- the account: least privilege --------------------------------------------------------------


def test_the_daemon_account_cannot_rewrite_the_dialplan_or_run_commands(e2e: E2E) -> None:
    refused = {
        "DialplanExtensionAdd": {
            "Context": "cells",
            "Extension": "_X.",
            "Priority": "1",
            "Application": "Dial",
            "ApplicationData": "PJSIP/${EXTEN}@pstn",
            "Replace": "yes",
        },
        "Command": {"Command": "dialplan add extension 999,1,Dial(PJSIP/999@pstn) into cells"},
        "Reload": {"Module": "pbx_config.so"},
        "ModuleLoad": {"Module": "pbx_config.so", "LoadType": "reload"},
    }

    async def probe() -> dict[str, str]:
        said: dict[str, str] = {}
        async with daemon_account(e2e) as ami:
            for action, fields in refused.items():
                try:
                    await ami.action({"Action": action, **fields})
                    said[action] = "accepted"
                except AmiError as e:
                    said[action] = str(e)
            try:  # Application=System needs the system class
                await ami.action(
                    {"Action": "Originate", "Channel": "Local/s@cc-listen",
                     "Application": "System", "Data": "true", "Async": "true"}
                )  # fmt: skip
                said["Originate System"] = "accepted"
            except AmiError as e:
                said["Originate System"] = str(e)
            # What the daemon needs still works: the list of channels, Hangup (here of a
            # channel that does not exist: refused for that reason, not for permission).
            assert isinstance(await ami.core_show_channels(), list)
            with pytest.raises(AmiError, match="No such channel"):
                await ami.hangup("PJSIP/nobody-00000000")
        return said

    said = asyncio.run(probe())
    for action in refused:
        assert "Permission denied" in said[action], (action, said[action])
    assert "Forbidden" in said["Originate System"], said
    assert "_X." not in dialplan(e2e, "cells") and "999" not in dialplan(e2e, "cells")


def test_the_built_in_secret_logs_nobody_in(e2e: E2E) -> None:
    async def login() -> None:
        async with daemon_account(e2e, BUILTIN_AMI_SECRET):
            pass

    with pytest.raises(AmiUnavailable):
        asyncio.run(login())


# --- the trunk and the desk: by address and port only -----------------------------------------


def invite(from_user: str, bind_port: int = 0) -> int:
    """Send one INVITE to the lab from 127.0.0.1:bind_port as ``from_user``; its final status."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", bind_port))
        sock.settimeout(5)
        port = sock.getsockname()[1]
        call_id, tag, branch = uuid.uuid4().hex, uuid.uuid4().hex[:8], uuid.uuid4().hex[:12]
        sdp = (
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=audio 17700 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        )
        target = f"sip:02079460000@127.0.0.1:{PORTS['pjsip']}"
        head = (
            f"INVITE {target} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{branch};rport\r\n"
            f"From: <sip:{from_user}@127.0.0.1:{port}>;tag={tag}\r\n"
            f"To: <{target}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
            f"Contact: <sip:{from_user}@127.0.0.1:{port}>\r\nMax-Forwards: 70\r\n"
            f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n"
        )
        sock.sendto((head + sdp).encode(), ("127.0.0.1", PORTS["pjsip"]))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            reply = sock.recv(65535).decode(errors="replace")
            status = int(reply.split(" ", 2)[1])
            if status < 200:
                continue
            to = re.search(r"^To: (.*)$", reply, re.M | re.I)
            ack = (
                f"ACK {target} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{branch};rport\r\n"
                f"From: <sip:{from_user}@127.0.0.1:{port}>;tag={tag}\r\n"
                f"To: {to.group(1).strip() if to else '<' + target + '>'}\r\n"
                f"Call-ID: {call_id}\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\n"
                "Content-Length: 0\r\n\r\n"
            )
            sock.sendto(ack.encode(), ("127.0.0.1", PORTS["pjsip"]))
            return status
    raise AssertionError(f"no final answer to an INVITE from {from_user}")


@pytest.mark.parametrize("name", ["pstn", "officers"])
def test_calling_oneself_the_trunk_or_the_desk_from_another_port_is_challenged(
    e2e: E2E, name: str
) -> None:
    # Any local client: an ephemeral port, not the trunk's or the desk's.
    assert invite(name) == 401
    # The real one, at its address and port, is still recognised: its context refuses the
    # call (nothing calls in from the trunk or the desk), unchallenged.
    port = PORTS["pstn"] if name == "pstn" else load_settings(e2e.config).asterisk.officers_port
    assert invite("anyone", port) == 403


# --- listening: authorised by the daemon at the moment it starts --------------------------------


class SpyWatch:
    """ChanSpy starts and the officers' desk channels' hang-ups, as AMI events: seen by the
    lab's watcher account, since the daemon's receives only the events the daemon uses."""

    def __init__(self) -> None:
        self.spies: list[dict[str, Any]] = []
        self.desk_hangups: list[str] = []

    def attach(self, ami: AmiSession) -> None:
        ami.on("ChanSpyStart", lambda e: self.spies.append(dict(e)))
        ami.on("Hangup", self._hangup)

    def _hangup(self, event: Any) -> None:
        if str(event.get("Channel", "")).startswith("PJSIP/officers-"):
            self.desk_hangups.append(str(event["Channel"]))


async def until(done: Callable[[], bool], seconds: float) -> bool:
    """Poll ``done`` every 0.1 s for up to ``seconds``."""
    for _ in range(int(seconds * 10)):
        if done():
            return True
        await asyncio.sleep(0.1)
    return done()


async def _originate_listen(ami: AmiSession, watch: SpyWatch, variables: dict[str, str]) -> None:
    """Ring the desk into [cc-listen] as anyone with the secret could; wait for its end."""
    answered = await ami.originate(
        "PJSIP/officers", context="cc-listen", exten="s", timeout_ms=10000, variables=variables
    )
    desk = str(answered.get("Channel", ""))
    assert desk.startswith("PJSIP/officers-"), answered
    assert await until(lambda: desk in watch.desk_hangups, 15), (
        f"the desk's channel {desk} was never hung up"
    )


def _listen_ids(e2e: E2E) -> list[str]:
    log = (e2e.lab.inside(e2e.lab.log_dir) / "messages.log").read_text(errors="replace")
    return re.findall(r"/listen,([0-9a-f]{32})\b", log)


def test_an_originate_into_cc_listen_needs_the_daemons_one_time_id(e2e: E2E) -> None:
    officer = token(e2e, "officer")
    cell, prisoner, pin = provision(e2e, (LONDON, "approved"))
    e2e.cli("contact", "add", prisoner, "020 7946 0999", "--kind", "legal")
    e2e.cli("contact", "approve", prisoner, "020 7946 0999")
    watch = SpyWatch()

    async def attempts(channel: str, call_id: int) -> None:
        async with daemon_account(e2e) as ami, lab_watcher(e2e) as watcher:
            watch.attach(watcher)
            for listen_id in (None, "0123456789abcdef0123456789abcdef"):
                variables = {"CC_SPY_CHANNEL": channel, "CC_LISTEN_CALL": str(call_id)}
                if listen_id:
                    variables["CC_LISTEN_ID"] = listen_id
                await _originate_listen(ami, watch, variables)
            assert watch.spies == [], "ChanSpy ran without the daemon's id"
            # The daemon's own listen: its id works once, and only once.
            known = set(_listen_ids(e2e))
            await asyncio.to_thread(
                e2e.cli, "calls", "listen", str(call_id), "--officer", "officers",
                "--reason", "intelligence", "--token-file", officer,
            )  # fmt: skip
            await until(lambda: bool(watch.spies), 15)
            assert [s.get("SpyeeChannel") for s in watch.spies] == [channel]
            # The id the daemon gave the desk, as Asterisk logged its FastAGI request.
            await until(lambda: bool(set(_listen_ids(e2e)) - known), 5)
            [used] = set(_listen_ids(e2e)) - known
            spies = len(watch.spies)
            await _originate_listen(ami, watch, {"CC_SPY_CHANNEL": channel, "CC_LISTEN_ID": used})
            assert len(watch.spies) == spies, "a used listen id let ChanSpy run again"

    async def privileged(channel: str, call_id: int) -> None:
        async with daemon_account(e2e) as ami, lab_watcher(e2e) as watcher:
            watch.attach(watcher)
            spies = len(watch.spies)
            await _originate_listen(
                ami, watch,
                {"CC_SPY_CHANNEL": channel, "CC_LISTEN_CALL": str(call_id),
                 "CC_LISTEN_ID": "fedcba9876543210fedcba9876543210"},
            )  # fmt: skip
            assert len(watch.spies) == spies, "ChanSpy ran on a privileged call"

    with officer_desk(e2e):
        with call_in_background(e2e, cell, pin, "02079460000", 25) as result:
            call_id = live_call(e2e, prisoner)
            channel = channel_of(e2e, call_id, officer)
            asyncio.run(attempts(channel, call_id))
        assert result["outcome"] == "connected", result
        with call_in_background(e2e, cell, pin, "02079460999", 12) as result:
            call_id = live_call(e2e, prisoner)
            asyncio.run(privileged(privileged_channel(e2e, call_id), call_id))
        assert result["outcome"] == "connected", result
    refusals = [e["detail"] for e in audit(e2e, "listen_refused", "listen")]
    assert len(refusals) >= 4 and all("no such listen id" in d for d in refusals), refusals


def channel_of(e2e: E2E, call_id: int, officer: str) -> str:
    live = json.loads(e2e.cli("calls", "live", "--json", "--token-file", officer).stdout)
    [found] = [c for c in live["calls"] if c["call_id"] == call_id]
    return str(found["channel"])


def privileged_channel(e2e: E2E, call_id: int) -> str:
    [row] = e2e.sql("SELECT channel, privileged FROM calls WHERE id = $1", call_id)
    assert row["privileged"] is True
    return str(row["channel"])


def test_listening_from_a_desk_that_is_not_configured_is_refused_and_audited(e2e: E2E) -> None:
    officer = token(e2e, "officer")
    cell, prisoner, pin = provision(e2e, (LONDON, "approved"))
    with call_in_background(e2e, cell, pin, "02079460000", 6) as result:
        call_id = live_call(e2e, prisoner)
        refused = e2e.cli(
            "calls", "listen", str(call_id), "--officer", "visitor-phone", "--token-file", officer,
            check=False,
        )  # fmt: skip
    assert result["outcome"] == "connected", result
    assert refused.returncode == 2 and "not a configured officer desk" in refused.stderr, refused
    [entry] = audit(e2e, "listen_refused", f"call:{call_id}")
    assert "PJSIP/visitor-phone" in str(entry["detail"])
