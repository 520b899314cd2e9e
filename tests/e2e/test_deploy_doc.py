"""docs/deploy.md's Asterisk configuration, loaded into the real Asterisk 22 of a lab.

The blocks the guide marks `<!-- deploy-test: NAME -->` (modules, transports, the cells'
templates, both trunks, rtp.conf) become this lab's PJSIP configuration, with a certificate
made by openssl and the few site values (addresses, ports, key paths) replaced by the lab's:
every replacement must find its text, so a guide that changed shape fails here instead of
being tested half. Checked: no configuration error in Asterisk's log, both transports up, a
TLS handshake against the CA and a SIP answer over it, the cell endpoint (as `asterisk sync`
writes it) with SRTP required, the registration trunk registered with a SIPp registrar that
challenges and checks the digest, and the address-authenticated trunk after a PJSIP reload.
Then baresip calls as the cell, as a desk phone would: over TLS with its digest password,
answered with SRTP and G.722; without SRTP it is refused (488).

A lab of its own ("<CALLCONTROL_TEST_LAB>-doc", ports apart from the other labs), no daemon and
no database: only Asterisk's acceptance of the configuration is at stake here.
"""

from __future__ import annotations

import re
import shutil
import socket
import ssl
import subprocess
import time
import uuid
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from callcontrol.adapters.asterisk.pjsip_cells import CELLS_CONF, CellEndpoint
from callcontrol.adapters.asterisk.pjsip_cells import render as render_cells
from callcontrol.config import load_settings
from callcontrol.domain import sip_digest
from callcontrol_lab.lab import Lab
from tests.e2e.conftest import LAB_NAME

pytestmark = pytest.mark.e2e

DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
PORTS = {"udp": 5360, "tls": 5361, "ami": 5338, "agi": 4873, "registrar": 5370}
TRUNK_USER, TRUNK_PASSWORD = "441632960000", "PROVIDER-PASSWORD"
CELL, CELL_PASSWORD = "A1-01", "Handset-password-0001"
SERVER_NAME = "pbx.prison.example"


def block(name: str) -> str:
    """The fenced block after `<!-- deploy-test: NAME -->` in docs/deploy.md."""
    found = re.search(
        rf"<!-- deploy-test: {re.escape(name)} -->\n```[a-z]*\n(.*?)\n```", DOC.read_text(), re.S
    )
    assert found, f"docs/deploy.md has no deploy-test block {name!r}"
    return found.group(1) + "\n"


def replaced(text: str, changes: dict[str, str]) -> str:
    for old, new in changes.items():
        assert old in text, f"docs/deploy.md changed: {old!r} is no longer in its block"
        text = text.replace(old, new)
    return text


def site_values(keys: str) -> dict[str, dict[str, str]]:
    """What the lab puts in place of the guide's site values, per block."""
    registrar = f"127.0.0.1:{PORTS['registrar']}"
    return {
        "transports": {
            "0.0.0.0:5060": f"127.0.0.1:{PORTS['udp']}",
            "0.0.0.0:5061": f"127.0.0.1:{PORTS['tls']}",
            "/etc/asterisk/keys/": f"{keys}/",
            # The lab's phone network is the loopback: reached without NAT.
            "local_net = 10.20.0.0/16\n": "local_net = 10.20.0.0/16\nlocal_net = 127.0.0.0/8\n",
        },
        "trunk-register": {
            "sip:sip.provider.example": f"sip:{registrar}",
            "@sip.provider.example": f"@{registrar}",
            "from_domain = sip.provider.example": "from_domain = 127.0.0.1",
            "match = sip.provider.example": f"match = {registrar}",
        },
        "trunk-ip": {"sip:198.51.100.1:5060": f"sip:{registrar}"},
        "rtp": {"rtpstart = 20000": "rtpstart = 31000", "rtpend = 24999": "rtpend = 31999"},
    }


