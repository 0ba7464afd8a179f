"""Energy presets, user tables, operation counts and NeuroBench-compatible metrics.

References are independent of the code under test: hand-computed counts on tiny
networks, NeuroBench's definitions re-implemented from recorded spikes (binarised input
x binarised weight per timestep), a brute-force loop over convolution taps, and the
published figures quoted in docs/metrics.md.
"""

from __future__ import annotations

import itertools
import json
import sys

import numpy as np
import pytest

import asyncsim as A
from asyncsim import energy as E
from asyncsim.compare import activation_sparsity, measure

from .workflow_helpers import tiny_data, tiny_net


# ---------------------------------------------------------------------- presets
def test_presets_carry_the_published_figures_and_scopes():
    p = E.PRESETS
    assert dict(p["horowitz45-fp32"].costs_pj) == {"synops_ac": 0.9, "synops_mac": 4.6}
    assert dict(p["horowitz45-int8"].costs_pj) == {"synops_ac": 0.03, "synops_mac": 0.23}
    assert p["truenorth"].scope == "all-in"
    assert dict(p["truenorth"].costs_pj) == {"synops": 26.0}
    assert dict(p["odin"].costs_pj) == {"synops": 12.7}
    assert p["loihi-davies2018"].costs_pj["synops"] == 23.6
    assert p["loihi-davies2018"].costs_pj["neuron_updates"] == 81.0
    assert p["loihi-davies2018"].costs_pj["idle_neuron_timesteps"] == 52.0
    sanafe = p["loihi-sanafe"].costs_pj
    assert (sanafe["synops"], sanafe["neuron_timesteps"], sanafe["neuron_updates"]) == (
        35.5,
        51.2,
        21.6,
    )
    assert (sanafe["spikes"], sanafe["spike_messages"]) == (69.3, 111.0)
    for preset in p.values():
        assert preset.source and preset.scope in ("per-term", "all-in")
        assert set(preset.costs_pj) <= set(E.TERMS)
    assert E.DEFAULT_PRESET == "horowitz45-fp32"


def test_estimate_is_counts_times_costs_by_term():
    counts = dict.fromkeys(E.TERMS, 0.0)
    counts.update(synops_ac=1000.0, synops_mac=10.0, synops=1010.0, neuron_updates=7.0)
    est = E.estimate(counts, "horowitz45-fp32")
    assert est["terms"]["synops_ac"]["energy_pj"] == pytest.approx(900.0)
    assert est["terms"]["synops_mac"]["energy_pj"] == pytest.approx(46.0)
    assert est["total_pj"] == pytest.approx(946.0)
    assert E.estimate(counts, "truenorth")["total_pj"] == pytest.approx(1010 * 26.0)
    loihi = E.estimate(counts, "loihi-davies2018")
    assert loihi["total_pj"] == pytest.approx(1010 * 23.6 + 7 * 81.0)
    assert loihi["scope"] == "per-term"


# ---------------------------------------------------------------------- user tables
def test_user_json_table_flat_and_full(tmp_path):
    flat = tmp_path / "chip.json"
    flat.write_text(json.dumps({"synops": 2.0, "spikes": 5.0}))
    p = E.get_preset(str(flat))
    assert p.name == "chip" and p.scope == "per-term"
    assert dict(p.costs_pj) == {"synops": 2.0, "spikes": 5.0}
    full = tmp_path / "full.json"
    full.write_text(
        json.dumps(
            {"name": "mine", "scope": "all-in", "source": "datasheet", "costs_pj": {"synops": 3}}
        )
    )
    q = E.load_energy_table(full)
    assert (q.name, q.scope, q.source, dict(q.costs_pj)) == (
        "mine",
        "all-in",
        "datasheet",
        {"synops": 3},
    )


def test_yaml_table_without_pyyaml_says_what_to_do(tmp_path, monkeypatch):
    f = tmp_path / "chip.yaml"
    f.write_text("synops: 2.0\n")
    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml -> ImportError
    with pytest.raises(A.AsyncsimError, match=r"pyyaml.*JSON"):
        E.load_energy_table(f)


def test_yaml_table_with_pyyaml(tmp_path):
    pytest.importorskip("yaml")
    f = tmp_path / "chip.yml"
    f.write_text("name: y\nscope: per-term\ncosts_pj:\n  synops_ac: 1.5\n")
    assert dict(E.load_energy_table(f).costs_pj) == {"synops_ac": 1.5}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"synapse_ops": 1.0}, r"unknown term 'synapse_ops'; known terms: synops_ac"),
        ({"synops": -1.0}, r"cost of 'synops' is -1.0; give a finite number of pJ >= 0"),
        ({"synops": "cheap"}, r"cost of 'synops' is 'cheap'"),
        (
            {"scope": "all-in", "costs_pj": {"synops": 1.0, "spikes": 1.0}},
            r"all-in figure .* must price exactly one term",
        ),
        ({"scope": "total", "costs_pj": {"synops": 1.0}}, r"scope 'total' is unknown"),
        ({"costs_pj": {"synops": 1.0}, "colour": 1}, r"unknown keys \['colour'\]"),
        ({}, r"no costs given"),
    ],
)
def test_bad_user_tables_are_refused_with_the_reason(tmp_path, table, message):
    f = tmp_path / "t.json"
    f.write_text(json.dumps(table))
    with pytest.raises(A.AsyncsimError, match=message):
        E.get_preset(str(f))


