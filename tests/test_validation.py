"""Bad input gets an AsyncsimError whose message names the value, the rule and the fix."""

from __future__ import annotations

import numpy as np
import pytest

import asyncsim as A


def small_net(**pop_kw) -> A.Network:
    return A.Network(
        4,
        [A.Population("h", 3, **pop_kw), A.Population("o", 2)],
        [A.Dense("fc1", "input", "h", np.ones((3, 4))), A.Dense("fc2", "h", "o", np.ones((2, 3)))],
    )


def test_error_is_a_value_error():
    assert issubclass(A.AsyncsimError, ValueError)


# --------------------------------------------------------------------------- network
def test_dense_weight_shape_mismatch_names_projection_and_sizes():
    with pytest.raises(
        A.AsyncsimError,
        match=r"projection 'fc1': weight shape \(10, 784\) "
        r"does not match \(target size 10, source size 700\)",
    ):
        A.Network(700, [A.Population("o", 10)], [A.Dense("fc1", "input", "o", np.ones((10, 784)))])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights(bad):
    w = np.ones((3, 4))
    w[1, 2] = bad
    with pytest.raises(A.AsyncsimError, match=rf"projection 'fc1': weight contains {bad}"):
        A.Dense("fc1", "input", "h", w)


def test_weight_beyond_float32():
    with pytest.raises(A.AsyncsimError, match="float32 range"):
        A.Dense("fc1", "input", "h", np.full((2, 2), 1e39))


@pytest.mark.parametrize("tau", [0.0, -1.0])
def test_non_positive_tau(tau):
    with pytest.raises(A.AsyncsimError, match=rf"tau_mem = {tau:g} must be > 0"):
        A.Population("h", 3, tau_mem=tau, dt=1e-3)
    with pytest.raises(A.AsyncsimError, match=rf"tau_mem = {tau:g} must be > 0"):
        A.beta_from_tau(np.array([1.0, tau]), 1e-3)


def test_nan_tau():
    with pytest.raises(A.AsyncsimError, match="tau_mem: contains NaN"):
        A.Population("h", 3, tau_mem=np.nan, dt=1e-3)


def test_tau_needs_dt_and_not_beta():
    with pytest.raises(A.AsyncsimError, match="tau_mem needs dt"):
        A.Population("h", 3, tau_mem=1e-2)
    with pytest.raises(A.AsyncsimError, match="give beta or tau_mem"):
        A.Population("h", 3, tau_mem=1e-2, dt=1e-3, beta=0.9)


def test_euler_leak_negative():
    with pytest.raises(A.AsyncsimError, match=r"1 - dt/tau = 1 - 0.002/0.001 .* is negative"):
        A.beta_from_tau(1e-3, 2e-3, method="euler")


@pytest.mark.parametrize("beta", [-0.1, 1.5])
def test_beta_outside_unit_interval(beta):
    with pytest.raises(A.AsyncsimError, match=rf"beta = {beta} is outside \[0, 1\]"):
        A.Population("h", 3, beta=beta)


def test_parameter_shape_mismatch():
    with pytest.raises(
        A.AsyncsimError,
        match=r"population 'h' threshold: shape \(4,\) cannot be "
        r"broadcast to the population shape \(3,\)",
    ):
        A.Population("h", 3, threshold=np.ones(4))


def test_nan_threshold_and_bias():
    with pytest.raises(A.AsyncsimError, match="threshold: contains NaN"):
        A.Population("h", 3, threshold=np.nan)
    with pytest.raises(A.AsyncsimError, match="bias must be finite"):
        A.Population("h", 3, bias=np.inf)


def test_unknown_reset_and_threshold_op():
    with pytest.raises(A.AsyncsimError, match="reset 'soft' is unknown; use one of zero, subtract"):
        A.Population("h", 3, reset="soft")
    with pytest.raises(A.AsyncsimError, match="threshold_op '<' is unknown"):
        A.Population("h", 3, threshold_op="<")


def test_reset_delay_requires_refractory():
    with pytest.raises(A.AsyncsimError, match="reset_delay=True needs refractory=True"):
        A.Population("h", 3, reset_delay=True, refractory=False)