class DocLab(Lab):
    """A lab whose PJSIP, RTP and module configuration are the guide's."""

    trunk = "trunk-register"

    @property
    def keys(self) -> str:
        return f"{self.conf_dir}/keys"

    def render(self) -> None:
        super().render()
        conf = self.inside(self.conf_dir)
        values = site_values(self.keys)
        parts = ["[global]\ntype = global\nendpoint_identifier_order = ip,username\n"]
        for name in ("transports", "cells", self.trunk):
            parts.append(replaced(block(name), values.get(name, {})))
        parts.append(f"#include {CELLS_CONF}\n")
        (conf / "pjsip.conf").write_text("\n".join(parts))
        # One cell, exactly as `callcontrol asterisk sync` writes it.
        cred = sip_digest.md5_cred(CELL, sip_digest.REALM, CELL_PASSWORD)
        cells = render_cells([CellEndpoint(CELL, CELL, sip_digest.REALM, cred)])
        (conf / CELLS_CONF).write_text(cells)
        (conf / "rtp.conf").write_text(replaced(block("rtp"), values["rtp"]))
        modules = (conf / "modules.conf").read_text()
        loaded = set(modules.splitlines())
        wanted = [line for line in block("modules").splitlines() if line not in loaded]
        (conf / "modules.conf").write_text(modules + "\n".join(wanted) + "\n")

    def use_trunk(self, trunk: str) -> None:
        self.trunk = trunk
        self.render()
        self.rx("module reload res_pjsip.so")


def make_certificates(keys: Path, work: Path) -> Path:
    """A CA and a certificate for SERVER_NAME signed by it (openssl, as the guide does)."""
    keys.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=work)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=Test phones CA", "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={SERVER_NAME}",
            "-keyout", "asterisk.key", "-out", "asterisk.csr")  # fmt: skip
    (work / "san.ext").write_text(f"subjectAltName=DNS:{SERVER_NAME}\n")
    openssl("x509", "-req", "-in", "asterisk.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "san.ext",
            "-out", "asterisk.crt")  # fmt: skip
    for name in ("asterisk.crt", "asterisk.key"):
        shutil.copyfile(work / name, keys / name)
    return work / "ca.crt"


REGISTRAR = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="provider registrar: a digest challenge, then 200 only for the right password">
  <recv request="REGISTER" />
  <send><![CDATA[
SIP/2.0 401 Unauthorized
[last_Via:]
[last_From:]
[last_To:];tag=[pid]reg[call_number]
[last_Call-ID:]
[last_CSeq:]
WWW-Authenticate: Digest realm="provider.example", nonce="[pid]n[call_number]c7a1"
Content-Length: 0

]]></send>
  <recv request="REGISTER">
    <action>
      <verifyauth assign_to="authvalid" username="{TRUNK_USER}" password="{TRUNK_PASSWORD}" />
    </action>
  </recv>
  <nop hide="true" test="authvalid" next="good" />
  <send next="end"><![CDATA[
SIP/2.0 403 Forbidden
[last_Via:]
[last_From:]
[last_To:];tag=[pid]reg[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <label id="good" />
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]reg[call_number]
[last_Call-ID:]
[last_CSeq:]
[last_Contact:];expires=3600
Expires: 3600
Content-Length: 0

]]></send>
  <label id="end" />
</scenario>
"""


class Doc:
    def __init__(self, lab: DocLab, ca: Path, log: Path, offset: int) -> None:
        self.lab, self.ca, self.log, self.offset = lab, ca, log, offset

    def log_since_start(self) -> str:
        with open(self.log, "rb") as f:
            f.seek(self.offset)
            return f.read().decode(errors="replace")


def _settings(base: Path) -> Path:
    config = base / "callcontrol.toml"
    config.write_text(f"""
