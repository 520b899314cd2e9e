"""Call recordings' audio: what Asterisk spooled (WAV, or MixMonitor's raw stereo) to Ogg Opus.

Why Opus in Ogg:

- made for speech at low bit rates (it is the codec of WebRTC and of most VoIP today);
- it keeps both channels: the prisoner on one, the called party on the other, so each can be
  heard (and transcribed) on its own;
- at 24 kb/s it is about 10 times smaller than the 8 kHz 16-bit stereo WAV (256 kb/s) that
  Asterisk writes, with no audible loss for telephone audio (G.711 is 300-3400 Hz already);
- it is open (RFC 6716, RFC 7845), free of royalties, and plays everywhere: ffmpeg, every
  browser, VLC, Audacity.

The file is written bit-exact (``-fflags +bitexact``: no random stream serial number, no
encoder version tag), so the same audio always gives the same bytes, hence the same SHA-256 and
the same file name in the store. Needs ffmpeg with libopus (Debian's has it).

Blocking (ffmpeg runs as a child process): call from a thread in async code.
"""

from __future__ import annotations

import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

with warnings.catch_warnings():  # pydub imports audioop, deprecated (but there) in 3.11 and 3.12
    warnings.simplefilter("ignore", DeprecationWarning)
    from pydub import AudioSegment
    from pydub.exceptions import CouldntDecodeError
    from pydub.utils import mediainfo_json

CODEC = "opus"
# What MixMonitor writes when told to (by the extension): raw signed 16-bit little-endian
# samples, no header; with its D option, two channels interleaved.
RAW_RATES = {".raw": 8000, ".sln": 8000, ".sln16": 16000, ".sln48": 48000}
RAW_CHANNELS = 2
BIT_EXACT = ["-fflags", "+bitexact", "-flags:a", "+bitexact"]


class AudioError(Exception):
    """The audio cannot be read: missing, empty or not audio ffmpeg understands."""


@dataclass(frozen=True)
class AudioInfo:
    duration_ms: int
    channels: int
    sample_rate: int  # of the audio recorded (an Opus file decodes at 48 kHz whatever it is)
    codec: str = CODEC


def load(path: Path) -> AudioSegment:
    """The audio of a spool file: WAV (or anything ffmpeg reads), or raw (by its extension)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise AudioError(f"{path} does not exist") from None
    if size == 0:
        raise AudioError(f"{path} is empty")
    rate = RAW_RATES.get(path.suffix.lower())
    if rate is not None:
        data = path.read_bytes()
        frame = 2 * RAW_CHANNELS
        data = data[: len(data) // frame * frame]  # a crash may leave half a frame
        if not data:
            raise AudioError(f"{path} holds no whole sample")
        return AudioSegment(data=data, sample_width=2, frame_rate=rate, channels=RAW_CHANNELS)
    try:
        segment = AudioSegment.from_file(path)
    except (CouldntDecodeError, IndexError, ValueError) as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        detail = lines[-1][-200:] if lines else type(e).__name__
        raise AudioError(f"{path} is not readable audio: {detail}") from None
    if len(segment) == 0:
        raise AudioError(f"{path} holds no audio")
    return segment


def compress(source: Path, out_path: Path, bitrate: int) -> AudioInfo:
    """Write ``source`` to ``out_path`` as Ogg Opus at ``bitrate`` bits per second, keeping its
    channels (stereo stays stereo); returns what the written file holds."""
    if bitrate < 6000 or bitrate > 510000:
        raise ValueError(f"Opus bit rate {bitrate} is out of range (6000 to 510000 b/s)")
    segment = load(source)
    segment.export(
        str(out_path),
        format="ogg",
        codec="libopus",
        bitrate=str(bitrate),
        parameters=BIT_EXACT,
    ).close()
    # What was written, read from its own headers (RFC 7845): no second process (ffprobe) per
    # recording, which cost as much CPU as the encoding itself; ffprobe only if they are odd.
    info = ogg_opus_info(out_path) or probe(out_path)
    if info.channels != segment.channels:
        raise AudioError(f"{out_path}: {info.channels} channels written, {segment.channels} read")
    return info


def _opus_head(path: Path) -> tuple[int, int] | None:
    """From the Ogg Opus identification header (RFC 7845): the samples (at 48 kHz) the decoder
    skips at the start, and the sample rate of the audio that was encoded."""
    with path.open("rb") as f:
        head = f.read(512)
    at = head.find(b"OpusHead")
    if at < 0 or len(head) < at + 16:
        return None
    pre_skip, rate = struct.unpack_from("<HI", head, at + 10)
    return int(pre_skip), int(rate)


def ogg_opus_info(path: Path) -> AudioInfo | None:
    """Duration, channels and input rate of an Ogg Opus file from its headers alone (RFC 7845:
    the OpusHead packet, and the granule position of the last page, in 48 kHz samples, less the
    pre-skip); None if it is not a well-formed Ogg Opus file."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(512)
            f.seek(max(0, size - 65536))
            tail = f.read()
    except OSError:
        return None
    at = head.find(b"OpusHead")
    if not head.startswith(b"OggS") or at < 0 or len(head) < at + 19:
        return None
    channels = head[at + 9]
    pre_skip, rate = struct.unpack_from("<HI", head, at + 10)
    last = tail.rfind(b"OggS")
    if last < 0 or len(tail) < last + 14 or tail[last + 4] != 0:  # stream structure version 0
        return None
    (granule,) = struct.unpack_from("<q", tail, last + 6)
    if granule < 0 or channels < 1:
        return None
    duration_ms = max(0, round((granule - pre_skip) / 48))
    return AudioInfo(duration_ms=duration_ms, channels=channels, sample_rate=rate or 48000)


def probe(path: Path) -> AudioInfo:
    """Duration, channels, sample rate and codec of an audio file (ffprobe)."""
    if not path.exists():
        raise AudioError(f"{path} does not exist")
    info = mediainfo_json(str(path))
    streams = [s for s in info.get("streams", []) if s.get("codec_type") == "audio"]
    if not streams:
        raise AudioError(f"{path} holds no audio stream")
    stream = streams[0]
    duration = stream.get("duration") or info.get("format", {}).get("duration")
    if duration is None:
        duration_ms = len(AudioSegment.from_file(path))
    else:
        duration_ms = round(float(duration) * 1000)
    codec = str(stream.get("codec_name", ""))
    rate = int(stream.get("sample_rate") or 0)
    opus = _opus_head(path) if codec == CODEC else None
    if opus is not None and duration is not None:
        pre_skip, input_rate = opus
        duration_ms = max(0, duration_ms - round(pre_skip / 48))
        rate = input_rate or rate
    return AudioInfo(
        duration_ms=duration_ms, channels=int(stream.get("channels") or 0), sample_rate=rate,
        codec=codec,
    )  # fmt: skip