def test_names():
    with pytest.raises(A.AsyncsimError, match="'input' is reserved"):
        A.Population("input", 3)
    with pytest.raises(A.AsyncsimError, match="population name 'h' is used twice"):
        A.Network(1, [A.Population("h", 1), A.Population("h", 1)], [])
    with pytest.raises(A.AsyncsimError, match="source 'nope' is not a population"):
        A.Network(1, [A.Population("h", 1)], [A.Dense("p", "nope", "h", np.ones((1, 1)))])
    with pytest.raises(A.AsyncsimError, match="output 'x' is not a population"):
        A.Network(1, [A.Population("h", 1)], [], output="x")


def test_cycle_without_delay():
    pops = [A.Population("a", 2), A.Population("b", 2)]
    projs = [
        A.Dense("in", "input", "a", np.ones((2, 1))),
        A.Dense("ab", "a", "b", np.ones((2, 2))),
        A.Dense("ba", "b", "a", np.ones((2, 2))),
    ]
    with pytest.raises(
        A.AsyncsimError, match=r"projections 'ab', 'ba' form a cycle .* set delay=1"
    ):
        A.Network(1, pops, projs)
    projs[2] = A.Dense("ba", "b", "a", np.ones((2, 2)), delay=1)
    A.Network(1, pops, projs)  # fine with a delay
    # only projections on the cycle are named, not those leading away from it
    pops.append(A.Population("c", 1))
    projs += [A.Dense("aa", "a", "a", np.ones((2, 2))), A.Dense("ac", "a", "c", np.ones((1, 2)))]
    with pytest.raises(A.AsyncsimError, match=r"projections 'aa' form a cycle among 'a' with"):
        A.Network(1, pops, projs)


def test_negative_delay():
    with pytest.raises(A.AsyncsimError, match="delay -1 must be an integer >= 0"):
        A.Dense("p", "input", "h", np.ones((1, 1)), delay=-1)


def test_conv_shape_errors():
    w = np.ones((4, 2, 3, 3))
    with pytest.raises(
        A.AsyncsimError,
        match=r"convolution of source shape \(2, 8, 8\) gives "
        r"\(4, 6, 6\), but target 'c' has shape \(4, 8, 8\)",
    ):
        A.Network((2, 8, 8), [A.Population("c", (4, 8, 8))], [A.Conv2d("cv", "input", "c", w)])
    with pytest.raises(A.AsyncsimError, match="weight expects 2 input channels"):
        A.Network((3, 8, 8), [A.Population("c", (4, 6, 6))], [A.Conv2d("cv", "input", "c", w)])
    with pytest.raises(A.AsyncsimError, match="must be 4-D"):
        A.Conv2d("cv", "input", "c", np.ones((3, 3)))
    with pytest.raises(A.AsyncsimError, match="padding='same' requires stride 1"):
        A.Network(
            (2, 8, 8),
            [A.Population("c", (4, 4, 4))],
            [A.Conv2d("cv", "input", "c", w, stride=2, padding="same")],
        )


def test_sparse_index_out_of_range():
    with pytest.raises(A.AsyncsimError, match=r"target_index must lie in \[0, 2\)"):
        A.Network(
            3,
            [A.Population("h", 2)],
            [A.Sparse("s", "input", "h", source_index=[0], target_index=[5], weight=[1.0])],
        )


def test_spikes_readout_needs_spiking_output():
    with pytest.raises(A.AsyncsimError, match="readout 'spikes' needs a spiking output"):
        A.Network(
            1,
            [A.Population("o", 2, threshold=np.inf)],
            [A.Dense("p", "input", "o", np.ones((2, 1)))],
            readout="spikes",
        )


# --------------------------------------------------------------------------- simulator
@pytest.mark.parametrize("f", [0, -1, -3, 1.5, "two", True])
def test_bad_group_size(f):
    with pytest.raises(A.AsyncsimError, match=f"group size F = {f!r}"):
        A.Simulator(small_net(), "fifo", group_size=f)


