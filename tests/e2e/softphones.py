"""A real softphone as a cell handset: Debian's baresip, headless (LAB-NOTES, "Real softphones").

Its audio source is a WAV file (module aufile: a 1 kHz tone for the whole call), its speaker
ALSA's null device; it is driven over its ctrl_tcp module (JSON in netstrings: commands such as
``dial``, ``sndcode`` for RFC 2833 digits, ``transfer``, ``hangup``; events such as
CALL_ESTABLISHED). baresip listens to its newest control connection only, so there is one.
The account (with the cell's password) is in a file of the run's folder, never on a command line.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
import wave
from pathlib import Path

BARESIP = shutil.which("baresip")


def tone_wav(path: Path, seconds: int = 40, freq: float = 1000.0, rate: int = 8000) -> Path:
    """A mono 16-bit WAV of a sine tone, the handset's voice."""
    one = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / rate))) for i in range(rate)
    )
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(one * seconds)
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Baresip:
    """One baresip process as the handset of ``cell``; ``codecs`` as baresip names them
    (PCMU, PCMA, G722); ``register``: REGISTER every 60 s, else never."""

    def __init__(
        self,
        folder: Path,
        cell: str,
        password: str,
        asterisk_port: int,
        *,
        codecs: str = "PCMU",
        register: bool = False,
        rtp_ports: str = "31000-31999",
    ) -> None:
        self.folder = folder
        self.cell = cell
        self.asterisk = f"127.0.0.1:{asterisk_port}"
        self.events: list[dict[str, object]] = []
        self._responses: list[dict[str, object]] = []
        self._lock = threading.Condition()
        folder.mkdir(parents=True, exist_ok=True)
        sip_port, self.ctrl_port = _free_port(), _free_port()
        wav = tone_wav(folder / "voice.wav")
        (folder / "config").write_text(
            "\n".join(
                [
                    "poll_method epoll",
                    "net_interface 127.0.0.1",  # loopback only (a bare netns has no other)
                    f"sip_listen 127.0.0.1:{sip_port}",
                    "sip_trans_def udp",
                    f"audio_source aufile,{wav}",
                    "audio_player alsa,null",
                    "audio_alert alsa,null",
                    "ausrc_srate 8000",
                    "auplay_srate 8000",
                    f"rtp_ports {rtp_ports}",
                    "module_path /usr/lib/baresip/modules",
                    "module g711.so",
                    "module g722.so",
                    "module aufile.so",
                    "module alsa.so",
                    "module_app account.so",
                    "module_app menu.so",
                    "module_app ctrl_tcp.so",
                    f"ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}",
                    "",
                ]
            )
        )
        regint = 60 if register else 0
        account = (
            f"<sip:{cell}@{self.asterisk}>;auth_user={cell};auth_pass={password};"
            f"regint={regint};audio_codecs={codecs}\n"
        )
        accounts = folder / "accounts"
        accounts.write_text(account)
        accounts.chmod(0o600)
        (folder / "contacts").write_text("")
        self.log = folder / "baresip.log"
        assert BARESIP, "baresip is not installed (scripts/system-deps.sh)"
        self.proc = subprocess.Popen(
            [BARESIP, "-f", str(folder)],
            stdin=subprocess.DEVNULL,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.sock = self._connect()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _connect(self) -> socket.socket:
        deadline = time.monotonic() + 10
        while True:
            try:
                return socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=1)
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"baresip did not start: {self.log.read_text()}") from None
                time.sleep(0.05)

    def _read(self) -> None:
        buf = b""
        self.sock.settimeout(None)
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            while b":" in buf:
                size, _, rest = buf.partition(b":")
                n = int(size)
                if len(rest) < n + 1:
                    break
                message = json.loads(rest[:n])
                buf = rest[n + 1 :]
                with self._lock:
                    if message.get("event"):
                        self.events.append(message)
                    else:
                        self._responses.append(message)
                    self._lock.notify_all()

    def command(self, name: str, params: str = "") -> dict[str, object]:
        """Run a menu command; its response."""
        body = json.dumps({"command": name, "params": params, "token": name}).encode()
        with self._lock:
            self._responses.clear()
        self.sock.sendall(str(len(body)).encode() + b":" + body + b",")
        with self._lock:
            if not self._lock.wait_for(lambda: self._responses, timeout=10):
                raise TimeoutError(f"baresip did not answer {name}")
            return self._responses.pop(0)

    def wait_event(self, kind: str, timeout: float = 15.0) -> dict[str, object]:
        """The first event of this type (e.g. CALL_ESTABLISHED, CALL_CLOSED, REGISTER_OK)."""
        with self._lock:
            found = self._lock.wait_for(
                lambda: [e for e in self.events if e.get("type") == kind], timeout=timeout
            )
            if not found:
                seen = [e.get("type") for e in self.events]
                raise TimeoutError(f"no {kind} within {timeout} s (events: {seen})")
            return found[0]

    @property
    def call_id(self) -> str:
        """The SIP Call-ID of the call (from its events)."""
        with self._lock:
            ids = [str(e["id"]) for e in self.events if e.get("id")]
        assert ids, "no call yet"
        return ids[-1]

    def seen(self, kind: str) -> bool:
        with self._lock:
            return any(e.get("type") == kind for e in self.events)

    def dial(self, number: str) -> None:
        self.command("dial", f"sip:{number}@{self.asterisk}")

    def keys(self, digits: str, gap_s: float = 0.25) -> None:
        """Key ``digits`` as RFC 2833 events, one at a time (baresip's sndcode)."""
        for digit in digits:
            self.command("sndcode", digit)
            time.sleep(gap_s)

    def close(self) -> None:
        try:
            self.sock.close()
        finally:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()