base_dir = "{base}"
[lab]
name = "{LAB_NAME}-doc"
enabled = true
[agi]
port = {PORTS["agi"]}
[ami]
port = {PORTS["ami"]}
[asterisk]
pjsip_port = {PORTS["udp"]}
pstn_port = {PORTS["registrar"]}
officers_port = 5390
rtp_start = 31000
rtp_end = 31999
""")
    return config


@pytest.fixture(scope="module")
def doc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Doc]:
    base = tmp_path_factory.mktemp("deploy-doc")
    lab = DocLab(load_settings(_settings(base)))
    lab.down()
    lab.ensure_root()
    ca = make_certificates(lab.inside(lab.keys), base)
    scenario = lab.inside(lab.run_dir) / f"registrar-{uuid.uuid4().hex}.xml"
    scenario.parent.mkdir(parents=True, exist_ok=True)
    scenario.write_text(REGISTRAR)
    registrar = subprocess.Popen(
        ["chroot", str(lab.root), "sipp", "-sf", f"{lab.run_dir}/{scenario.name}",
         "-i", "127.0.0.1", "-p", str(PORTS["registrar"]), "-m", "1", "-nostdin",
         "-trace_err", "-error_file", f"{lab.run_dir}/registrar-errors.log"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    log = lab.inside(lab.log_dir) / "messages.log"
    offset = log.stat().st_size if log.exists() else 0
    try:
        lab.up()
        yield Doc(lab, ca, log, offset)
    finally:
        lab.down()
        if registrar.poll() is None:
            registrar.kill()
        registrar.wait()
        scenario.unlink(missing_ok=True)


def wait_for(check: object, what: str, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        last = check()  # type: ignore[operator]
        if last:
            return str(last)
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


def test_asterisk_takes_the_guides_configuration_without_an_error(doc: Doc) -> None:
    transports = doc.lab.rx("pjsip show transports")
    assert re.search(r"transport-tls\s+tls\s+\d+\s+\d+\s+127\.0\.0\.1:5361", transports)
    assert re.search(r"transport-udp\s+udp\s+\d+\s+\d+\s+127\.0\.0\.1:5360", transports)
    loaded = doc.lab.rx("module show")
    for line in block("modules").splitlines():  # every module the guide loads is running
        name = line.split("=>")[1].strip()
        assert re.search(rf"^{re.escape(name)}\s.*\sRunning\s", loaded, re.M), name
    rtp = doc.lab.rx("rtp show settings")
    assert re.search(r"Port start:\s+31000", rtp) and re.search(r"Strict RTP:\s+Yes", rtp)
    errors = [line for line in doc.log_since_start().splitlines() if " ERROR[" in line]
    assert errors == []


def test_the_cell_endpoint_requires_tls_and_srtp_with_the_three_codecs(doc: Doc) -> None:
    shown = doc.lab.rx(f"pjsip show endpoint {CELL}")
    fields = dict(
        (m.group(1), m.group(2).strip())
        for m in re.finditer(r"^[ \t]*([a-z_]+)[ \t]+:[ \t]*(.*)$", shown, re.M)
    )
    assert fields["transport"] == "transport-tls", shown
    assert fields.get("media_encryption") == "sdes", shown
    assert fields["media_encryption_optimistic"] == "false"
    assert fields["allow"] == "(g722|alaw|ulaw)"
    assert fields["allow_transfer"] == "false"
    assert fields["context"] == "cells"


def test_a_phone_can_speak_sip_over_tls_to_the_certified_name(doc: Doc) -> None:
    context = ssl.create_default_context(cafile=str(doc.ca))  # checks the name too
    with socket.create_connection(("127.0.0.1", PORTS["tls"]), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=SERVER_NAME) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            local = "{}:{}".format(*tls.getsockname())
            branch, tag, call_id = (uuid.uuid4().hex for _ in range(3))
            options = (
                f"OPTIONS sip:{SERVER_NAME} SIP/2.0\r\n"
                f"Via: SIP/2.0/TLS {local};branch=z9hG4bK{branch};rport\r\n"
                "Max-Forwards: 70\r\n"
                f"From: <sip:{CELL}@{SERVER_NAME}>;tag={tag}\r\n"
                f"To: <sip:{SERVER_NAME}>\r\n"
                f"Call-ID: {call_id}\r\n"
                "CSeq: 1 OPTIONS\r\n"
                f"Contact: <sip:{CELL}@{local};transport=tls>\r\n"
                "Content-Length: 0\r\n\r\n"
            )
            tls.sendall(options.encode())
            answer = tls.recv(4096).decode(errors="replace")
    assert re.match(r"SIP/2\.0 (200|401|404) ", answer), answer[:200]
    assert call_id in answer


def test_the_trunk_registers_with_its_digest(doc: Doc) -> None:
    def registered() -> bool:
        return "Registered" in doc.lab.rx("pjsip show registrations")

    wait_for(registered, "the pstn registration")
    shown = doc.lab.rx("pjsip show registrations")
    assert re.search(rf"pstn-registration/sip:127\.0\.0\.1:{PORTS['registrar']}\s+pstn-auth", shown)


def test_the_address_authenticated_trunk_loads_in_its_place(doc: Doc) -> None:
    doc.lab.use_trunk("trunk-ip")
    shown = doc.lab.rx("pjsip show endpoint pstn")
    assert "198.51.100.0/28" in shown  # the identify: only the provider's addresses
    assert f"sip:127.0.0.1:{PORTS['registrar']}" in shown  # the aor's contact
    assert "pstn-auth" not in shown
    errors = [line for line in doc.log_since_start().splitlines() if " ERROR[" in line]
    assert errors == []


# --- a call as a desk phone makes it: TLS, digest, SRTP (baresip, Debian's softphone) ----------


BARESIP_CONFIG = """\
module_path /usr/lib/baresip/modules
sip_listen 127.0.0.1:5400
sip_cafile {ca}
net_interface 127.0.0.1
rtp_ports 32000-32999
audio_player alsa,null
audio_alert alsa,null
audio_source aufile,{wav}
module g711.so
module g722.so
module aufile.so
module alsa.so
module srtp.so
module_app account.so
module_app menu.so
"""


def phone_call(doc: Doc, tmp: Path, account_params: str) -> str:
    """Dial a number from the cell's handset with baresip; its output once it quit."""
    baresip = shutil.which("baresip")
    assert baresip, "baresip is missing: apt-get install baresip-core (scripts/system-deps.sh)"
    tmp.mkdir(exist_ok=True)
    wav = tmp / "silence.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)  # baresip's aufile wants the codec's rate: G.722's
        w.writeframes(b"\0\0" * 16000 * 10)
    (tmp / "config").write_text(BARESIP_CONFIG.format(ca=doc.ca, wav=wav))
    server = f"127.0.0.1:{PORTS['tls']};transport=tls"
    (tmp / "accounts").write_text(
        f"<sip:{CELL}@{server}>;auth_pass={CELL_PASSWORD};regint=0{account_params}\n"
    )
    proc = subprocess.run(
        [baresip, "-f", str(tmp), "-e", f"/dial sip:02079460000@{server}", "-t", "4"],
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)


def test_a_softphone_call_over_tls_is_answered_with_srtp_and_g722(doc: Doc, tmp_path: Path) -> None:
    out = phone_call(doc, tmp_path / "srtp", ";mediaenc=srtp-mand;audio_codecs=G722/16000/1")
    assert "SRTP is Enabled (cryptosuite=AES_CM_128_HMAC_SHA1_80)" in out, out[-3000:]
    assert "Set audio encoder: G722 16000Hz" in out
    assert f"{CELL}@127.0.0.1: Call established" in out
    # RTP from Asterisk arrived and was decrypted (srtp-mand takes nothing in clear).
    assert "incoming rtp for 'audio' established" in out
    assert not re.search(r"srtp.*(fail|error)", out, re.I)
    answered = doc.log_since_start()
    assert "Executing [02079460000@cells:1]" in answered  # the cell's endpoint, its dialplan


def test_a_softphone_that_will_not_encrypt_is_refused(doc: Doc, tmp_path: Path) -> None:
    out = phone_call(doc, tmp_path / "clear", ";audio_codecs=PCMA")
    assert "session closed: 488 Not Acceptable Here" in out, out[-3000:]
    assert "Call established" not in out
