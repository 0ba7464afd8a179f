"""Trainer profiles: how a NIR file's continuous-time parameters become per-timestep ones.

NIR describes neurons as differential equations and stores no timestep, no reset rule and
no threshold comparison. Every trainer fills those gaps differently (see
``docs/models.md`` and the verified notes it cites), so a NIR file is only meaningful
together with a *profile*: the trainer's discretisation.

A profile fixes, per neuron node (``tau``, ``r``, ``v_leak``, ``w_in`` are NIR fields):

=============  ==========================================================================
``dt``         seconds per timestep (``None``: inferred from the file, see :func:`infer_dt`)
``leak``       ``"euler"``: ``beta = 1 - dt/tau`` | ``"exact"``: ``beta = exp(-dt/tau)``
``lif_gain``   input gain into the membrane: ``"euler"`` ``r*dt/tau`` | ``"norm"``
               ``(1-beta)*r`` (Sinabs ``norm_input``) | ``"raw"`` ``r`` | ``"one"`` 1
``if_gain``    input gain of ``IF`` / ``I`` nodes: ``"r_dt"`` ``r*dt`` | ``"r"``
``syn_gain``   CubaLIF input gain into the synaptic current: ``"euler"``
               ``w_in*dt/tau_syn`` | ``"raw"`` ``w_in`` (Norse's current jump) | ``"one"``
``threshold_op``  ``">"`` or ``">="``
``reset``      ``"zero"`` (to ``v_reset``) or ``"subtract"``
``reset_delay``  apply the reset one timestep late (snnTorch's default ``Leaky``)
``use_v_reset``  take ``v_reset`` from the file (else 0)
``multi_spike``  several spikes per timestep, ``floor(v/theta)`` (Sinabs ``MultiSpike``)
``v_init``     initial potential: ``"zero"``, ``"v_leak"`` or ``"v_reset"``
=============  ==========================================================================

The resulting per-timestep neuron (engine form, see :mod:`asyncsim.network`)::

    beta  = leak(dt, tau);   g = gain;   bias = (1 - beta) * v_leak + g * (constant input)
    v_t   = beta * v_{t-1} + bias + g * (W s_t)              (g folded into the weights)

Any field can be overridden per load: ``asyncsim.load(path, profile="snntorch",
reset="zero")``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..errors import AsyncsimError

LEAKS = ("euler", "exact")
LIF_GAINS = ("euler", "norm", "raw", "one")
IF_GAINS = ("r_dt", "r")
SYN_GAINS = ("euler", "raw", "one")
V_INITS = ("zero", "v_leak", "v_reset")


@dataclass(frozen=True)
class Profile:
    """One trainer's discretisation of NIR (see the module docstring for each field)."""

    name: str
    trainer: str
    dt: float | None
    leak: str = "euler"
    lif_gain: str = "euler"
    if_gain: str = "r_dt"
    syn_gain: str = "euler"
    threshold_op: str = ">"
    reset: str = "zero"
    reset_delay: bool = False
    use_v_reset: bool = True
    multi_spike: bool = False
    v_init: str = "zero"
    verified: bool = True
    notes: str = ""
    overridden: tuple[str, ...] = field(default=(), compare=False)

    def describe(self) -> dict[str, Any]:
        """Every choice as plain values (stored in ``Network.metadata``)."""
        d = dataclasses.asdict(self)
        d["overridden"] = list(self.overridden)
        return d


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "snntorch",
            "snnTorch (export_to_nir, >= 0.9)",
            dt=1e-4,
            leak="euler",
            lif_gain="euler",
            if_gain="r_dt",
            syn_gain="euler",
            threshold_op=">",
            reset="subtract",
            reset_delay=True,
            use_v_reset=False,
            v_init="zero",
            notes=(
                "dt = 1e-4 is hard-coded in snnTorch's exporter (beta = 1 - dt/tau, "
                "r*dt/tau = 1). The reset mechanism is not exported: default Leaky/Synaptic "
                "(subtract, reset_delay=True) is assumed; override with reset='zero' and/or "
                "reset_delay=False to match other settings."
            ),
        ),
        Profile(
            "norse",
            "Norse (norse.torch.to_nir)",
            dt=None,
            leak="euler",
            lif_gain="euler",
            if_gain="r",
            syn_gain="raw",
            threshold_op=">",
            reset="zero",
            reset_delay=False,
            use_v_reset=True,
            v_init="v_leak",
            notes=(
                "Forward Euler. Norse 1.1.0's exporter writes tau_NIR = dt*tau (units bug), "
                "so the effective step is dt_cell*dt_export (1e-6 for the defaults); older "
                "files (tau in seconds) use dt = 1e-3. LIFCell's current jumps by the raw "
                "input (w_in is written as 1). v_reset is not exported (0 unless set)."
            ),
        ),
        Profile(
            "spikingjelly",
            "SpikingJelly activation_based (nir_exchange.export_to_nir)",
            dt=1e-4,
            leak="euler",
            lif_gain="euler",
            if_gain="r_dt",
            syn_gain="euler",
            threshold_op=">=",
            reset="zero",
            reset_delay=False,
            use_v_reset=True,
            v_init="v_reset",
            notes=(
                "dt = 1e-4 (exporter default; tau_NIR = tau_steps*dt). Comparison is '>=', "
                "hard reset to v_reset (soft reset cannot be exported), initial v = v_reset."
            ),
        ),
        Profile(
            "sinabs",
            "Sinabs (sinabs.to_nir)",
            dt=1.0,
            leak="exact",
            lif_gain="norm",
            if_gain="r_dt",
            syn_gain="euler",
            threshold_op=">=",
            reset="subtract",
            reset_delay=False,
            use_v_reset=False,
            multi_spike=True,
            v_init="zero",
            notes=(
                "tau is in timesteps (dt = 1), alpha = exp(-1/tau), LIF input scaled by "
                "(1 - alpha) (norm_input=True, the trainer default; pass lif_gain='raw' for "
                "norm_input=False). MultiSpike: floor(v/theta) spikes per step, '>=', "
                "subtract. Not representable: min_v_mem clamping (Sinabs from_nir sets it for "
                "IF), tau_syn (dropped by the exporter)."
            ),
        ),
        Profile(
            "rockpool",
            "Rockpool (rockpool.nn.modules.torch.nir.to_nir)",
            dt=None,
            leak="exact",
            lif_gain="euler",
            if_gain="r_dt",
            syn_gain="raw",
            threshold_op=">=",
            reset="subtract",
            reset_delay=False,
            use_v_reset=False,
            multi_spike=True,
            v_init="zero",
            verified=False,
            notes=(
                "NOT verified against Rockpool (not installed): read from its exporter, which "
                "writes r = tau*exp(-dt/tau)/dt, so dt is solved from r and the membrane gain "
                "r*dt/tau equals exp(-dt/tau). Multi-spike, subtract, '>=' follow LIFTorch's "
                "documented defaults."
            ),
        ),
        Profile(
            "spyx",
            "Spyx (spyx.nir.to_nir)",
            dt=None,
            leak="euler",
            lif_gain="one",
            if_gain="r",
            syn_gain="one",
            threshold_op=">",
            reset="subtract",
            reset_delay=False,
            use_v_reset=False,
            v_init="zero",
            verified=False,
            notes=(
                "NOT verified against Spyx (JAX, not installed): read from its exporter, which "
                "writes tau = dt/(1-beta) and r = beta, so dt = tau*(1-r); Spyx neurons add "
                "the input with gain 1 (V = beta*V + x) and reset by subtraction."
            ),
        ),
        Profile(
            "generic",
            "NIR reference reading (any trainer)",
            dt=None,
            leak="euler",
            lif_gain="euler",
            if_gain="r_dt",
            syn_gain="euler",
            threshold_op=">",
            reset="zero",
            reset_delay=False,
            use_v_reset=True,
            v_init="v_leak",
            notes=(
                "Forward Euler of NIR's equations: v += dt/tau*(v_leak - v + r*x); "
                "I += dt/tau_syn*(w_in*x - I); IF: v += dt*r*x. Reset to v_reset when "
                "v > v_threshold. dt from the argument or inferred from r = tau/dt."
            ),
        ),
    )
}