LINPHONEC = shutil.which("linphonec")


class Linphone:
    """linphonec (Debian's linphone-cli) as the handset of ``cell``, keying DTMF as SIP INFO.

    Driven through its standard input, one command a line (``call URI``, a digit, ``terminate``):
    it reads about one line a second and sends one INFO at a time, each after the last one's
    answer, so digits are keyed slowly. It binds no SIP port unless $HOME/.local/share/linphone
    exists (LAB-NOTES), so its HOME is the run's folder. The password is in its config file."""

    def __init__(self, folder: Path, cell: str, password: str, asterisk_port: int) -> None:
        (folder / ".local" / "share" / "linphone").mkdir(parents=True, exist_ok=True)
        self.asterisk = f"127.0.0.1:{asterisk_port}"
        rc = folder / "linphonerc"
        rc.write_text(
            "[sip]\n"
            f"sip_port={_free_port()}\nsip_tcp_port=0\nsip_tls_port=0\n"
            "use_info=1\nuse_rfc2833=0\ndefault_proxy=0\n"
            "[rtp]\naudio_rtp_port=33000-33999\n"
            f"[proxy_0]\nreg_proxy=<sip:{self.asterisk}>\nreg_identity=sip:{cell}@127.0.0.1\n"
            "reg_sendregister=0\n"
            f"[auth_info_0]\nusername={cell}\npasswd={password}\ndomain=127.0.0.1\n"
        )
        rc.chmod(0o600)
        self.log = folder / "linphonec.log"
        assert LINPHONEC, "linphonec is not installed (scripts/system-deps.sh)"
        self.proc = subprocess.Popen(
            [LINPHONEC, "-d", "5", "-l", str(folder / "sip.log"), "-c", str(rc)],
            stdin=subprocess.PIPE,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            env={**os.environ, "HOME": str(folder)},
        )
        self.sip_log = folder / "sip.log"
        self.command("soundcard use files")  # no sound card here: WAV files

    def command(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def dial(self, number: str) -> None:
        self.command(f"call sip:{number}@{self.asterisk}")

    def keys(self, digits: str, gap_s: float = 1.5) -> None:
        for digit in digits:
            self.command(digit)
            time.sleep(gap_s)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.command("terminate")
            self.command("quit")
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
