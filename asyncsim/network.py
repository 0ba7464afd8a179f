"""Network description: populations of LIF neurons and the projections between them.

This module is *data only*: dataclasses that validate and normalise what the user (or a
loader) gives them. Nothing here simulates; :mod:`asyncsim.compile` turns a
:class:`Network` into flat arrays for the kernels.

Neuron model (per neuron, per timestep; see ``docs/semantics.md``)::

    at the start of timestep t:   v <- beta * v + syn_gain * syn ; syn <- alpha * syn
                                  v <- v + bias ; then syn_bias arrives like a current
    on every arriving current I:  syn <- syn + I  (if the population has a synaptic state)
                                  v   <- v + I    (unless ``syn_immediate=False``)
    spike iff v > threshold       (or v >= threshold with ``threshold_op=">="``)
    reset: v <- v_reset ("zero") or v <- v - threshold ("subtract"), immediately or,
           with ``reset_delay=True``, at the start of the next timestep (snnTorch default)

``threshold = inf`` makes a non-spiking readout (NIR LI / I / CubaLI).

Projections follow PyTorch's weight conventions: a dense weight is ``(n_target, n_source)``,
a convolution weight ``(C_out, C_in / groups, kh, kw)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import AsyncsimError

INPUT = "input"
"""Reserved source name for the network input."""

ArrayLike = float | int | Sequence[float] | np.ndarray

RESET_MODES = ("zero", "subtract")
THRESHOLD_OPS = (">", ">=")
READOUTS = ("spikes", "sum", "max", "last")


def _shape_tuple(shape: int | Sequence[int], what: str) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    try:
        tup = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise AsyncsimError(f"{what}: shape {shape!r} is not a tuple of integers") from None
    if len(tup) == 0 or any(s <= 0 for s in tup):
        raise AsyncsimError(f"{what}: shape {tup} must have at least one dimension, all >= 1")
    return tup


def _per_neuron(value: ArrayLike, shape: tuple[int, ...], what: str) -> np.ndarray:
    """Broadcast a scalar, per-channel or per-neuron parameter to ``shape`` (float64)."""
    arr = np.asarray(value, dtype=np.float64)
    if (
        arr.ndim == 1
        and len(shape) > 1
        and arr.shape[0] == shape[0]
        and arr.size != int(np.prod(shape))
    ):
        # one value per channel of a (C, H, W) population
        arr = arr.reshape((shape[0],) + (1,) * (len(shape) - 1))
    if arr.size == int(np.prod(shape)) and arr.shape != shape:
        arr = arr.reshape(shape)
    try:
        out = np.broadcast_to(arr, shape).astype(np.float64, copy=True)
    except ValueError:
        raise AsyncsimError(
            f"{what}: shape {arr.shape} cannot be broadcast to the population shape {shape}; "
            "give a scalar, one value per channel or one value per neuron"
        ) from None
    if np.isnan(out).any():
        raise AsyncsimError(f"{what}: contains NaN; every value must be a number")
    return out


def beta_from_tau(tau_mem: ArrayLike, dt: float, method: str = "exact") -> np.ndarray:
    """Leak factor per timestep from a membrane time constant.

    ``method="exact"``: ``beta = exp(-dt / tau)`` (SEMANTICS.md section 2);
    ``method="euler"``: ``beta = 1 - dt / tau`` (snnTorch, Norse's forward Euler).
    ``dt = 0`` means no leak. Raises :class:`AsyncsimError` for ``tau <= 0`` or for an
    Euler step that makes ``beta`` negative (``dt > tau``).
    """
    tau = np.asarray(tau_mem, dtype=np.float64)
    if not np.isfinite(dt) or dt < 0:
        raise AsyncsimError(f"dt = {dt!r} must be a finite number >= 0 (seconds per timestep)")
    if np.isnan(tau).any() or (tau <= 0).any():
        bad_tau = float(tau[np.isnan(tau) | (tau <= 0)].flat[0])
        raise AsyncsimError(f"tau_mem = {bad_tau:g} must be > 0; use tau = inf for no leak")
    if method == "exact":
        return np.exp(-dt / tau)
    if method == "euler":
        beta = 1.0 - dt / tau
        if (beta < 0).any():
            bad = float(tau[beta < 0].flat[0])
            raise AsyncsimError(
                f"Euler leak 1 - dt/tau = 1 - {dt:g}/{bad:g} = {1 - dt / bad:.4g} is negative; "
                "dt must not exceed tau_mem: pass a smaller dt or use method='exact'"
            )
        return beta
    raise AsyncsimError(f"unknown leak method {method!r}; use 'exact' or 'euler'")


@dataclass
class Population:
    """A group of LIF neurons with a common shape and per-neuron parameters.

    Parameters may be scalars, one value per channel (for ``(C, H, W)`` populations) or
    one value per neuron. Exactly one of ``beta`` (leak factor per timestep, in [0, 1])
    or ``tau_mem`` (with ``dt``, giving ``beta = exp(-dt / tau_mem)``) may be given;
    with neither, the neuron does not leak (``beta = 1``, an IF neuron).

    Attributes:
        name: unique name (not ``"input"``).
        shape: neurons as an int or a tuple, e.g. ``500`` or ``(16, 16, 16)`` (C, H, W).
        threshold: firing threshold; ``inf`` for a non-spiking readout.
        beta: leak factor per timestep.
        reset: ``"zero"`` (to ``v_reset``) or ``"subtract"`` (``v - threshold``).
        v_reset: potential after a ``"zero"`` reset.
        reset_delay: apply the reset at the start of the next timestep, not at the spike
            (snnTorch's default ``Leaky``). Requires ``refractory=True`` and no
            refractory dropout, so a neuron spikes at most once per timestep.
        refractory: a neuron that spiked ignores all further current in that timestep.
        refractory_dropout: probability that a spike does *not* make its neuron
            refractory (reference default for inference: 0).
        bias: constant current injected once per timestep.
        alpha: decay per timestep of a synaptic current state (CubaLIF); ``None`` means
            no synaptic state (currents go straight into ``v``).
        syn_gain: how much of the synaptic state enters ``v`` at a timestep start
            (default ``alpha``, snnTorch ``Synaptic``: ``v_t = beta v + alpha syn + x``).
        syn_immediate: arriving currents also enter ``v`` in the same timestep (snnTorch,
            Norse, Sinabs); ``False`` means they reach ``v`` only through ``syn`` at the next
            timestep (exact discretisation of NIR's continuous CubaLIF).
        syn_bias: constant current into the synaptic state, once per timestep, like an
            arriving current (a layer bias before snnTorch ``Synaptic``/``RSynaptic``,
            SpikingJelly ``CUBALIFNode``); needs ``alpha``. ``bias`` instead adds to ``v``
            directly (membrane constants such as ``v_leak`` terms).
        threshold_op: ``">"`` (default, SEMANTICS.md) or ``">="`` (SpikingJelly).
        v_init: potential at the start of every sample (SpikingJelly starts at v_reset,
            Norse at v_leak; default 0).
        multi_spike: a neuron that crosses threshold emits ``n = max(1, floor(v / theta))``
            spikes at once and, with ``reset="subtract"``, loses ``n * theta`` (Sinabs'
            ``MultiSpike``). The ``n`` spikes travel as one event of count ``n``.
    """

    name: str
    shape: int | tuple[int, ...]
    threshold: ArrayLike = 1.0
    beta: ArrayLike | None = None
    tau_mem: ArrayLike | None = None
    dt: float | None = None
    reset: str = "zero"
    v_reset: ArrayLike = 0.0
    reset_delay: bool = False
    refractory: bool = True
    refractory_dropout: float = 0.0
    bias: ArrayLike = 0.0
    alpha: ArrayLike | None = None
    syn_gain: ArrayLike | None = None
    syn_immediate: bool = True
    syn_bias: ArrayLike = 0.0
    threshold_op: str = ">"
    v_init: ArrayLike = 0.0
    multi_spike: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise AsyncsimError(f"population name {self.name!r} must be a non-empty string")
        if self.name == INPUT:
            raise AsyncsimError(f"population name {INPUT!r} is reserved for the network input")
        what = f"population {self.name!r}"
        self.shape = _shape_tuple(self.shape, what)
        shape = self.shape

        thr = np.asarray(self.threshold, dtype=np.float64)
        if (thr == -np.inf).any():
            raise AsyncsimError(f"{what}: threshold -inf would fire on every update")
        self.threshold = _per_neuron(thr, shape, f"{what} threshold")

        if self.beta is not None and self.tau_mem is not None:
            raise AsyncsimError(f"{what}: give beta or tau_mem (with dt), not both")
        if self.tau_mem is not None:
            if self.dt is None:
                raise AsyncsimError(f"{what}: tau_mem needs dt (seconds per timestep)")
            beta = beta_from_tau(
                _per_neuron(self.tau_mem, shape, f"{what} tau_mem"), float(self.dt)
            )
        elif self.beta is not None:
            beta = _per_neuron(self.beta, shape, f"{what} beta")
        else:
            beta = np.ones(shape)
        if ((beta < 0) | (beta > 1)).any():
            bad = beta[(beta < 0) | (beta > 1)].flat[0]
            raise AsyncsimError(
                f"{what}: leak factor beta = {float(bad):g} is outside [0, 1]; "
                "beta = exp(-dt/tau_mem) must lie in [0, 1] (check tau_mem and dt)"
            )
        self.beta = beta
        self.tau_mem = None
        self.dt = None

        if self.reset not in RESET_MODES:
            raise AsyncsimError(
                f"{what}: reset {self.reset!r} is unknown; use one of {', '.join(RESET_MODES)}"
            )
        self.v_reset = _per_neuron(self.v_reset, shape, f"{what} v_reset")
        if not np.isfinite(self.v_reset).all():
            raise AsyncsimError(f"{what}: v_reset must be finite")
        self.bias = _per_neuron(self.bias, shape, f"{what} bias")
        if not np.isfinite(self.bias).all():
            raise AsyncsimError(f"{what}: bias must be finite")
        p = float(self.refractory_dropout)
        if not 0.0 <= p <= 1.0:
            raise AsyncsimError(
                f"{what}: refractory_dropout {self.refractory_dropout!r} must be in [0, 1]"
            )
        self.refractory_dropout = p
        self.refractory = bool(self.refractory)
        self.reset_delay = bool(self.reset_delay)
        if self.reset_delay and (not self.refractory or p > 0):
            raise AsyncsimError(
                f"{what}: reset_delay=True needs refractory=True and refractory_dropout=0 "
                "(a delayed reset is applied once per timestep, so a neuron must not spike "
                "twice in one timestep)"
            )
        self.v_init = _per_neuron(self.v_init, shape, f"{what} v_init")
        if not np.isfinite(self.v_init).all():
            raise AsyncsimError(f"{what}: v_init must be finite")
        self.multi_spike = bool(self.multi_spike)
        if self.multi_spike and (self.threshold <= 0).any():
            raise AsyncsimError(
                f"{what}: multi_spike needs positive thresholds (spikes = floor(v / threshold))"
            )
        if self.threshold_op not in THRESHOLD_OPS:
            raise AsyncsimError(
                f"{what}: threshold_op {self.threshold_op!r} is unknown; use '>' or '>='"
            )
        self.syn_bias = _per_neuron(self.syn_bias, shape, f"{what} syn_bias")
        if not np.isfinite(self.syn_bias).all():
            raise AsyncsimError(f"{what}: syn_bias must be finite")
        if self.alpha is None:
            if self.syn_gain is not None:
                raise AsyncsimError(f"{what}: syn_gain needs alpha (a synaptic state)")
            if (self.syn_bias != 0).any():
                raise AsyncsimError(
                    f"{what}: syn_bias needs alpha (a synaptic state); for a plain LIF "
                    "neuron use bias"
                )
            self.syn_immediate = True
        else:
            self.alpha = _per_neuron(self.alpha, shape, f"{what} alpha")
            if ((self.alpha < 0) | (self.alpha > 1)).any():
                raise AsyncsimError(
                    f"{what}: synaptic decay alpha must be in [0, 1] "
                    f"(got {self.alpha.min():.4g}..{self.alpha.max():.4g})"
                )
            gain = self.alpha if self.syn_gain is None else self.syn_gain
            self.syn_gain = _per_neuron(gain, shape, f"{what} syn_gain")
            if not np.isfinite(self.syn_gain).all():
                raise AsyncsimError(f"{what}: syn_gain must be finite")
            self.syn_immediate = bool(self.syn_immediate)

    @property
    def size(self) -> int:
        """Number of neurons."""
        return int(np.prod(self.shape))

    @property
    def dims(self) -> tuple[int, ...]:
        """The shape as a tuple (``shape`` is normalised to one at construction)."""
        return _shape_tuple(self.shape, f"population {self.name!r}")

    @property
    def spiking(self) -> bool:
        """False for a pure readout (every threshold is ``inf``)."""
        return bool(np.isfinite(self.threshold).any())


@dataclass
class Projection:
    """Base class of all projections: weighted synapses from ``source`` to ``target``.

    ``source`` is a population name or ``"input"``. ``delay`` (integer timesteps >= 0)
    delivers a spike's currents at the start of timestep ``t + delay`` instead of at once;
    a projection that closes a cycle needs ``delay >= 1`` (trainers feed recurrent spikes
    back at the next timestep).
    """

    name: str
    source: str
    target: str

    def _check_common(self, delay: int) -> int:
        if not isinstance(self.name, str) or not self.name:
            raise AsyncsimError(f"projection name {self.name!r} must be a non-empty string")
        if self.target == INPUT:
            raise AsyncsimError(f"projection {self.name!r}: the input cannot be a target")
        if isinstance(delay, bool) or int(delay) != delay or delay < 0:
            raise AsyncsimError(
                f"projection {self.name!r}: delay {delay!r} must be an integer >= 0 (timesteps)"
            )
        return int(delay)

    @property
    def what(self) -> str:
        return f"projection {self.name!r}"


def _finite_weight(w: Any, what: str) -> np.ndarray:
    arr = np.asarray(w, dtype=np.float64)
    if not np.isfinite(arr).all():
        bad = arr[~np.isfinite(arr)].flat[0]
        raise AsyncsimError(f"{what}: weight contains {float(bad):g}; every weight must be finite")
    if (np.abs(arr) > np.finfo(np.float32).max).any():
        raise AsyncsimError(f"{what}: weight magnitude exceeds float32 range (3.4e38)")
    return arr


@dataclass
class Dense(Projection):
    """All-to-all projection, ``weight`` shaped ``(n_target, n_source)`` as in ``nn.Linear``."""

    weight: Any = None
    delay: int = 0

    def __post_init__(self) -> None:
        self.delay = self._check_common(self.delay)
        self.weight = _finite_weight(self.weight, self.what)
        if self.weight.ndim != 2:
            raise AsyncsimError(
                f"{self.what}: dense weight must be 2-D (n_target, n_source), "
                f"got shape {self.weight.shape}"
            )


@dataclass
class Sparse(Projection):
    """Explicit synapse list: ``weight[k]`` from source neuron ``source_index[k]`` to target
    neuron ``target_index[k]`` (flat, C-order indices within each population)."""

    source_index: Any = None
    target_index: Any = None
    weight: Any = None
    delay: int = 0

    def __post_init__(self) -> None:
        self.delay = self._check_common(self.delay)
        self.weight = _finite_weight(self.weight, self.what).ravel()
        src = np.asarray(self.source_index)
        tgt = np.asarray(self.target_index)
        if src.shape != self.weight.shape or tgt.shape != self.weight.shape:
            raise AsyncsimError(
                f"{self.what}: source_index {src.shape}, target_index {tgt.shape} and weight "
                f"{self.weight.shape} must be 1-D arrays of the same length"
            )
        if src.size and (
            not np.issubdtype(src.dtype, np.integer) or not np.issubdtype(tgt.dtype, np.integer)
        ):
            raise AsyncsimError(f"{self.what}: source_index and target_index must be integers")
        self.source_index = src.astype(np.int64)
        self.target_index = tgt.astype(np.int64)


@dataclass
class OneToOne(Projection):
    """Neuron ``i`` of the source to neuron ``i`` of the target (NIR ``Scale``)."""

    weight: Any = 1.0
    delay: int = 0

    def __post_init__(self) -> None:
        self.delay = self._check_common(self.delay)
        self.weight = _finite_weight(self.weight, self.what)


def _pair(v: Any, what: str, name: str, minimum: int) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        v = (int(v), int(v))
    try:
        a, b = (int(x) for x in v)
    except (TypeError, ValueError):
        raise AsyncsimError(f"{what}: {name} {v!r} must be an int or a pair of ints") from None
    if a < minimum or b < minimum:
        raise AsyncsimError(f"{what}: {name} {(a, b)} must be >= {minimum}")
    return a, b


@dataclass
class Conv2d(Projection):
    """2-D convolution, ``weight`` shaped ``(C_out, C_in / groups, kh, kw)`` (PyTorch).

    ``padding`` is an int, a pair, ``"valid"`` (0) or ``"same"`` (output size = input size
    for stride 1; extra padding goes bottom/right as in PyTorch). The source must be
    ``"input"`` or a population shaped ``(C_in, H, W)``; the target's shape must be
    ``(C_out, H_out, W_out)``. A 1-D convolution is a 2-D one with ``kh = 1`` and
    populations shaped ``(C, 1, L)``: see :func:`conv1d`.
    """

    weight: Any = None
    stride: Any = 1
    padding: Any = 0
    dilation: Any = 1
    groups: int = 1
    delay: int = 0

    def __post_init__(self) -> None:
        self.delay = self._check_common(self.delay)
        self.weight = _finite_weight(self.weight, self.what)
        if self.weight.ndim != 4:
            raise AsyncsimError(
                f"{self.what}: conv weight must be 4-D (C_out, C_in/groups, kh, kw), "
                f"got shape {self.weight.shape}"
            )
        self.stride = _pair(self.stride, self.what, "stride", 1)
        self.dilation = _pair(self.dilation, self.what, "dilation", 1)
        g = int(self.groups)
        if g < 1 or self.weight.shape[0] % g:
            raise AsyncsimError(
                f"{self.what}: groups={self.groups} must be >= 1 and divide C_out="
                f"{self.weight.shape[0]}"
            )
        self.groups = g
        if isinstance(self.padding, str):
            if self.padding not in ("same", "valid"):
                raise AsyncsimError(
                    f"{self.what}: padding {self.padding!r} must be an int, a pair, "
                    "'same' or 'valid'"
                )
        else:
            self.padding = _pair(self.padding, self.what, "padding", 0)

    def padding_lrtb(self, in_hw: tuple[int, int]) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) padding for an input of spatial size ``in_hw``."""
        kh, kw = self.weight.shape[2:]
        dh, dw = self.dilation
        if self.padding == "valid":
            return (0, 0, 0, 0)
        if self.padding == "same":
            if self.stride != (1, 1):
                raise AsyncsimError(f"{self.what}: padding='same' requires stride 1")
            th, tw = dh * (kh - 1), dw * (kw - 1)
            return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
        ph, pw = self.padding
        return (ph, ph, pw, pw)

    def output_shape(self, in_shape: tuple[int, ...]) -> tuple[int, int, int]:
        """Target shape ``(C_out, H_out, W_out)`` for a source shaped ``(C_in, H, W)``."""
        if len(in_shape) != 3:
            raise AsyncsimError(
                f"{self.what}: source shape {in_shape} must be (C_in, H, W) for a convolution"
            )
        c_in, h, w = in_shape
        c_out, c_per_group, kh, kw = self.weight.shape
        if c_per_group * self.groups != c_in:
            raise AsyncsimError(
                f"{self.what}: weight expects {c_per_group * self.groups} input channels "
                f"(C_in/groups={c_per_group} x groups={self.groups}), source has {c_in}"
            )
        top, bottom, left, right = self.padding_lrtb((h, w))
        dh, dw = self.dilation
        sh, sw = self.stride
        ho = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1
        wo = (w + left + right - dw * (kw - 1) - 1) // sw + 1
        if ho < 1 or wo < 1:
            raise AsyncsimError(
                f"{self.what}: kernel ({kh}, {kw}) does not fit the padded input ({h}, {w})"
            )
        return (c_out, ho, wo)


def conv1d(
    name: str,
    source: str,
    target: str,
    weight: Any,
    stride: int = 1,
    padding: int | str = 0,
    dilation: int = 1,
    groups: int = 1,
    delay: int = 0,
) -> Conv2d:
    """A 1-D convolution (weight ``(C_out, C_in/groups, k)``) as a :class:`Conv2d` on
    populations shaped ``(C, 1, L)``."""
    w = _finite_weight(weight, f"projection {name!r}")
    if w.ndim != 3:
        raise AsyncsimError(
            f"projection {name!r}: conv1d weight must be 3-D (C_out, C_in/groups, k), "
            f"got shape {w.shape}"
        )
    pad: Any = padding if isinstance(padding, str) else (0, int(padding))
    return Conv2d(
        name,
        source,
        target,
        weight=w[:, :, None, :],
        stride=(1, int(stride)),
        padding=pad,
        dilation=(1, int(dilation)),
        groups=groups,
        delay=delay,
    )


def pool2d(
    name: str,
    source: str,
    target: str,
    channels: int,
    kernel: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
    mode: str = "sum",
    delay: int = 0,
) -> Conv2d:
    """Sum or average pooling over ``kernel`` windows, as a depthwise :class:`Conv2d` with a
    constant kernel (1 for ``"sum"``, 1/(kh*kw) for ``"avg"``). ``stride`` defaults to
    ``kernel`` as in PyTorch."""
    kh, kw = _pair(kernel, f"projection {name!r}", "kernel", 1)
    if mode not in ("sum", "avg"):
        raise AsyncsimError(f"projection {name!r}: pooling mode {mode!r} must be 'sum' or 'avg'")
    value = 1.0 if mode == "sum" else 1.0 / (kh * kw)
    weight = np.full((int(channels), 1, kh, kw), value)
    return Conv2d(
        name,
        source,
        target,
        weight=weight,
        stride=(kh, kw) if stride is None else stride,
        padding=padding,
        groups=int(channels),
        delay=delay,
    )


@dataclass
class Network:
    """Populations, projections and which population is the output.

    Args:
        input_shape: shape of one input frame, e.g. ``(784,)`` or ``(2, 34, 34)``.
        populations: the neuron groups, in any order.
        projections: the synapses; several projections into one population add up.
        output: name of the output population (default: the last population).
        readout: how a decision is read from the output: ``"spikes"`` (argmax of
            accumulated spike counts; default for spiking outputs) or, for non-spiking
            outputs, ``"sum"`` (default), ``"max"`` or ``"last"`` of the end-of-timestep
            potentials.
        metadata: free-form provenance (trainer, profile, dt, file), shown by ``inspect``.
    """

    input_shape: int | tuple[int, ...]
    populations: list[Population]
    projections: list[Projection]
    output: str | None = None
    readout: str | None = None
    name: str = "network"
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.input_shape = _shape_tuple(self.input_shape, "network input")
        self.populations = list(self.populations)
        self.projections = list(self.projections)
        if not self.populations:
            raise AsyncsimError("network has no populations; add at least one Population")
        names: dict[str, Population] = {}
        for p in self.populations:
            if not isinstance(p, Population):
                raise AsyncsimError(f"{p!r} is not a Population")
            if p.name in names:
                raise AsyncsimError(f"population name {p.name!r} is used twice")
            names[p.name] = p
        proj_names: set[str] = set()
        for pr in self.projections:
            if not isinstance(pr, Projection):
                raise AsyncsimError(f"{pr!r} is not a Projection")
            if pr.name in proj_names:
                raise AsyncsimError(f"projection name {pr.name!r} is used twice")
            proj_names.add(pr.name)
            if pr.source != INPUT and pr.source not in names:
                raise AsyncsimError(
                    f"projection {pr.name!r}: source {pr.source!r} is not a population "
                    f"(known: {', '.join([INPUT, *names])})"
                )
            if pr.target not in names:
                raise AsyncsimError(
                    f"projection {pr.name!r}: target {pr.target!r} is not a population "
                    f"(known: {', '.join(names)})"
                )
            self._check_shapes(pr, names)
        if self.output is None:
            self.output = self.populations[-1].name
        if self.output not in names:
            raise AsyncsimError(
                f"output {self.output!r} is not a population (known: {', '.join(names)})"
            )
        out = names[self.output]
        if self.readout is None:
            self.readout = "spikes" if out.spiking else "sum"
        if self.readout not in READOUTS:
            raise AsyncsimError(
                f"readout {self.readout!r} is unknown; use one of {', '.join(READOUTS)}"
            )
        if self.readout == "spikes" and not out.spiking:
            raise AsyncsimError(
                f"readout 'spikes' needs a spiking output, but {self.output!r} never spikes "
                "(threshold inf); use readout='sum', 'max' or 'last'"
            )
        self.topological_order()  # raises on a cycle without delay

    def population(self, name: str) -> Population:
        for p in self.populations:
            if p.name == name:
                return p
        raise AsyncsimError(f"no population named {name!r}")

    def source_shape(self, source: str) -> tuple[int, ...]:
        if source == INPUT:
            return tuple(self.input_shape)  # type: ignore[arg-type]
        return self.population(source).dims

    def _check_shapes(self, pr: Projection, names: dict[str, Population]) -> None:
        src_shape = self.source_shape(pr.source)
        tgt = names[pr.target]
        n_src = int(np.prod(src_shape))
        if isinstance(pr, Dense):
            if pr.weight.shape != (tgt.size, n_src):
                raise AsyncsimError(
                    f"{pr.what}: weight shape {pr.weight.shape} does not match "
                    f"(target size {tgt.size}, source size {n_src}) for "
                    f"{pr.source!r} -> {pr.target!r}"
                )
        elif isinstance(pr, Sparse):
            if pr.source_index.size:
                if pr.source_index.min() < 0 or pr.source_index.max() >= n_src:
                    raise AsyncsimError(
                        f"{pr.what}: source_index must lie in [0, {n_src}) "
                        f"(source {pr.source!r} has {n_src} neurons)"
                    )
                if pr.target_index.min() < 0 or pr.target_index.max() >= tgt.size:
                    raise AsyncsimError(
                        f"{pr.what}: target_index must lie in [0, {tgt.size}) "
                        f"(target {pr.target!r} has {tgt.size} neurons)"
                    )
        elif isinstance(pr, OneToOne):
            if n_src != tgt.size:
                raise AsyncsimError(
                    f"{pr.what}: one-to-one needs equal sizes, source {pr.source!r} has "
                    f"{n_src} and target {pr.target!r} has {tgt.size}"
                )
            if pr.weight.size not in (1, n_src):
                raise AsyncsimError(
                    f"{pr.what}: weight has {pr.weight.size} values; give 1 or {n_src}"
                )
        elif isinstance(pr, Conv2d):
            expect = pr.output_shape(src_shape)
            if tgt.dims != expect:
                raise AsyncsimError(
                    f"{pr.what}: convolution of source shape {src_shape} gives {expect}, "
                    f"but target {pr.target!r} has shape {tgt.shape}"
                )
        else:  # pragma: no cover - new projection types must be added here
            raise AsyncsimError(f"{pr.what}: unsupported projection type {type(pr).__name__}")

    def topological_order(self) -> list[str]:
        """Population names ordered so every delay-0 projection goes forward.

        Raises :class:`AsyncsimError` naming the cycle if delay-0 projections form one.
        Ties keep the order of ``populations`` (so the order is deterministic).
        """
        order_index = {p.name: i for i, p in enumerate(self.populations)}
        succ: dict[str, set[str]] = {p.name: set() for p in self.populations}
        indeg = dict.fromkeys(succ, 0)
        for pr in self.projections:
            if pr.source != INPUT and getattr(pr, "delay", 0) == 0:
                if pr.target not in succ[pr.source]:
                    succ[pr.source].add(pr.target)
                    indeg[pr.target] += 1
        ready = sorted((n for n, d in indeg.items() if d == 0), key=order_index.__getitem__)
        out: list[str] = []
        while ready:
            n = ready.pop(0)
            out.append(n)
            for m in sorted(succ[n], key=order_index.__getitem__):
                indeg[m] -= 1
                if indeg[m] == 0:
                    ready.append(m)
                    ready.sort(key=order_index.__getitem__)
        if len(out) != len(self.populations):
            # peel off populations that only lead away from the cycle(s)
            stuck = {n for n in succ if n not in out}
            changed = True
            while changed:
                changed = False
                for n in list(stuck):
                    if not succ[n] & stuck:
                        stuck.discard(n)
                        changed = True
            cyc = [
                pr.name
                for pr in self.projections
                if pr.source in stuck and pr.target in stuck and getattr(pr, "delay", 0) == 0
            ]
            members = sorted(stuck, key=order_index.__getitem__)
            raise AsyncsimError(
                f"projections {', '.join(repr(c) for c in cyc)} form a cycle among "
                f"{', '.join(repr(s) for s in members)} with delay 0; a recurrent projection "
                "needs delay >= 1 timestep (as trainers deliver recurrent spikes at the next "
                "timestep): set delay=1"
            )
        return out

    @property
    def n_inputs(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def n_neurons(self) -> int:
        return sum(p.size for p in self.populations)

    def widest(self) -> int:
        """Size of the largest population (F >= this makes a layer chain layered)."""
        return max(p.size for p in self.populations)


__all__ = [
    "INPUT",
    "READOUTS",
    "Conv2d",
    "Dense",
    "Network",
    "OneToOne",
    "Population",
    "Projection",
    "Sparse",
    "beta_from_tau",
    "conv1d",
    "pool2d",
]
