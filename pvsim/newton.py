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

Damping: each update component larger than ``max_step`` (V_T units) becomes
max_step (1 + ln(|du_i| / max_step)) (logarithmic damping per component, as DEVSIM's
log_damp for the potential; see :func:`log_damp`). Before that, the whole update is scaled so that the voltage
unknown of a current-controlled contact moves by at most max_step per iteration: near zero
current the linearised I(V) asks for absurd voltage jumps, and the terminal current grows
like exp(V/V_T).

Heat on: the temperature is frozen (its rows decoupled: T = current value) until an
update is below ``thermal_lag`` (V_T units), then the system is fully coupled; temperature
updates are log-damped beyond ``max_step_T`` (units of T_ref) and at most halve T.

Projection: without generation and heat, the quasi-Fermi potentials obey a maximum principle: they
stay between the lowest and the highest contact voltage. Updates are projected onto that
range widened by ``qfl_bounds`` V_T (None switches this off, e.g. under illumination). It
keeps the barely-determined quasi-Fermi level of a carrier that is ~1e-15 of the majority
(holes in an n+ layer) from wandering off, which otherwise stalls Newton.

No residual-based line search: tried (Bank–Rose-type backtracking on ||r F||_2), it cut the
steps of a reverse-biased diode with an n+ layer to 1/1000 for ~100 iterations, while
per-component damping with the projection above converges in ~20.
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
    qfl_bounds: float | None = 2.0
    max_step_T: float = 0.1  # lattice temperature updates, units of T_ref (log-damped beyond)
    thermal_lag: float = 1.0  # temperature held while the electrical update exceeds this (V_T)


def log_damp(du, c):
    """Per-component damping: |du_i| > c becomes c (1 + ln(|du_i| / c)), sign kept.

    Per component, not a common factor: the quasi-Fermi potential of a carrier that is
    ~1e-15 of the majority (holes in an n+ layer) is barely determined, and Newton may ask
    it to move by 1e4 V_T; a common factor would then freeze every other unknown.
    """
    a = jnp.abs(du)
    big = a > c
    safe = jnp.where(big, a, c)
    return jnp.where(big, jnp.sign(du) * c * (1.0 + jnp.log(safe / c)), du)


def empty_factorization(asm: Assembler, solver: LinearSolver) -> Factorization:
    return Factorization(vals=jnp.zeros(asm.nnz), r=jnp.ones(asm.n_dof), c=jnp.ones(asm.n_dof),
                         token=jnp.asarray(-1, jnp.int32), aux=solver.empty_aux(asm.nnz))