def test_unreadable_tables_and_unknown_presets(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{synops: 1")
    with pytest.raises(A.AsyncsimError, match=r"invalid JSON"):
        E.get_preset(str(bad))
    with pytest.raises(A.AsyncsimError, match=r"unknown energy preset 'loihi3'; choose one of"):
        E.get_preset("loihi3")
    txt = tmp_path / "t.txt"
    txt.write_text("1")
    with pytest.raises(A.AsyncsimError, match=r"unknown file type '.txt'"):
        E.load_energy_table(txt)


# ---------------------------------------------------------------------- counting
def _fanout_net(threshold: float = 100.0) -> A.Network:
    """3 inputs -> 2 neurons, weight [[1, 0, 1], [1, 1, 0]]: input fan-outs 2, 1, 1."""
    w = np.array([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    return A.Network(
        3, [A.Population("p", 2, threshold=threshold)], [A.Dense("d", "input", "p", w)]
    )


def test_input_deliveries_split_into_acs_and_macs_by_value():
    net = _fanout_net()
    # t0: 1 (fan-out 2) is an AC, 2 (fan-out 1) a MAC; t1: 0.5 (fan-out 2) a MAC,
    # -1 (fan-out 1) an AC  => 3 ACs and 3 MACs per sample, by hand
    frames = np.array([[[1.0, 2.0, 0.0], [0.5, 0.0, -1.0]]])
    res = A.Simulator(net, policy="fifo").run(frames)
    c = E.count_operations(res, net, frames)
    assert c["synops_ac"] == 3 and c["synops_mac"] == 3 and c["synops"] == 6
    # without the frames every input delivery counts as an AC
    c0 = E.count_operations(res, net)
    assert c0["synops_ac"] == 6 and c0["synops_mac"] == 0


def test_neuron_and_spike_terms_by_hand():
    # SEMANTICS S6: 2 inputs -> 3 -> 4, weights 1, F=2, theta 1, no leak: 7 spikes per
    # timestep; only the 3 hidden neurons send messages.
    pops = [A.Population("a", 3, threshold=1.0, beta=0.0), A.Population("b", 4, beta=0.0)]
    projs = [
        A.Dense("p0", "input", "a", np.ones((3, 2))),
        A.Dense("p1", "a", "b", np.ones((4, 3))),
    ]
    net = A.Network(2, pops, projs)
    frames = np.ones((2, 5, 2))
    res = A.Simulator(net, policy="fifo", group_size=2).run(frames)
    c = E.count_operations(res, net, frames)
    assert c["spikes"] == 7 * 5
    assert c["spike_messages"] == 3 * 5
    assert c["neuron_timesteps"] == 7 * 5
    # every input delivery (value 1) reaches 3 targets, every hidden spike 4
    assert c["synops_ac"] == 5 * (2 * 3 + 3 * 4) and c["synops_mac"] == 0
    assert c["forward_steps"] == float(res.forward_steps.sum() / 2)
    lay = A.Simulator(net, policy="layered").run(frames)
    assert E.count_operations(lay, net, frames)["idle_neuron_timesteps"] == 0


def _per_timestep_spike_vectors(res: A.Result, sample: int) -> list[np.ndarray]:
    """(T, n_p) binary spike vectors per population, rebuilt from the event log."""
    ev = res.events[sample]
    out = []
    for p, size in enumerate(res.population_sizes):
        m = np.zeros((res.n_timesteps, size))
        sel = ev[ev["population"] == p]
        m[sel["timestep"], sel["index"]] = 1.0
        out.append(m)
    return out


def test_effective_acs_match_neurobench_definition_on_a_random_net():
    """NeuroBench Effective_ACs: per layer and timestep, sum(binarised input @ binarised
    weight); Dense: every weight, zeros included, every timestep; ActivationSparsity:
    share of zero outputs of the spiking layers."""
    rng = np.random.default_rng(3)
    sizes = [10, 14, 9, 5]
    ws = []
    for a, b in itertools.pairwise(sizes):
        w = rng.normal(0.3, 0.6, (b, a))
        w[rng.random((b, a)) < 0.3] = 0.0  # zero weights must not count
        ws.append(w)
    pops = [A.Population(f"l{i}", n, threshold=1.0, beta=0.7) for i, n in enumerate(sizes[1:])]
    src = ["input", "l0", "l1"]
    projs = [A.Dense(f"p{i}", src[i], f"l{i}", ws[i]) for i in range(3)]
    net = A.Network(10, pops, projs)
    frames = (rng.random((3, 6, 10)) < 0.4).astype(np.float64)
    res = A.Simulator(net, policy="layered", record_events=True).run(frames)
    expected = 0.0
    nonzero = 0.0
    for s in range(3):
        spk = _per_timestep_spike_vectors(res, s)
        sources = [frames[s], spk[0], spk[1]]
        for x, w in zip(sources, ws, strict=True):
            expected += float(((x != 0).astype(float) @ (w != 0).T.astype(float)).sum())
        nonzero += sum(m.sum() for m in spk)
    row = measure(res, net, frames)
    assert row["effective_acs"] == pytest.approx(expected / 3)
    assert row["effective_macs"] == 0
    assert row["dense_synops"] == sum(w.size for w in ws) * 6
    assert row["activation_sparsity"] == pytest.approx(1 - nonzero / (3 * 6 * sum(sizes[1:])))
    assert activation_sparsity(res, net) == row["activation_sparsity"]


def test_activation_sparsity_leaves_a_non_spiking_readout_out():
    net = A.Network(
        2,
        [A.Population("h", 3, threshold=0.5), A.Population("o", 2, threshold=np.inf)],
        [A.Dense("a", "input", "h", np.ones((3, 2))), A.Dense("b", "h", "o", np.ones((2, 3)))],
    )
    res = A.Simulator(net, policy="layered").run(np.ones((1, 4, 2)))
    # every hidden neuron spikes every timestep: sparsity 0 over the spiking layer only
    assert activation_sparsity(res, net) == 0.0


# ---------------------------------------------------------------------- dense counts
def _brute_conv_taps(pr: A.Conv2d, shape: tuple[int, int, int]) -> int:
    c_out, cpg, kh, kw = pr.weight.shape
    _, h, w = shape
    top, _b, left, _r = pr.padding_lrtb((h, w))
    _, ho, wo = pr.output_shape(shape)
    n = 0
    for oy in range(ho):
        for ox in range(wo):
            for ky in range(kh):
                for kx in range(kw):
                    y = oy * pr.stride[0] - top + ky * pr.dilation[0]
                    x = ox * pr.stride[1] - left + kx * pr.dilation[1]
                    if 0 <= y < h and 0 <= x < w:
                        n += 1
    return n * c_out * cpg


@pytest.mark.parametrize(
    ("kw", "shape"),
    [
        ({"stride": 1, "padding": 0}, (2, 7, 6)),
        ({"stride": 2, "padding": 1}, (2, 9, 8)),
        ({"stride": 1, "padding": "same", "dilation": 2}, (2, 6, 6)),
        ({"stride": (2, 1), "padding": (2, 0), "groups": 2}, (2, 8, 5)),
    ],
)
def test_dense_synapses_of_convolutions_exclude_padding(kw, shape):
    groups = kw.get("groups", 1)
    weight = np.ones((4, shape[0] // groups, 3, 3))
    pr = A.Conv2d("c", "input", "o", weight=weight, **kw)
    out = pr.output_shape(shape)
    net = A.Network(shape, [A.Population("o", out)], [pr])
    assert E.dense_synapses(net)["c"] == _brute_conv_taps(pr, shape)


def test_dense_synapses_conv_matches_torch_all_ones():
    torch = pytest.importorskip("torch")
    shape = (2, 9, 8)
    pr = A.Conv2d("c", "input", "o", weight=np.ones((3, 2, 3, 3)), stride=2, padding=1)
    net = A.Network(shape, [A.Population("o", pr.output_shape(shape))], [pr])
    ones = torch.nn.functional.conv2d(
        torch.ones(1, *shape), torch.ones(3, 2, 3, 3), stride=2, padding=1
    )
    assert E.dense_synapses(net)["c"] == int(ones.sum())


def test_dense_synapses_of_dense_sparse_one_to_one():
    w = np.zeros((3, 4))
    w[0, 0] = 1.0
    pops = [A.Population("a", 3), A.Population("b", 3), A.Population("c", 2)]
    projs = [
        A.Dense("d", "input", "a", w),
        A.OneToOne("o", "a", "b", 0.5),
        A.Sparse("s", "b", "c", [0, 1, 2], [0, 1, 1], [1.0, 0.0, 2.0]),
    ]
    net = A.Network(4, pops, projs)
    assert E.dense_synapses(net) == {"d": 12, "o": 3, "s": 3}


def test_format_energy_units():
    assert E.format_energy(12.0) == "12 pJ"
    assert E.format_energy(1500.0) == "1.5 nJ"
    assert E.format_energy(2.5e6) == "2.5 uJ"
    assert E.format_energy(None) == "-"


def test_measure_reports_every_requested_preset():
    net = tiny_net()
    x, y = tiny_data(4, 5)
    res = A.Simulator(net, policy="momentum").run(x, y)
    row = measure(res, net, x, energy=["truenorth", "horowitz45-fp32"])
    assert row["energy_preset"] == "truenorth"
    total_syn = float(res.synops.sum() + res.input_synops.sum()) / 4
    assert row["energy_pj"] == pytest.approx(26.0 * total_syn)
    assert row["energy"]["horowitz45-fp32"]["total_pj"] == pytest.approx(0.9 * total_syn)
