"""Finding SIPp, staging its files, and building its command lines.

SIPp 3.6 or newer on the PATH is used as it is. Otherwise the lab's Debian root (the
``[lab] root`` setting, where ``callcontrol_lab`` installs Asterisk 22 and SIPp 3.8) provides it
as ``chroot ROOT sipp``. A chrooted SIPp sees only files inside the root, and ``chroot`` starts it
in ``/``, so every run gets its own folder under ``ROOT/tmp`` holding the scenarios (with the
audio paths made absolute), the audio, the injection file and the logs; ``RunDir`` gives each file
both as the host sees it and as SIPp sees it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from callcontrol.config import Settings, load_settings

SIM_DIR = Path(__file__).resolve().parent / "data"
MIN_VERSION = (3, 6)

_VERSION_RE = re.compile(r"SIPp v(\d+)\.(\d+)")
# The scenarios name their audio relative to sim/ ("audio/handset-1000hz.ulaw").
_RTP_STREAM_RE = re.compile(r'rtp_stream="audio/([^",]+)')


class SimError(Exception):
    """The simulator itself cannot work (no SIPp, a port in use, a SIPp that died...)."""


def sipp_version(prefix: Sequence[str]) -> tuple[int, int] | None:
    """The (major, minor) version that ``PREFIX -v`` reports, or None."""
    try:
        proc = subprocess.run(
            [*prefix, "-v"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    m = _VERSION_RE.search(proc.stdout + proc.stderr)
    return (int(m.group(1)), int(m.group(2))) if m else None


def lab_root(settings: Settings | None = None) -> Path:
    settings = settings or load_settings()
    return settings.path(settings.lab.root)


def find_sipp(settings: Settings | None = None) -> list[str]:
    """The command prefix that runs SIPp: ``[sipp]`` or ``[chroot, ROOT, sipp]``.

    ``sipp`` on the PATH when it is 3.6 or newer, else the one in the lab's root. SimError when
    there is neither.
    """
    exe = shutil.which("sipp")
    if exe:
        version = sipp_version([exe])
        if version is not None and version >= MIN_VERSION:
            return [exe]
    root = lab_root(settings)
    if (root / "usr" / "bin" / "sipp").exists():
        return ["chroot", str(root), "sipp"]
    found = f"sipp on the PATH is too old or unusable ({exe}); " if exe else ""
    raise SimError(
        f"{found}no SIPp {MIN_VERSION[0]}.{MIN_VERSION[1]}+ found: install sip-tester or build "
        f"the lab root ({root}) with lab/callcontrol_lab/build-root.sh"
    )


def chroot_of(prefix: Sequence[str]) -> Path | None:
    """The root folder when ``prefix`` runs SIPp through chroot, else None."""
    if len(prefix) >= 3 and Path(prefix[0]).name == "chroot":
        return Path(prefix[1])
    return None


@dataclass
class RunDir:
    """A folder for one run's files; ``inner`` is the same folder as SIPp sees it."""

    host: Path
    inner: Path

    @classmethod
    def create(cls, prefix: Sequence[str], name: str = "callcontrol-sim-") -> RunDir:
        root = chroot_of(prefix)
        if root is None:
            host = Path(tempfile.mkdtemp(prefix=name))
            return cls(host, host)
        tmp = root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        host = Path(tempfile.mkdtemp(prefix=name, dir=tmp))
        return cls(host, Path("/") / host.relative_to(root))

    def h(self, name: str) -> Path:
        """A file of the run as the host sees it."""
        return self.host / name

    def s(self, name: str) -> str:
        """A file of the run as SIPp sees it."""
        return str(self.inner / name)

    def remove(self) -> None:
        shutil.rmtree(self.host, ignore_errors=True)


def stage_scenario(run: RunDir, scenario: str, sim_dir: Path = SIM_DIR) -> str:
    """Copy ``sim/scenarios/SCENARIO`` and its audio into the run; SIPp's path of the copy.

    The audio paths in the scenario (``rtp_stream="audio/..."``) become absolute, because SIPp
    opens them relative to its working folder, which is ``/`` under chroot.
    """
    source = sim_dir / "scenarios" / scenario
    try:
        text = source.read_text(encoding="iso-8859-1")
    except OSError as e:
        raise SimError(f"cannot read scenario {source}: {e.strerror}") from None
    for audio in sorted(set(_RTP_STREAM_RE.findall(text))):
        src = sim_dir / "audio" / audio
        if not src.exists():
            raise SimError(f"audio file {src} (used by {scenario}) is missing")
        shutil.copyfile(src, run.h(audio))
    text = _RTP_STREAM_RE.sub(lambda m: f'rtp_stream="{run.s(m.group(1))}', text)
    run.h(scenario).write_text(text, encoding="iso-8859-1")
    return run.s(scenario)


def _trace_options(run: RunDir, stem: str) -> list[str]:
    return [
        "-trace_logs", "-log_file", run.s(f"{stem}_logs.log"),
        "-trace_msg", "-message_file", run.s(f"{stem}_messages.log"),
        "-trace_err", "-error_file", run.s(f"{stem}_errors.log"),
        "-trace_screen", "-screen_file", run.s(f"{stem}_screen.log"),
    ]  # fmt: skip


def called_party_command(
    prefix: Sequence[str],
    run: RunDir,
    scenario: str,
    *,
    ip: str,
    port: int,
    media_port: int,
    mode: str,
    ring_ms: int = 0,
    hangup_ms: int = 0,
    accept_ms: int = 1500,
    accept_digit: str = "1",
    decline_digit: str = "2",
    dtmf_ms: int = 200,
    calls: int = 1,
) -> list[str]:
    """The called party's SIPp (UAS): ``calls`` calls, then it exits (0: run until stopped).

    Every -key of called_party.xml is given (SIPp refuses a scenario whose keyword is not):
    ``accept_ms``, the digits and ``dtmf_ms`` only matter in the accept and decline modes.
    """
    cmd = [
        *prefix,
        "-sf", scenario,
        "-i", ip, "-p", str(port),
        "-mi", ip, "-mp", str(media_port),
        "-nostdin", "-aa",
        "-key", "mode", mode,
        "-key", "ring_ms", str(ring_ms),
        "-key", "hangup_ms", str(hangup_ms),
        "-key", "accept_ms", str(accept_ms),
        "-key", "accept_digit", accept_digit,
        "-key", "decline_digit", decline_digit,
        "-key", "dtmf_ms", str(dtmf_ms),
        *_trace_options(run, "called_party"),
    ]  # fmt: skip
    if calls:
        cmd += ["-m", str(calls)]
    return cmd


def handset_command(
    prefix: Sequence[str],
    run: RunDir,
    scenario: str,
    injection: str,
    *,
    host: str,
    port: int,
    ip: str,
    local_port: int,
    media_port: int,
    call_id_prefix: str,
    calls: int = 1,
    extra: Iterable[str] = (),
) -> list[str]:
    """The handsets' SIPp (UAC): one call per injection line, ``calls`` in all.

    The Call-ID of call N is ``CALL_ID_PREFIX`` followed by N (SIPp's ``-cid_str PREFIX%u``).
    """
    return [
        *prefix,
        f"{host}:{port}",
        "-sf", scenario,
        "-inf", injection,
        "-i", ip, "-p", str(local_port),
        "-mi", ip, "-mp", str(media_port),
        "-m", str(calls),
        "-nostdin", "-aa",
        "-cid_str", f"{call_id_prefix}%u",
        *_trace_options(run, "handset"),
        *extra,
    ]  # fmt: skip