@pytest.mark.parametrize("f", ["inf", float("inf"), 1, 7, "3"])
def test_good_group_size(f):
    A.Simulator(small_net(), "fifo", group_size=f)


def test_unknown_policy_lists_choices():
    with pytest.raises(
        A.AsyncsimError,
        match="unknown policy 'greedy'; choose one of: fifo, momentum, random, layered",
    ):
        A.Simulator(small_net(), "greedy")


@pytest.mark.parametrize("stop", ["never", "output:-1", "steps:0", "steps:x", "drain:3"])
def test_bad_stop_rule(stop):
    with pytest.raises(A.AsyncsimError, match="stop rule"):
        A.Simulator(small_net(), "fifo", stop=stop)


def test_layered_rejects_async_only_options():
    with pytest.raises(A.AsyncsimError, match="stop rule 'output:0' applies to asynchronous"):
        A.Simulator(small_net(), "layered", stop="output")
    with pytest.raises(A.AsyncsimError, match="input_mode 'queued' applies to asynchronous"):
        A.Simulator(small_net(), "layered", input_mode="queued")


def test_other_option_errors():
    with pytest.raises(A.AsyncsimError, match="unknown input mode 'lazy'"):
        A.Simulator(small_net(), input_mode="lazy")
    with pytest.raises(A.AsyncsimError, match="seed -1 must be a non-negative integer"):
        A.Simulator(small_net(), seed=-1)
    with pytest.raises(A.AsyncsimError, match="jitter"):
        A.Simulator(small_net(), jitter=-1e-6)
    with pytest.raises(A.AsyncsimError, match="threads 0"):
        A.Simulator(small_net(), threads=0)
    with pytest.raises(A.AsyncsimError, match="network must be an asyncsim Network"):
        A.Simulator("model.nir")  # type: ignore[arg-type]


def test_empty_input():
    sim = A.Simulator(small_net())
    with pytest.raises(A.AsyncsimError, match=r"inputs shape \(0, 5, 4\) is empty"):
        sim.run(np.zeros((0, 5, 4)))
    with pytest.raises(A.AsyncsimError, match=r"inputs shape \(2, 0, 4\) is empty"):
        sim.run(np.zeros((2, 0, 4)))


def test_wrong_input_width_names_both_widths():
    with pytest.raises(
        A.AsyncsimError,
        match=r"inputs shape \(2, 5, 7\): each frame has shape \(7,\) \(7 values\) "
        r"but the network input is \(4,\) \(4 values\)",
    ):
        A.Simulator(small_net()).run(np.zeros((2, 5, 7)))


def test_input_rank_and_values():
    sim = A.Simulator(small_net())
    with pytest.raises(A.AsyncsimError, match=r"for one sample use inputs\[None\]"):
        sim.run(np.zeros((5, 4)))
    x = np.zeros((1, 2, 4))
    x[0, 1, 2] = np.nan
    with pytest.raises(A.AsyncsimError, match="NaN or inf"):
        sim.run(x)
    with pytest.raises(A.AsyncsimError, match="dtype"):
        sim.run(np.array([[["a", "b", "c", "d"]]]))


def test_multi_dim_input_may_be_flat():
    net = A.Network((2, 2), [A.Population("o", 2)], [A.Dense("p", "input", "o", np.ones((2, 4)))])
    sim = A.Simulator(net)
    a = sim.run(np.ones((1, 3, 2, 2)))
    b = sim.run(np.ones((1, 3, 4)))
    np.testing.assert_array_equal(a.spikes, b.spikes)


def test_labels_validated():
    sim = A.Simulator(small_net())
    x = np.zeros((2, 3, 4))
    with pytest.raises(A.AsyncsimError, match=r"labels shape \(3,\) must be \(2,\)"):
        sim.run(x, labels=[0, 1, 1])
    with pytest.raises(
        A.AsyncsimError, match=r"label 5 is outside \[0, 2\): the output population 'o' has 2"
    ):
        sim.run(x, labels=[0, 5])
    with pytest.raises(A.AsyncsimError, match="integer class indices"):
        sim.run(x, labels=[0.5, 1.0])
