""":class:`~asyncsim.Network` -> NIR graph.

The NIR content follows the snnTorch / generic Euler convention at ``dt`` (default the
network's recorded dt, else 1e-4 s): ``tau = dt / (1 - beta)``, ``r = tau / dt`` (unit input
gain), ``v_leak = bias / (1 - beta)``; CubaLIF ``tau_syn = dt / (1 - alpha)``,
``w_in = tau_syn / dt``; ``beta = 1`` gives ``IF`` (``r = 1/dt``); ``threshold = inf`` gives
``LI`` / ``I`` / ``CubaLI``. Projections: Dense -> ``Linear``, Sparse -> ``Linear`` (dense
matrix), OneToOne -> ``Scale``, Conv2d/pooling -> ``Conv2d``, ``delay > 0`` -> a ``Delay``
node after the operator.

NIR cannot express everything asyncsim simulates (reset mode, delayed reset, '>=',
multi-spike, v_init, per-neuron biases of IF neurons, sparse synapse lists), so every node
also carries its exact asyncsim parameters in ``metadata["asyncsim"]``, and the graph
metadata says ``format = "asyncsim-nir"``. :func:`asyncsim.load` uses them, so
Network -> .nir -> Network reproduces the simulation exactly; other tools see the
closest standard NIR.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from .._files import jsonable
from ..errors import AsyncsimError
from ..network import INPUT, Conv2d, Dense, Network, OneToOne, Population, Sparse
from .nir_import import ASYNCSIM_NIR_FORMAT


def _neuron_node(nir: Any, pop: Population, dt: float) -> Any:
    shape = tuple(pop.shape)  # type: ignore[arg-type]
    beta = np.asarray(pop.beta, dtype=np.float64)
    thr = np.asarray(pop.threshold, dtype=np.float64)
    leaky = beta < 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = np.where(leaky, dt / (1.0 - beta), np.inf)
        r = np.where(leaky, tau / dt, 1.0)
        v_leak = np.where(leaky, np.asarray(pop.bias) / (1.0 - beta), 0.0)
    exact: dict[str, Any] = {
        "shape": np.asarray(shape, dtype=np.int64),
        "threshold": thr,
        "beta": beta,
        "v_reset": np.asarray(pop.v_reset, dtype=np.float64),
        "bias": np.asarray(pop.bias, dtype=np.float64),
        "v_init": np.asarray(pop.v_init, dtype=np.float64),
        "reset": pop.reset,
        "threshold_op": pop.threshold_op,
        "reset_delay": np.array([pop.reset_delay]),
        "refractory": np.array([pop.refractory]),
        "refractory_dropout": np.array([pop.refractory_dropout], dtype=np.float64),
        "syn_immediate": np.array([pop.syn_immediate]),
        "multi_spike": np.array([pop.multi_spike]),
    }
    meta: dict[str, Any] = {"asyncsim": exact}
    if pop.metadata:
        meta["asyncsim_metadata"] = json.dumps(jsonable(pop.metadata))
    spiking = bool(np.isfinite(thr).any())
    v_reset = np.asarray(pop.v_reset, dtype=np.float64)
    if pop.alpha is not None:
        alpha = np.asarray(pop.alpha, dtype=np.float64)
        exact["alpha"] = alpha
        exact["syn_gain"] = np.asarray(pop.syn_gain, dtype=np.float64)
        exact["syn_bias"] = np.asarray(getattr(pop, "syn_bias", 0.0), dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            tau_syn = np.where(alpha < 1.0, dt / (1.0 - alpha), np.inf)
            w_in = np.where(alpha < 1.0, tau_syn / dt, 1.0)
        common = dict(tau_syn=tau_syn, tau_mem=tau, r=r, v_leak=v_leak, w_in=w_in)
        if spiking:
            return nir.CubaLIF(**common, v_threshold=thr, v_reset=v_reset, metadata=meta)
        return nir.CubaLI(**common, metadata=meta)
    if not leaky.any():
        if spiking:
            return nir.IF(
                r=np.full(shape, 1.0 / dt), v_threshold=thr, v_reset=v_reset, metadata=meta
            )
        return nir.I(r=np.full(shape, 1.0 / dt), metadata=meta)
    if spiking:
        return nir.LIF(tau=tau, r=r, v_leak=v_leak, v_threshold=thr, v_reset=v_reset, metadata=meta)
    return nir.LI(tau=tau, r=r, v_leak=v_leak, metadata=meta)


def to_nir(network: Network, *, dt: float | None = None) -> Any:
    """Build a ``nir.NIRGraph`` for ``network`` (see the module docstring)."""
    import nir

    if not isinstance(network, Network):
        raise AsyncsimError(f"save needs an asyncsim Network, got {type(network).__name__}")
    if dt is None:
        dt = network.metadata.get("dt", 1e-4) if isinstance(network.metadata, dict) else 1e-4
    try:
        dt = float(dt)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise AsyncsimError(f"dt = {dt!r} must be a number (seconds per timestep)") from None
    if not np.isfinite(dt) or dt <= 0:
        raise AsyncsimError(f"dt = {dt!r} must be a finite number > 0")
    pops = {p.name: p for p in network.populations}
    input_shape = tuple(network.input_shape)  # type: ignore[arg-type]
    taken = {INPUT, "output", *pops}
    nodes: dict[str, Any] = {INPUT: nir.Input(input_type={"input": np.asarray(input_shape)})}
    edges: list[tuple[str, str]] = []
    for p in network.populations:
        nodes[p.name] = _neuron_node(nir, p, dt)

    def fresh(base: str) -> str:
        name, k = base, 2
        while name in taken or name in nodes:
            name = f"{base}_{k}"
            k += 1
        taken.add(name)
        return name

    for pr in network.projections:
        tgt = pops[pr.target]
        src_shape = network.source_shape(pr.source)
        n_src = int(np.prod(src_shape))
        exact: dict[str, Any] = {"name": pr.name}
        if isinstance(pr, Dense):
            op = nir.Linear(weight=np.asarray(pr.weight, dtype=np.float64))
            exact["projection"] = "Dense"
        elif isinstance(pr, Sparse):
            w = np.zeros((tgt.size, n_src))
            np.add.at(w, (pr.target_index, pr.source_index), pr.weight)
            op = nir.Linear(weight=w)
            exact.update(
                projection="Sparse",
                source_index=np.asarray(pr.source_index, dtype=np.int64),
                target_index=np.asarray(pr.target_index, dtype=np.int64),
                weight=np.asarray(pr.weight, dtype=np.float64),
            )
            if pr.weight.size == 0:  # h5py cannot compress empty datasets reliably
                exact.pop("source_index")
                exact.pop("target_index")
                exact.pop("weight")
                exact["projection"] = "Dense"
        elif isinstance(pr, OneToOne):
            scale = np.broadcast_to(np.asarray(pr.weight, dtype=np.float64).ravel(), (n_src,))
            op = nir.Scale(scale=np.array(scale).reshape(src_shape))
            exact["projection"] = "OneToOne"
        elif isinstance(pr, Conv2d):
            c_out = pr.weight.shape[0]
            op = nir.Conv2d(
                input_shape=tuple(int(s) for s in src_shape[1:]),
                weight=np.asarray(pr.weight, dtype=np.float64),
                stride=tuple(pr.stride),
                padding=pr.padding if isinstance(pr.padding, str) else tuple(pr.padding),
                dilation=tuple(pr.dilation),
                groups=int(pr.groups),
                bias=np.zeros(c_out),
            )
            exact["projection"] = "Conv2d"
        else:  # pragma: no cover - Network only admits the types above
            raise AsyncsimError(f"projection {pr.name!r}: cannot export {type(pr).__name__}")
        op.metadata = {"asyncsim": exact}
        name = fresh(pr.name)
        nodes[name] = op
        edges.append((pr.source, name))
        last = name
        if pr.delay:
            dname = fresh(f"{pr.name}.delay")
            nodes[dname] = nir.Delay(delay=np.full(tuple(tgt.shape), pr.delay * dt))  # type: ignore[arg-type]
            edges.append((name, dname))
            last = dname
        edges.append((last, pr.target))
    out = pops[network.output]  # type: ignore[index]
    nodes["output"] = nir.Output(output_type={"output": np.asarray(out.shape)})
    edges.append((out.name, "output"))
    metadata = {
        "format": ASYNCSIM_NIR_FORMAT,
        "format_version": 1,
        "dt": dt,
        "name": network.name,
        "output": str(network.output),
        "readout": str(network.readout),
        "asyncsim_network": json.dumps(jsonable(network.metadata)),
    }
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=False)
