"""What breaks the FastAGI micro-benchmark: it could not be set up, or its run is broken."""

from __future__ import annotations

from collections.abc import Sequence


class BenchmarkError(Exception):
    """The benchmark could not be set up (bad database, bad arguments)."""


class BrokenBenchmark(BenchmarkError):
    """A call was not allowed, an AGI conversation failed, or the database disagrees with what
    the benchmark did: the figures would be meaningless, so there are none."""

    def __init__(
        self, message: str, outcomes: dict[str, int], examples: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.outcomes = dict(outcomes)
        self.examples = list(examples)
