"""The arguments dialplan/cells.conf gives the cell-call and cell-refused routes, for fakes."""

from __future__ import annotations

import base64


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def agi_args(endpoint: str, dialled: str, call_id: str, uniqueid: str = "1.1") -> list[str]:
    """As [cc-decide] sends them: all but the unique id base64 (like ${BASE64_ENCODE(...)})."""
    channel = f"PJSIP/{endpoint}-00000001"
    return [b64(endpoint), b64(dialled), b64(call_id), uniqueid, b64(channel)]
