"""Shared test helpers: the engine-vs-reference comparison and small network builders."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import asyncsim as A
from asyncsim.reference import ReferenceEngine

settings.register_profile(
    "default",
    deadline=None,
    max_examples=int(os.environ.get("ASYNCSIM_HYPOTHESIS_EXAMPLES", "150")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.load_profile("default")


def global_ids(res: A.Result, sample: int) -> list[tuple[int, int, int, int]]:
    """Events of one sample as (timestep, step, global logical id, count)."""
    offsets = np.concatenate([[0], np.cumsum(res.population_sizes)])
    ev = res.events[sample]  # type: ignore[index]
    gid = offsets[ev["population"]] + ev["index"]
    return list(
        zip(
            ev["timestep"].tolist(),
            ev["step"].tolist(),
            gid.tolist(),
            ev["count"].tolist(),
            strict=True,
        )
    )


def assert_matches_reference(
    net: A.Network,
    frames: np.ndarray,
    *,
    policy: str,
    group_size,
    stop: str = "drain",
    input_mode: str = "prioritised",
    output_in_group: bool = False,
) -> A.Result:
    """Run the numba engine and the plain-Python reference on every sample of ``frames``
    and require identical spike sequences, counters and output potentials."""
    sim = A.Simulator(
        net,
        policy=policy,
        group_size=group_size,
        stop=stop,
        input_mode=input_mode,
        output_in_group=output_in_group,
        record_events=True,
        threads=1,
    )
    res = sim.run(frames)
    ref = ReferenceEngine(
        net,
        policy,
        group_size,
        stop=stop,
        queued_input=input_mode == "queued",
        output_in_group=output_in_group,
    )
    out = sim.compiled.pop_index(net.output)  # type: ignore[arg-type]
    a = int(sum(res.population_sizes[:out]))
    b = a + res.population_sizes[out]
    for s in range(frames.shape[0]):
        r = ref.run(frames[s])
        assert global_ids(res, s) == r.events, f"sample {s}: spike sequences differ"
        np.testing.assert_array_equal(res.spikes[s], np.array(r.spikes))
        np.testing.assert_array_equal(res.forward_steps[s], np.array(r.steps))
        np.testing.assert_array_equal(res.synops[s], np.array(r.synops))
        np.testing.assert_array_equal(res.input_synops[s], np.array(r.input_synops))
        np.testing.assert_array_equal(res.neuron_updates[s], np.array(r.updates))
        np.testing.assert_array_equal(res.latency_first[s], np.array(r.lat_first))
        np.testing.assert_array_equal(res.peak_queue[s], np.array(r.peak_queue))
        np.testing.assert_array_equal(res.output_potentials[s], np.array(r.potentials)[:, a:b])
    return res


def chain(sizes: list[int], n_in: int, weight: float = 1.0, **pop_kw) -> A.Network:
    """input(n_in) -> sizes[0] -> sizes[1] -> ... all-to-all with constant weight."""
    pops = [A.Population(f"l{i}", n, **pop_kw) for i, n in enumerate(sizes)]
    projs = []
    src, n_src = "input", n_in
    for i, n in enumerate(sizes):
        projs.append(A.Dense(f"p{i}", src, f"l{i}", np.full((n, n_src), weight)))
        src, n_src = f"l{i}", n
    return A.Network(n_in, pops, projs)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
