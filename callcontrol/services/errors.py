"""The services' one hierarchy of errors: every operator's act and every supervision act
raises these, and each edge maps them once (the JSON API to 400/403/404/409/502, the CLI to
exit status 2 or 1, the console to a message on the page).

- NotFound: no such cell, prisoner, contact, call (or it has ended). API 404, CLI 2.
- Invalid: the request is wrong (a bad name, number, PIN, amount, ...). API 400, CLI 2.
  Conflict, a kind of Invalid: it clashes with what exists (already there, already approved).
- Refused: never allowed to this actor, whatever the input (an officer enabling a cell, a
  shared PIN, a top-up over the balance cap, listening to a privileged call). API 403, CLI 2.
- AsteriskUnavailable: not connected, nothing was sent. API 409, CLI 1.
- AsteriskActionLost: sent but unanswered, the outcome is unknown, never resent. API 502.
- AsteriskFailed: Asterisk answered with an error; ChannelGone: it has no such channel.

``str(e)`` is always a sentence for the person who asked, never a stack trace or a secret.
"""

from __future__ import annotations


class ServiceError(Exception):
    """A request that could not be done; ``str(e)`` says why, for the person who asked."""


class NotFound(ServiceError): ...


class Invalid(ServiceError): ...


class Conflict(Invalid):
    """The request clashes with what exists (a duplicate, an act already done)."""


class Refused(ServiceError): ...


class SharedPin(Refused):
    """The PIN is a cellmate's: a generated PIN is drawn again, a typed one refused."""


class AsteriskUnavailable(ServiceError): ...


class AsteriskActionLost(ServiceError): ...


class AsteriskFailed(ServiceError): ...


class ChannelGone(AsteriskFailed): ...
