"""Spike data in: frames from .npy/.npz/.h5, NIR data files and tonic-style events."""

from __future__ import annotations

import h5py
import nir
import numpy as np
import pytest

import asyncsim as A

EV = [("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int8)]


def events(rows):
    return np.array([tuple(r) for r in rows], dtype=EV)


def test_npy_and_npz(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, (4, 5, 6)).astype(np.uint8)
    y = np.array([0, 1, 2, 1])
    np.save(tmp_path / "f.npy", x)
    fr, lab = A.load_inputs(tmp_path / "f.npy")
    np.testing.assert_array_equal(fr, x)
    assert lab is None
    for fk, lk in (("inputs", "labels"), ("frames", "y"), ("x", "targets")):
        np.savez(tmp_path / f"{fk}.npz", **{fk: x, lk: y})
        fr, lab = A.load_inputs(tmp_path / f"{fk}.npz")
        np.testing.assert_array_equal(fr, x)
        np.testing.assert_array_equal(lab, y)
    np.savez(tmp_path / "custom.npz", spk=x, cls=y)
    fr, lab = A.load_inputs(tmp_path / "custom.npz", key="spk", labels_key="cls")
    np.testing.assert_array_equal(lab, y)


def test_input_shape_reshapes_and_adds_sample_axis(tmp_path):
    x = np.arange(2 * 3 * 8).reshape(2, 3, 8)
    fr, _ = A.load_inputs(x, input_shape=(2, 2, 2))
    assert fr.shape == (2, 3, 2, 2, 2)
    one = np.arange(3 * 8).reshape(3, 8)
    fr, _ = A.load_inputs(one, input_shape=8)
    assert fr.shape == (1, 3, 8)
    with pytest.raises(A.AsyncsimError, match=r"do not fit the input shape \(5,\)"):
        A.load_inputs(x, input_shape=5)


def test_n_timesteps_cuts_frames():
    x = np.arange(2 * 5 * 3).reshape(2, 5, 3)
    fr, _ = A.load_inputs(x, n_timesteps=2)
    np.testing.assert_array_equal(fr, x[:, :2])
    with pytest.raises(A.AsyncsimError, match="the data has only 5 timesteps"):
        A.load_inputs(x, n_timesteps=9)


def test_h5_frames(tmp_path):
    x = np.ones((2, 3, 4))
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["frames"] = x
        f["labels"] = [1, 0]
    fr, lab = A.load_inputs(tmp_path / "d.h5")
    np.testing.assert_array_equal(fr, x)
    assert lab.tolist() == [1, 0]


def test_nir_time_gridded_and_event_data(tmp_path):
    data = np.zeros((2, 4, 3), dtype=bool)
    data[0, 1, 2] = data[1, 3, 0] = True
    gd = nir.NIRGraphData(
        nodes={"input": nir.NIRNodeData(observables={"spikes": nir.TimeGriddedData(data, dt=1e-3)})}
    )
    nir.write_data(tmp_path / "tg.h5", gd)
    fr, lab = A.load_inputs(tmp_path / "tg.h5")
    np.testing.assert_array_equal(fr, data.astype(np.uint8))
    assert lab is None
    # spike times: two events of neuron 1 in the same 1 ms bin are counted twice
    idx = np.array([[1, 1, 0, -1]])
    tm = np.array([[0.0011, 0.0019, 0.0035, np.inf]])
    ed = nir.NIRGraphData(
        nodes={
            "input": nir.NIRNodeData(
                observables={"spikes": nir.EventData(idx, tm, n_neurons=2, t_max=0.004)}
            )
        }
    )
    nir.write_data(tmp_path / "ev.h5", ed)
    with pytest.raises(A.AsyncsimError, match="pass time_window=dt"):
        A.load_inputs(tmp_path / "ev.h5")
    fr, _ = A.load_inputs(tmp_path / "ev.h5", time_window=1e-3)
    assert fr.shape == (1, 4, 2)
    assert fr[0].tolist() == [[0, 0], [0, 2], [0, 0], [1, 0]]


def test_tonic_events_binned_by_hand():
    ev = events([(0, 0, 100, 1), (1, 0, 150, 0), (1, 0, 180, 0), (2, 1, 1099, 1), (0, 1, 1100, 1)])
    fr = A.io.events_to_frames(ev, time_window=500, sensor_size=(3, 2, 2))
    # t0 = 100 (first event): bins [100, 600), [600, 1100), [1100, 1600)
    assert fr.shape == (1, 3, 2, 2, 3)
    expect = np.zeros((3, 2, 2, 3), dtype=int)
    expect[0, 1, 0, 0] = 1
    expect[0, 0, 0, 1] = 2
    expect[1, 1, 1, 2] = 1
    expect[2, 1, 1, 0] = 1
    np.testing.assert_array_equal(fr[0], expect)
    fr0 = A.io.events_to_frames(
        ev, time_window=500, sensor_size=(3, 2, 2), start_time=0, n_timesteps=2
    )
    assert fr0.shape == (1, 2, 2, 2, 3) and fr0.sum() == 3  # events at t >= 1000 dropped


def test_tonic_events_via_files_and_polarity(tmp_path):
    ev = events([(0, 0, 0, -1), (1, 0, 10, 1)])
    np.save(tmp_path / "e.npy", ev)
    fr, _ = A.load_inputs(tmp_path / "e.npy", time_window=100, input_shape=(2, 1, 2))
    assert fr.shape == (1, 1, 2, 1, 2)
    assert fr[0, 0, 0, 0, 0] == 1 and fr[0, 0, 1, 0, 1] == 1  # p=-1 -> channel 0
    np.savez(tmp_path / "e.npz", events=ev, labels=[3])
    fr, lab = A.load_inputs(tmp_path / "e.npz", time_window=100, input_shape=(2, 1, 2))
    assert lab.tolist() == [3]
    # audio-like events without y and p
    a = np.array([(0, 5), (3, 7)], dtype=[("x", np.int32), ("t", np.int64)])
    fr, _ = A.load_inputs(a, time_window=10, sensor_size=(4, 1, 1))
    assert fr.shape == (1, 1, 1, 1, 4) and fr.sum() == 2


def test_errors(tmp_path):
    with pytest.raises(A.AsyncsimError, match="no such file"):
        A.load_inputs(tmp_path / "none.npz")
    (tmp_path / "f.csv").write_text("1,2\n")
    with pytest.raises(A.AsyncsimError, match=r"unknown input format '\.csv'"):
        A.load_inputs(tmp_path / "f.csv")
    np.save(tmp_path / "flat.npy", np.zeros((4, 5)))
    with pytest.raises(A.AsyncsimError, match=r"must be \(samples, timesteps, \*input_shape\)"):
        A.load_inputs(tmp_path / "flat.npy")
    np.savez(tmp_path / "nokey.npz", stuff=np.zeros((1, 2, 3)))
    with pytest.raises(A.AsyncsimError, match="no frames array; expected one of inputs"):
        A.load_inputs(tmp_path / "nokey.npz")
    with h5py.File(tmp_path / "nokey.h5", "w") as f:
        f["stuff"] = np.zeros((1, 2, 3))
    with pytest.raises(A.AsyncsimError, match=r"nokey\.h5: no frames dataset; expected") as exc:
        A.load_inputs(tmp_path / "nokey.h5")
    assert "unreadable" not in str(exc.value)  # the file is readable: not re-wrapped
    np.savez(tmp_path / "badlab.npz", inputs=np.zeros((2, 2, 3)), labels=[0.5, 1])
    with pytest.raises(A.AsyncsimError, match="labels must be non-negative integer"):
        A.load_inputs(tmp_path / "badlab.npz")
    np.savez(tmp_path / "nlab.npz", inputs=np.zeros((2, 2, 3)), labels=[0, 1, 2])
    with pytest.raises(A.AsyncsimError, match=r"labels shape \(3,\) must be \(2,\)"):
        A.load_inputs(tmp_path / "nlab.npz")
    np.save(tmp_path / "nan.npy", np.full((1, 2, 3), np.nan))
    with pytest.raises(A.AsyncsimError, match="NaN or inf"):
        A.load_inputs(tmp_path / "nan.npy")
    ev = events([(5, 0, 0, 0)])
    with pytest.raises(A.AsyncsimError, match="needs time_window"):
        A.load_inputs(ev)
    with pytest.raises(A.AsyncsimError, match=r"x = 5 is outside the sensor size"):
        A.io.events_to_frames(ev, time_window=1, sensor_size=(4, 1, 1))
    bad = np.zeros(2, dtype=[("a", int), ("t", int)])
    with pytest.raises(A.AsyncsimError, match="lack x"):
        A.io.events_to_frames(bad, time_window=1)
    with pytest.raises(A.AsyncsimError, match="time_window = 0 must be > 0"):
        A.io.events_to_frames(events([(0, 0, 0, 0)]), time_window=0)
    (tmp_path / "trunc.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 20)
    with pytest.raises(A.AsyncsimError, match="unreadable HDF5 file"):
        A.load_inputs(tmp_path / "trunc.h5")


def test_digits_test_set_loads():
    from pathlib import Path

    fr, lab = A.load_inputs(Path(__file__).parents[1] / "models" / "digits" / "test.npz")
    assert fr.shape[1:] == (25, 64) and fr.dtype == np.uint8
    assert lab.shape == (fr.shape[0],) and set(np.unique(lab)) == set(range(10))