_BOOL_FIELDS = ("reset_delay", "use_v_reset", "multi_spike")
_CHOICES: dict[str, tuple[str, ...]] = {
    "leak": LEAKS,
    "lif_gain": LIF_GAINS,
    "if_gain": IF_GAINS,
    "syn_gain": SYN_GAINS,
    "threshold_op": (">", ">="),
    "reset": ("zero", "subtract"),
    "v_init": V_INITS,
}
OVERRIDABLE = (*_CHOICES, *_BOOL_FIELDS)


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    if isinstance(value, (int,)) and value in (0, 1):
        return bool(value)
    raise AsyncsimError(f"option {name}={value!r} must be true or false")


def get_profile(name: str | Profile | None, overrides: dict[str, Any] | None = None) -> Profile:
    """Look up a profile by name and apply per-load overrides.

    Raises :class:`AsyncsimError` naming the known profiles or options on a typo.
    """
    if isinstance(name, Profile):
        prof = name
    else:
        key = "generic" if name is None else str(name).lower()
        if key not in PROFILES:
            raise AsyncsimError(
                f"unknown profile {name!r}; use one of {', '.join(PROFILES)} "
                "(see docs/models.md for what each one assumes)"
            )
        prof = PROFILES[key]
    changes: dict[str, Any] = {}
    for k, v in (overrides or {}).items():
        if k in _CHOICES:
            if v not in _CHOICES[k]:
                raise AsyncsimError(
                    f"option {k}={v!r} is not allowed; use one of {', '.join(_CHOICES[k])}"
                )
        elif k in _BOOL_FIELDS:
            v = _as_bool(k, v)
        else:  # pragma: no cover - filtered by the caller
            raise AsyncsimError(f"unknown profile option {k!r}")
        if getattr(prof, k) != v:  # only real changes count as overrides
            changes[k] = v
    if changes:
        prof = dataclasses.replace(
            prof, **changes, overridden=tuple(sorted({*prof.overridden, *changes}))
        )
    return prof


__all__ = ["OVERRIDABLE", "PROFILES", "Profile", "get_profile"]
