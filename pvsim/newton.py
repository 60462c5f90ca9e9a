"""Fully coupled Newton iteration as a traceable ``lax.while_loop``.

One steady-state solve is a pure function (u0, params) -> :class:`NewtonResult`, so it
runs under ``jax.jit`` and ``jax.vmap`` (DESIGN.md, "Newton"). Failure is a status, not an
exception (STYLE.md, habit 6).

Steps: the first iteration always factorises the Jacobian at the current state (a full
Newton step). Once an update is small (``max|du| < chord_switch``, default 0.5 V_T) the
next steps reuse that factorisation (chord, or simplified Newton, steps: residual plus one
triangular solve, no new Jacobian), as long as each chord update is at most a tenth of
the previous update; otherwise the iteration returns to full steps. Near the solution a
chord step contracts the error by a factor of order the previous update, so it replaces
the last, most expensive, factorisation of plain Newton.

Convergence criterion (reported per bias point): an update (full or chord) satisfies
``max_i |du_i| <= tol``, u in scaled units (potentials in units of V_T = kT/q, so the
default tol = 1e-9 is 2.6e-11 V at 300 K; the electron and hole quasi-Fermi updates are
then relative density changes below 1e-9). The reported ``residual`` is
max_i |F_i| / max_j |J_ij| (row-equilibrated) at the last evaluation.

Damping: updates larger than ``max_step`` (V_T units) are scaled down by a common factor so
that their largest component becomes max_step (1 + ln(|du|_max / max_step)) (logarithmic
damping; the direction is kept). Before that, the whole update is scaled so that the voltage
unknown of a current-controlled contact moves by at most max_step per iteration: near zero
current the linearised I(V) asks for absurd voltage jumps, and the terminal current grows
like exp(V/V_T).

Line search (Bank & Rose, Numer. Math. 37, 279 (1981), simplified): an update larger than
``line_search`` (V_T units) is accepted only if it reduces the row-equilibrated residual
norm ||r F||_2 by a factor (1 - t/10) for step length t; otherwise t is halved (at most
10 times). Small updates, the usual case along a sweep, skip the check.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from .assembly import Assembler
from .linalg import Factorization, LinearSolver
from .params import Params

#: status codes
CONVERGED, MAX_ITER, NOT_FINITE = 0, 1, 2
STATUS_TEXT = {CONVERGED: "converged", MAX_ITER: "maximum iterations reached",
               NOT_FINITE: "non-finite residual or update (NaN/inf)"}


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class NewtonResult:
    """``u = ref + delta``; keep the two parts for terminal currents (see Assembler.raw)."""

    u: jax.Array
    ref: jax.Array
    delta: jax.Array
    status: jax.Array  # int, see STATUS_TEXT
    iterations: jax.Array  # linear solves (full + chord)
    factorizations: jax.Array  # Jacobian factorisations
    residual: jax.Array
    update: jax.Array
    factorization: Factorization  # the last one, reusable by a tangent predictor

    @property
    def converged(self):
        return self.status == CONVERGED


@dataclass(frozen=True)
class NewtonOptions:
    tol: float = 1e-9
    max_iter: int = 40
    max_step: float = 10.0
    chord: bool = True
    chord_switch: float = 0.5
    chord_contraction: float = 0.1
    line_search: float = 1.0


def empty_factorization(asm: Assembler) -> Factorization:
    return Factorization(vals=jnp.zeros(asm.nnz), r=jnp.ones(asm.n_dof), c=jnp.ones(asm.n_dof),
                         token=jnp.asarray(-1, jnp.int32))


def newton_solve(asm: Assembler, solver: LinearSolver, u0, params: Params,
                 options: NewtonOptions = NewtonOptions()) -> NewtonResult:
    """Solve F(u; params) = 0 from ``u0``; traceable (jit/vmap)."""

    ref = u0  # the iteration runs on the increment u - u0 (precise differences)

    def full(u, fact):
        f, vals = asm.residual_and_jacobian(u, params, ref=ref)
        du, fact = solver.factor_solve(vals, -f, asm.rows, asm.cols)
        return du, fact, jnp.max(jnp.abs(f * fact.r))

    def chord(u, fact):
        f = asm.residual(u, params, ref=ref)
        du = solver.resolve(fact, -f, asm.rows, asm.cols)
        return du, fact, jnp.max(jnp.abs(f * fact.r))

    v_mask = jnp.zeros(asm.n_dof, bool).at[jnp.where(asm.voltage_dof >= 0, asm.voltage_dof, asm.n_dof)].set(
        True, mode="drop")

    def norm(u, fact):
        return jnp.linalg.norm(asm.residual(u, params, ref=ref) * fact.r)

    def backtrack(u, du, fact):
        g0 = norm(u, fact)

        def cond_fn(c):
            t, g, k = c
            return (k < 10) & ~(g <= (1.0 - 0.1 * t) * g0)

        def body_fn(c):
            t, _, k = c
            t = 0.5 * t
            return t, norm(u + t * du, fact), k + 1

        t, _, _ = jax.lax.while_loop(cond_fn, body_fn, (1.0, norm(u + du, fact), 0))
        return jnp.asarray(t)

    def body(state):
        u, fact, it, nfac, upd, res, status, use_chord = state
        if options.chord:
            du, fact_new, res_new = jax.lax.cond(use_chord, chord, full, u, fact)
        else:  # no cond: under vmap a cond runs both branches (and batches the pattern)
            du, fact_new, res_new = full(u, fact)
        dv = jnp.max(jnp.where(v_mask, jnp.abs(du), 0.0))
        du = du * jnp.where(dv > options.max_step, options.max_step / jnp.where(dv > 0, dv, 1.0), 1.0)
        m = jnp.max(jnp.abs(du))
        finite = jnp.isfinite(m) & jnp.isfinite(res_new)
        scale = jnp.where(m > options.max_step,
                          options.max_step * (1.0 + jnp.log(m / options.max_step)) / m, 1.0)
        du = scale * du
        if options.line_search is not None:
            t = jax.lax.cond(finite & (m * scale > options.line_search), backtrack,
                             lambda *a: jnp.asarray(1.0), u, du, fact_new)
            du = t * du
        running = status < 0
        u_new = jnp.where(running & finite, u + du, u)
        it_new = jnp.where(running, it + 1, it)
        nfac_new = jnp.where(running & ~use_chord, nfac + 1, nfac)
        new_status = jnp.where(~finite, NOT_FINITE,
                               jnp.where(m <= options.tol, CONVERGED,
                                         jnp.where(it_new >= options.max_iter, MAX_ITER, -1)))
        contracting = jnp.where(use_chord, m <= options.chord_contraction * upd, True)
        next_chord = options.chord & finite & (m < options.chord_switch) & contracting
        keep = lambda new, old: jnp.where(running, new, old)  # noqa: E731
        return (u_new, jax.tree_util.tree_map(keep, fact_new, fact), it_new, nfac_new,
                keep(m, upd), keep(res_new, res), keep(new_status, status),
                keep(next_chord, use_chord))

    def cond(state):
        return jnp.any(state[6] < 0)

    zero = jnp.asarray(0)
    init = (jnp.zeros_like(u0), empty_factorization(asm), zero, zero, jnp.asarray(jnp.inf), jnp.asarray(jnp.inf),
            jnp.asarray(-1), jnp.asarray(False))
    delta, fact, it, nfac, upd, res, status, _ = jax.lax.while_loop(cond, body, init)
    return NewtonResult(u=ref + delta, ref=ref, delta=delta, status=status, iterations=it, factorizations=nfac, residual=res,
                        update=upd, factorization=fact)
