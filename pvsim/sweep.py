"""Bias sweeps: equilibrium, then continuation from point to point.

The Python driver orchestrates; each solve is the compiled Newton of :mod:`pvsim.newton`.

* **Equilibrium** first: local charge neutrality per site, all quasi-Fermi levels 0, then
  the coupled Newton at zero bias (where it reduces to the nonlinear Poisson equation,
  since the continuity equations are satisfied identically by flat quasi-Fermi levels).
* **Start point**: each target bias starts from the converged point nearest to it (so a
  forward branch and a reverse branch both start near 0 V).
* **Predictor**: the tangent du/ds = -J^-1 dF/ds (one triangular solve with the last
  Newton factorisation; ``"tangent"``), the secant through the last two points on the same
  line (free; ``"secant"``, falls back to the tangent) or none. A predicted change larger
  than ``max_prediction`` V_T, or twice the change of the contact voltages if that is
  larger, is scaled down to it (the tangent of a current-controlled contact near zero
  current predicts absurd voltages), and a failed predicted solve is retried from the
  unpredicted state before the step is halved.
* **Step halving**: a failed solve halves the step towards the target, down to
  ``min_fraction`` of the full step; then the sweep stops with a report naming the bias
  that failed and why, and everything that converged is returned.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import jax
import numpy as np

from .device import Device
from .newton import STATUS_TEXT
from .params import Params


@dataclass
class BiasPoint:
    """Set values for one bias point: voltages (V) and set currents (device current units).

    ``hold`` (K,) marks current-controlled contacts held at their voltage for this point.
    """

    voltage: np.ndarray
    current: np.ndarray
    hold: np.ndarray | None = None

    def vector(self) -> np.ndarray:
        return np.concatenate([self.voltage, self.current])


@dataclass
class PointResult:
    bias: BiasPoint
    u: jax.Array
    observables: dict
    iterations: int  # Newton iterations (linear solves), all sub-steps together
    factorizations: int  # Jacobian factorisations, all sub-steps together
    residual: float
    update: float
    substeps: int
    wall_time: float  # s, including the predictor, after block_until_ready
    factorization: object = None  # the last Newton factorisation (reused by the next predictor)


@dataclass
class SweepResult:
    device: Device
    equilibrium: PointResult
    points: list[PointResult] = field(default_factory=list)
    failure: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None


class SweepFailure(RuntimeError):
    """The equilibrium, the start of every sweep, did not converge."""


@dataclass(frozen=True)
class SweepOptions:
    predictor: str = "tangent"  # "tangent" | "secant" | "none"
    max_prediction: float = 20.0  # V_T
    min_fraction: float = 1.0 / 1024
    max_substeps: int = 200


@jax.jit
def _difference(p0, p1):
    return jax.tree_util.tree_map(lambda a, b: b - a, p0, p1)


@jax.jit
def _along(p0, dp, s):
    """p0 + s dp (one compiled call instead of an eager op per leaf)."""
    return jax.tree_util.tree_map(lambda a, d: a + s * d, p0, dp)


def _params(dev: Device, b: BiasPoint):
    return dev.params(b.voltage, b.current, b.hold)


def _current_controlled(dev: Device) -> np.ndarray:
    return np.array([c.control == "current" for c in dev.contacts])


def _finish(dev, b, res, its, facs, substeps, t0) -> PointResult:
    jax.block_until_ready(res.u)
    wall = time.perf_counter() - t0
    return PointResult(bias=b, u=res.u, observables=dev.observe(res.ref, _params(dev, b), res.delta),
                       iterations=its, factorizations=facs, residual=float(res.residual),
                       update=float(res.update), substeps=substeps, wall_time=wall,
                       factorization=res.factorization)


def solve_equilibrium(dev: Device) -> PointResult:
    k = len(dev.contacts)
    b = BiasPoint(np.zeros(k), np.zeros(k), _current_controlled(dev))
    t0 = time.perf_counter()
    p = _params(dev, b)
    res = dev.solve(dev.initial_guess(p), p)
    if not bool(res.converged):
        raise SweepFailure(
            f"equilibrium did not converge ({STATUS_TEXT[int(res.status)]}, "
            f"{int(res.iterations)} iterations, last update {float(res.update):.3g} V_T); "
            "check doping, work functions and the mesh"
        )
    return _finish(dev, b, res, int(res.iterations), int(res.factorizations), 1, t0)


def continuation(dev: Device, start: PointResult, target: BiasPoint, prev: PointResult | None,
                 options: SweepOptions) -> tuple[PointResult | None, str | None]:
    """Walk from ``start`` to ``target``; returns (result, None) or (None, reason)."""
    t0 = time.perf_counter()
    p0, p1 = _params(dev, start.bias), _params(dev, target)
    p0 = Params(**{**p0.__dict__, "hold_voltage": p1.hold_voltage})  # the mode is the target's
    dp = _difference(p0, p1)
    u, s, ds = start.u, 0.0, 1.0
    fact = start.factorization
    its = facs = substeps = 0
    secant = None
    if options.predictor == "secant" and prev is not None:
        d_old = start.bias.vector() - prev.bias.vector()
        d_new = target.vector() - start.bias.vector()
        n_old = np.linalg.norm(d_old)
        if n_old > 0 and abs(abs(d_old @ d_new) - n_old * np.linalg.norm(d_new)) < 1e-12 * n_old:
            secant = (start.u - prev.u) * (d_new @ d_old) / n_old**2
    last_reason = ""
    while s < 1.0:
        s_try = min(1.0, s + ds)
        p_try = _along(p0, dp, s_try)
        if secant is not None and s == 0.0:
            step = s_try * secant
        elif options.predictor in ("tangent", "secant"):
            p_s = _along(p0, dp, s)
            step = (s_try - s) * dev.tangent(u, p_s, dp, fact)
        else:
            step = None
        cap = max(options.max_prediction,
                  2.0 * (s_try - s) * float(jax.numpy.max(jax.numpy.abs(dp.voltage))))
        for guess in _guesses(u, step, cap):
            res = dev.solve(guess, p_try)
            its += int(res.iterations)
            facs += int(res.factorizations)
            if bool(res.converged):
                break
        substeps += 1
        if bool(res.converged):
            u, s, fact = res.u, s_try, res.factorization
            ds = min(2.0 * ds, 1.0)
            continue
        last_reason = (f"{STATUS_TEXT[int(res.status)]} after {int(res.iterations)} iterations "
                       f"(last update {float(res.update):.3g} V_T, residual {float(res.residual):.3g})")
        ds *= 0.5
        if ds < options.min_fraction or substeps >= options.max_substeps:
            return None, (f"step halving reached {ds:.3g} of the step at fraction {s:.4f} of the "
                          f"way; last attempt: {last_reason}")
    return _finish(dev, target, res, its, facs, substeps, t0), None


def _release(dev: Device, point: PointResult) -> PointResult:
    """The same state, its current-controlled contacts now set to their present current."""
    o = point.observables
    bias = BiasPoint(np.asarray(o["voltage"]), np.asarray(o["current_direct"]), None)
    # the held-mode factorisation has a voltage row where the current row now is
    return PointResult(**{**point.__dict__, "bias": bias, "factorization": None})


def to_target(dev: Device, start: PointResult, target: BiasPoint, prev, options: SweepOptions,
              bootstrap_step_V: float = 0.05, max_bootstrap: int = 400):
    """Reach ``target``; current-controlled contacts are first driven by voltage steps.

    Near zero current a diode's dI/dV is ~1e-14 of the other Jacobian entries (singular to
    float64), so a current-controlled contact is held at a voltage that is stepped (0.05 V)
    towards the set current until the current reaches a third of it; then the contact is
    released to current control and the continuation runs in current.
    """
    cc = _current_controlled(dev)
    if target.hold is not None:
        cc = cc & ~np.asarray(target.hold, bool)
    if cc.any():
        if np.any(target.current[cc] == 0):
            names = [c.name for c, k in zip(dev.contacts, cc & (target.current == 0)) if k]
            return None, (f"zero set current at current-controlled contact(s) {names}: dI/dV "
                          "vanishes at I = 0 (a floating contact); set a non-zero current or use "
                          "voltage control")
        i_now = np.asarray(start.observables["current_direct"])
        far = np.abs(i_now[cc]) < 1e-3 * np.abs(target.current[cc])
        held = start.bias.hold is not None and np.any(np.asarray(start.bias.hold, bool) & cc)
        if far.any():
            t0 = time.perf_counter()
            point, its, facs, history = start, 0, 0, []
            sign = np.sign(target.current)
            for _ in range(max_bootstrap):
                v = np.asarray(point.observables["voltage"]) + np.where(cc, sign * bootstrap_step_V, 0.0)
                point, reason = continuation(dev, point, BiasPoint(v, target.current, cc), None, options)
                if point is None:
                    return None, f"while stepping the held voltage towards the set current: {reason}"
                its, facs = its + point.iterations, facs + point.factorizations
                i_now = np.abs(np.asarray(point.observables["current_direct"])[cc])
                if np.all(i_now >= np.abs(target.current[cc]) / 3):
                    break
                history.append(i_now)
                if len(history) > 20 and np.all(history[-1] < 1.01 * history[-20]):
                    return None, (f"the current saturates at {history[-1]} (device units) while the "
                                  f"held voltage is stepped to {v[cc]} V: the set current "
                                  f"{target.current[cc]} is not reachable")
            start, prev = _release(dev, point), None
            result, reason = continuation(dev, start, target, prev, options)
            if result is not None:  # report the whole effort at this point
                result.iterations += its
                result.factorizations += facs
                result.wall_time = time.perf_counter() - t0
            return result, reason
        if held:
            start, prev = _release(dev, start), None
    return continuation(dev, start, target, prev, options)


def _guesses(u, step, cap):
    """Start states to try: the (capped) prediction, then the last solution."""
    if step is None:
        return [u]
    size = float(jax.numpy.max(jax.numpy.abs(step)))
    if not np.isfinite(size):
        return [u]
    return [u + step * min(1.0, cap / max(size, 1e-300)), u]


def run_sweep(dev: Device, targets: list[BiasPoint], options: SweepOptions = SweepOptions(),
              progress=None) -> SweepResult:
    """Solve every target bias point; stop at the first that fails (after step halving)."""
    eq = solve_equilibrium(dev)
    out = SweepResult(device=dev, equilibrium=eq)
    done: list[PointResult] = [eq]
    prev_of: dict[int, PointResult | None] = {id(eq): None}
    for i, target in enumerate(targets):
        vec = target.vector()
        start = min(done, key=lambda r: np.max(np.abs(r.bias.vector() - vec)))
        result, reason = to_target(dev, start, target, prev_of.get(id(start)), options)
        if result is None:
            v = ", ".join(f"{c}={x:g} V" for c, x in zip(dev.contact_names, target.voltage))
            out.failure = (f"bias point {i} ({v}) failed: {reason}. "
                           f"{len(out.points)} converged point(s) kept.")
            break
        out.points.append(result)
        done.append(result)
        prev_of[id(result)] = start
        if progress is not None:
            progress(i, result)
    return out
