"""Scheduling policies, stop rules and forward-group size: the run-time vocabulary.

A scheduling policy decides the order in which pending spikes are delivered. Each one is
a *sort key* over pending entries ``(key, seq)``, smallest first; ``seq`` is the arrival
number (spikes of one forward step arrive in order of global logical neuron id), so ties
always resolve the same way:

======== ====================================== ==========================================
policy   key of a pending spike                 notes
======== ====================================== ==========================================
fifo     0                                      pure arrival order (chronological chips)
momentum -(v_spike + jitter * u), u ~ U[0, 1)   highest potential at the spike goes first;
                                                spikes carried into a new timestep get
                                                v_spike = 0; queued inputs get -inf
random   none: each pick is uniform among       memoryless: redrawn at every delivery,
         all pending entries                    from the run's seeded generator
layered  none: populations in topological       the layer-synchronous (trainer) baseline
         order, each integrates all its
         currents before evaluating
======== ====================================== ==========================================

Adding a policy = one :class:`Policy` member, one branch in the kernel's key/pop code,
one row above, one paragraph in ``docs/semantics.md`` and one oracle test.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any

from .errors import AsyncsimError


class Policy(enum.IntEnum):
    """Scheduling policy (the kernel switches on the integer value)."""

    FIFO = 0
    MOMENTUM = 1
    RANDOM = 2
    LAYERED = 3

    @classmethod
    def parse(cls, value: Any) -> Policy:
        if isinstance(value, Policy):
            return value
        if isinstance(value, str):
            try:
                return cls[value.strip().upper()]
            except KeyError:
                pass
        names = ", ".join(p.name.lower() for p in cls)
        raise AsyncsimError(f"unknown policy {value!r}; choose one of: {names}")

    @property
    def label(self) -> str:
        return self.name.lower()


ASYNC_POLICIES = (Policy.FIFO, Policy.MOMENTUM, Policy.RANDOM)

STOP_DRAIN = 0
STOP_OUTPUT = 1
STOP_STEPS = 2

INF_GROUP = 2**62
"""Internal stand-in for F = infinity (deliver every pending spike at once)."""


@dataclass(frozen=True)
class StopRule:
    """When a timestep ends early.

    * ``drain``: process everything (reference "on spiking done");
    * ``output:k``: end the timestep k forward steps after its first output spike
      (``output`` = ``output:0``, reference "on output");
    * ``steps:n``: at most n forward steps per timestep (the injection step counts).

    Spikes still pending when a timestep ends early stay pending into the next timestep.
    """

    kind: int = STOP_DRAIN
    value: int = 0

    @classmethod
    def parse(cls, value: Any) -> StopRule:
        if isinstance(value, StopRule):
            return value
        if value is None:
            return cls()
        text = str(value).strip().lower()
        head, _, arg = text.partition(":")
        usage = "use 'drain', 'output', 'output:K' (K >= 0) or 'steps:N' (N >= 1)"
        if head == "drain" and not arg:
            return cls()
        if head in ("output", "steps"):
            if head == "output" and not arg:
                return cls(STOP_OUTPUT, 0)
            try:
                n = int(arg)
            except ValueError:
                raise AsyncsimError(
                    f"stop rule {value!r}: {arg!r} is not an integer; {usage}"
                ) from None
            if head == "output" and n >= 0:
                return cls(STOP_OUTPUT, n)
            if head == "steps" and n >= 1:
                return cls(STOP_STEPS, n)
            raise AsyncsimError(f"stop rule {value!r}: bound out of range; {usage}")
        raise AsyncsimError(f"unknown stop rule {value!r}; {usage}")

    def __str__(self) -> str:
        if self.kind == STOP_OUTPUT:
            return f"output:{self.value}"
        if self.kind == STOP_STEPS:
            return f"steps:{self.value}"
        return "drain"


def parse_group_size(value: Any) -> int:
    """Forward group size F: an integer >= 1, or ``inf`` / ``"inf"`` for unbounded."""
    if isinstance(value, str) and value.strip().lower() in ("inf", "infinity", "all"):
        return INF_GROUP
    if isinstance(value, float) and math.isinf(value) and value > 0:
        return INF_GROUP
    if isinstance(value, bool):
        raise AsyncsimError(f"group size F = {value!r} must be an integer >= 1 or 'inf'")
    try:
        f = int(value)
    except (TypeError, ValueError, OverflowError):
        raise AsyncsimError(f"group size F = {value!r} must be an integer >= 1 or 'inf'") from None
    if f != value and not (isinstance(value, str) and str(f) == value.strip()):
        raise AsyncsimError(f"group size F = {value!r} must be a whole number >= 1 or 'inf'")
    if f < 1:
        raise AsyncsimError(
            f"group size F = {value!r} must be >= 1 (spikes delivered per forward step); "
            "use 'inf' to deliver all pending spikes at once"
        )
    return min(f, INF_GROUP)


def format_group_size(f: int) -> str:
    return "inf" if f >= INF_GROUP else str(f)


INPUT_MODES = ("prioritised", "queued")


def parse_input_mode(value: Any) -> bool:
    """Return True for queued input. Accepts 'prioritised'/'prioritized'/'queued'."""
    text = str(value).strip().lower().replace("prioritized", "prioritised")
    if text not in INPUT_MODES:
        raise AsyncsimError(
            f"unknown input mode {value!r}; use 'prioritised' (all input events delivered "
            "at the start of the timestep) or 'queued' (inputs compete for the forward group)"
        )
    return text == "queued"