def newton_solve(asm: Assembler, solver: LinearSolver, u0, params: Params,
                 options: NewtonOptions = NewtonOptions()) -> NewtonResult:
    """Solve F(u; params) = 0 from ``u0``; traceable (jit/vmap).

    The iteration runs on the increment delta = u - ref from a reference state ref = u0, so
    potential differences keep their precision while |delta| is small (Assembler.raw). If a
    solve converges with max|delta| > 1 V_T (a start far from the solution), the state is
    re-based (ref <- ref + delta, delta <- 0) and one more full Newton step is taken, which
    restores that precision for the terminal currents.
    """

    thermal = jnp.zeros(asm.n_dof, bool).at[asm.T_dof].set(True)
    t_entry = thermal[asm.rows] | thermal[asm.cols]
    t_diag = thermal[asm.rows] & (asm.rows == asm.cols)

    def frozen_rows(f, frozen):
        return jnp.where(thermal & frozen, 0.0, f) if asm.heat else f

    def full(ref, u, fact, frozen):
        f, vals = asm.residual_and_jacobian(u, params, ref=ref)
        if asm.heat:  # frozen temperature: T rows become T = current value, decoupled
            vals = jnp.where(frozen & t_entry, jnp.where(t_diag, 1.0, 0.0), vals)
        f = frozen_rows(f, frozen)
        du, fact = solver.factor_solve(vals, -f, asm.rows, asm.cols, asm.near_null_log(ref + u))
        return du, fact, jnp.max(jnp.abs(f * fact.r))

    def chord(ref, u, fact, frozen):
        f = frozen_rows(asm.residual(u, params, ref=ref), frozen)
        du = solver.resolve(fact, -f, asm.rows, asm.cols)
        return du, fact, jnp.max(jnp.abs(f * fact.r))

    carrier = jnp.zeros(asm.n_dof, bool).at[asm.phin_dof].set(True).at[asm.phip_dof].set(True)
    # the maximum principle holds without generation only, and at uniform temperature
    # (thermoelectric voltages may take quasi-Fermi levels beyond the contact voltages)
    margin = jnp.where(jnp.any(params.generation != 0) | asm.heat, jnp.inf, options.qfl_bounds or jnp.inf)

    def project_quasi_fermi(ref, u_try):
        """Keep phi_n, phi_p within the contact voltages +- margin (V_T units)."""
        v = asm.voltages(u_try, params, ref)
        lo, hi = jnp.min(v) - margin, jnp.max(v) + margin
        full_state = ref + u_try
        out = carrier & ((full_state < lo) | (full_state > hi))  # only violators: split stays exact
        return jnp.where(out, jnp.clip(full_state, lo, hi) - ref, u_try)

    v_mask = jnp.zeros(asm.n_dof, bool).at[jnp.where(asm.voltage_dof >= 0, asm.voltage_dof, asm.n_dof)].set(
        True, mode="drop")

    def body(state):
        ref, u, fact, it, nfac, upd, res, status, use_chord, frozen = state
        if options.chord:
            du, fact_new, res_new = jax.lax.cond(use_chord, chord, full, ref, u, fact, frozen)
        else:  # no cond: under vmap a cond runs both branches (and batches the pattern)
            du, fact_new, res_new = full(ref, u, fact, frozen)
        # the temperature waits (frozen) until the electrical update is small: the heat
        # sources of a far-off electrical state are meaningless
        frozen_next = frozen & (jnp.max(jnp.abs(du)) > options.thermal_lag)
        dv = jnp.max(jnp.where(v_mask, jnp.abs(du), 0.0))
        du = du * jnp.where(dv > options.max_step, options.max_step / jnp.where(dv > 0, dv, 1.0), 1.0)
        m = jnp.max(jnp.abs(du))
        finite = jnp.isfinite(m) & jnp.isfinite(res_new)
        du = jnp.where(carrier, jnp.clip(du, -options.max_step, options.max_step),
                       jnp.where(thermal, log_damp(du, options.max_step_T), log_damp(du, options.max_step)))
        if asm.heat:  # the temperature at most halves per step
            du = jnp.where(thermal, jnp.maximum(du, -0.5 * (ref + u)), du)
        if options.qfl_bounds is not None:
            du = project_quasi_fermi(ref, u + du) - u  # exact where not clipped
        running = status < 0
        u_new = jnp.where(running & finite, u + du, u)
        it_new = jnp.where(running, it + 1, it)
        nfac_new = jnp.where(running & ~use_chord, nfac + 1, nfac)
        new_status = jnp.where(~finite, NOT_FINITE,
                               jnp.where((m <= options.tol) & ~frozen, CONVERGED,
                                         jnp.where(it_new >= options.max_iter, MAX_ITER, -1)))
        contracting = jnp.where(use_chord, m <= options.chord_contraction * upd, True)
        next_chord = (options.chord & finite & (m < options.chord_switch) & contracting
                      & (frozen == frozen_next))
        keep = lambda new, old: jnp.where(running, new, old)  # noqa: E731
        return (ref, u_new, jax.tree_util.tree_map(keep, fact_new, fact), it_new, nfac_new,
                keep(m, upd), keep(res_new, res), keep(new_status, status),
                keep(next_chord, use_chord), keep(frozen_next, frozen))

    def cond(state):
        return jnp.any(state[7] < 0)

    zero = jnp.asarray(0)
    state = (u0, jnp.zeros_like(u0), empty_factorization(asm, solver), zero, zero, jnp.asarray(jnp.inf),
             jnp.asarray(jnp.inf), jnp.asarray(-1), jnp.asarray(False), jnp.asarray(asm.heat))
    ref, delta, fact, it, nfac, upd, res, status, _, _ = jax.lax.while_loop(cond, body, state)
    rebase = (status == CONVERGED) & (jnp.max(jnp.abs(delta)) > 1.0)
    # after re-basing, a full step: a chord step's error reduction (~1e-2) would not remove
    # the rounding of the collapsed state, and its tiny update would pass the test at once
    state = (jnp.where(rebase, ref + delta, ref), jnp.where(rebase, 0.0, delta), fact, it, nfac,
             upd, res, jnp.where(rebase, -1, status), jnp.asarray(False), jnp.asarray(False))
    ref, delta, fact, it, nfac, upd, res, status, _, _ = jax.lax.while_loop(cond, body, state)
    return NewtonResult(u=ref + delta, ref=ref, delta=delta, status=status, iterations=it,
                        factorizations=nfac, residual=res, update=upd, factorization=fact)
