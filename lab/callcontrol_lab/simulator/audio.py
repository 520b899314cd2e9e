"""Test audio for the simulated handsets and called parties: raw 8 kHz mu-law (G.711, payload 0).

SIPp's ``rtp_stream`` action plays a raw file of encoded samples (no header), 160 bytes per 20 ms
packet, looped. The files are pure tones so that a recording shows at once who was heard: 1 kHz for
the handset, 400 Hz for the called party. Both tones repeat exactly every 20 ms packet and the
files are whole packets long, so the loops are seamless.

Regenerate with
``python -m callcontrol_lab.simulator.audio lab/callcontrol_lab/simulator/data/audio``.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

SAMPLE_RATE = 8000
PACKET_BYTES = 160  # 20 ms of 8 kHz mu-law

# file name -> (frequency in Hz, seconds)
TONES = {
    "handset-1000hz.ulaw": (1000.0, 2.0),
    "called-party-400hz.ulaw": (400.0, 2.0),
}

_BIAS = 0x84
_CLIP = 32635


def linear_to_ulaw(sample: int) -> int:
    """One 16-bit signed linear sample to one G.711 mu-law byte (the ITU-T reference method)."""
    sign = 0x80 if sample < 0 else 0
    if sample < 0:
        sample = -sample
    sample = min(sample, _CLIP) + _BIAS
    exponent = 7
    mask = 0x4000
    while exponent > 0 and not sample & mask:
        exponent -= 1
        mask >>= 1
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def tone(frequency: float, seconds: float, amplitude: float = 0.3) -> bytes:
    """A sine tone as raw mu-law, rounded down to whole 20 ms packets."""
    n = int(seconds * SAMPLE_RATE) // PACKET_BYTES * PACKET_BYTES
    peak = amplitude * 32767
    return bytes(
        linear_to_ulaw(round(peak * math.sin(2 * math.pi * frequency * i / SAMPLE_RATE)))
        for i in range(n)
    )


def write_all(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (frequency, seconds) in TONES.items():
        path = folder / name
        path.write_bytes(tone(frequency, seconds))
        written.append(path)
    return written


if __name__ == "__main__":  # pragma: no cover
    for p in write_all(
        Path(sys.argv[1] if len(sys.argv) > 1 else "lab/callcontrol_lab/simulator/data/audio")
    ):
        print(p, p.stat().st_size)
