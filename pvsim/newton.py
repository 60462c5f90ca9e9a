"""Fully coupled Newton iteration as a traceable ``lax.while_loop``.

One steady-state solve is a pure function (u0, params) -> :class:`NewtonResult`, so it
runs under ``jax.jit`` and ``jax.vmap`` (DESIGN.md, "Newton"). Failure is a status, not an
exception (STYLE.md, habit 6).

Convergence criterion (reported per bias point): the undamped Newton update satisfies
``max_i |du_i| <= tol`` with u in scaled units (potentials in units of V_T = kT/q, so the
default tol = 1e-9 is 2.6e-11 V at 300 K). Quadratic convergence makes the residual after
that step negligible; the reported ``residual`` is max_i |F_i| / max_j |J_ij| (row-
equilibrated) at the last Jacobian evaluation.

Damping: updates larger than ``max_step`` (V_T units) are scaled down by a common factor so
that their largest component becomes max_step (1 + ln(|du|_max / max_step)) (logarithmic
damping; the direction is kept).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from .assembly import Assembler
from .linalg import LinearSolver
from .params import Params

#: status codes
CONVERGED, MAX_ITER, NOT_FINITE = 0, 1, 2
STATUS_TEXT = {CONVERGED: "converged", MAX_ITER: "maximum iterations reached",
               NOT_FINITE: "non-finite residual or update (NaN/inf)"}


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class NewtonResult:
    u: jax.Array
    status: jax.Array  # int, see STATUS_TEXT
    iterations: jax.Array
    residual: jax.Array
    update: jax.Array

    @property
    def converged(self):
        return self.status == CONVERGED


@dataclass(frozen=True)
class NewtonOptions:
    tol: float = 1e-9
    max_iter: int = 40
    max_step: float = 10.0


def newton_solve(asm: Assembler, solver: LinearSolver, u0, params: Params,
                 options: NewtonOptions = NewtonOptions()) -> NewtonResult:
    """Solve F(u; params) = 0 from ``u0``; traceable (jit/vmap)."""

    def step(u):
        f, vals = asm.residual_and_jacobian(u, params)
        du = solver.solve(vals, -f, asm.rows, asm.cols)
        rmax = jax.ops.segment_max(jnp.abs(vals), asm.rows, num_segments=asm.n_dof)
        res = jnp.max(jnp.abs(f) / jnp.where(rmax > 0, rmax, 1.0))
        return du, res

    def body(state):
        u, it, upd, res, status = state
        du, res_new = step(u)
        m = jnp.max(jnp.abs(du))
        finite = jnp.isfinite(m) & jnp.isfinite(res_new)
        scale = jnp.where(m > options.max_step,
                          options.max_step * (1.0 + jnp.log(m / options.max_step)) / m, 1.0)
        running = status < 0
        u_new = jnp.where(running & finite, u + scale * du, u)
        it_new = jnp.where(running, it + 1, it)
        new_status = jnp.where(~finite, NOT_FINITE,
                               jnp.where(m <= options.tol, CONVERGED,
                                         jnp.where(it_new >= options.max_iter, MAX_ITER, -1)))
        status = jnp.where(running, new_status, status)
        return (u_new, it_new, jnp.where(running, m, upd), jnp.where(running, res_new, res),
                status)

    def cond(state):
        return jnp.any(state[4] < 0)

    init = (u0, jnp.asarray(0), jnp.asarray(jnp.inf), jnp.asarray(jnp.inf), jnp.asarray(-1))
    u, it, upd, res, status = jax.lax.while_loop(cond, body, init)
    return NewtonResult(u=u, status=status, iterations=it, residual=res, update=upd)
