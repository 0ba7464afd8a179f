"""asyncsim: run trained spiking neural networks spike by spike, without layer barriers.

Quick start::

    import asyncsim as asim
    net = asim.Network(input_shape=4, populations=[...], projections=[...])
    res = asim.Simulator(net, policy="momentum", group_size=1).run(frames, labels)
    print(res.summary())

See ``docs/semantics.md`` for exactly what is simulated.
"""

from __future__ import annotations

from .compile import CompiledNetwork, compile_network
from .errors import AsyncsimError
from .io import load, load_inputs, save
from .network import (
    INPUT,
    Conv2d,
    Dense,
    Network,
    OneToOne,
    Population,
    Projection,
    Sparse,
    beta_from_tau,
    conv1d,
    pool2d,
)
from .policies import Policy, StopRule
from .result import Result
from .simulator import Simulator

__version__ = "0.1.0"

__all__ = [
    "INPUT",
    "AsyncsimError",
    "CompiledNetwork",
    "Conv2d",
    "Dense",
    "Network",
    "OneToOne",
    "Policy",
    "Population",
    "Projection",
    "Result",
    "Simulator",
    "Sparse",
    "StopRule",
    "beta_from_tau",
    "compile_network",
    "conv1d",
    "load",
    "load_inputs",
    "pool2d",
    "save",
]
