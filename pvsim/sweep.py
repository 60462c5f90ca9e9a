"""Bias sweeps: equilibrium, then continuation from point to point.

The Python driver orchestrates; each solve is the compiled Newton of :mod:`pvsim.newton`.

* **Equilibrium** first: local charge neutrality per site, all quasi-Fermi levels 0, then
  the coupled Newton at zero bias (where it reduces to the nonlinear Poisson equation,
  since the continuity equations are satisfied identically by flat quasi-Fermi levels).
* **Start point**: each target bias starts from the converged point nearest to it (so a
  forward branch and a reverse branch both start near 0 V).
* **Predictor**: the tangent du/ds = -J^-1 dF/ds (one extra factorisation; ``"tangent"``),
  the secant through the last two points on the same line (free; ``"secant"``, falls back
  to the tangent) or none.
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


@dataclass
class BiasPoint:
    """Set values for one bias point: voltages (V) and set currents (device current units)."""

    voltage: np.ndarray
    current: np.ndarray

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
    pass


@dataclass(frozen=True)
class SweepOptions:
    predictor: str = "tangent"  # "tangent" | "secant" | "none"
    min_fraction: float = 1.0 / 1024
    max_substeps: int = 200


def _params(dev: Device, b: BiasPoint):
    return dev.params(b.voltage, b.current)


def _finish(dev, b, u, res, its, facs, substeps, t0) -> PointResult:
    jax.block_until_ready(u)
    wall = time.perf_counter() - t0
    return PointResult(bias=b, u=u, observables=dev.observe(u, _params(dev, b)),
                       iterations=its, factorizations=facs, residual=float(res.residual),
                       update=float(res.update), substeps=substeps, wall_time=wall,
                       factorization=res.factorization)


def solve_equilibrium(dev: Device) -> PointResult:
    k = len(dev.contacts)
    b = BiasPoint(np.zeros(k), np.zeros(k))
    t0 = time.perf_counter()
    p = _params(dev, b)
    res = dev.solve(dev.initial_guess(p), p)
    if not bool(res.converged):
        raise SweepFailure(
            f"equilibrium did not converge ({STATUS_TEXT[int(res.status)]}, "
            f"{int(res.iterations)} iterations, last update {float(res.update):.3g} V_T); "
            "check doping, work functions and the mesh"
        )
    return _finish(dev, b, res.u, res, int(res.iterations), int(res.factorizations), 1, t0)


def continuation(dev: Device, start: PointResult, target: BiasPoint, prev: PointResult | None,
                 options: SweepOptions) -> tuple[PointResult | None, str | None]:
    """Walk from ``start`` to ``target``; returns (result, None) or (None, reason)."""
    t0 = time.perf_counter()
    p0, p1 = _params(dev, start.bias), _params(dev, target)
    dp = jax.tree_util.tree_map(lambda a, b: b - a, p0, p1)
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
        p_try = jax.tree_util.tree_map(lambda a, d: a + s_try * d, p0, dp)
        if secant is not None and s == 0.0:
            guess = u + s_try * secant
        elif options.predictor in ("tangent", "secant"):
            p_s = jax.tree_util.tree_map(lambda a, d: a + s * d, p0, dp)
            guess = u + (s_try - s) * dev.tangent(u, p_s, dp, fact)
        else:
            guess = u
        res = dev.solve(guess, p_try)
        its += int(res.iterations)
        facs += int(res.factorizations)
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
    return _finish(dev, target, u, res, its, facs, substeps, t0), None


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
        result, reason = continuation(dev, start, target, prev_of.get(id(start)), options)
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
