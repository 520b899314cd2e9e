"""The recording worker's place on the machine: idle priority, and the CPU it spent.

``lower_to_idle`` puts the calling thread (call it before any other thread starts: threads and
child processes inherit it) under SCHED_IDLE, which runs only when nothing else wants the CPU;
where that is refused, niceness 19. Linux gives a SCHED_IDLE process the idle I/O class too
(unless set otherwise), so its disk reads and writes also wait for everyone else's.
"""

from __future__ import annotations

import os
import resource


def lower_to_idle() -> str:
    """Lower this process to idle priority; returns what it got ("SCHED_IDLE", "nice 19")."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        return "SCHED_IDLE"
    except (AttributeError, OSError):
        pass
    try:
        os.nice(19 - os.nice(0))
    except OSError:
        return f"nice {os.nice(0)}"
    return "nice 19"


def cpu_seconds() -> float:
    """User and system CPU seconds of this process and of its children that have ended."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
