"""Implicit adjoint of a steady state: exact gradients without differentiating Newton.

A converged state u*(theta) satisfies F(u*, theta) = 0, so (implicit function theorem)

    du*/dtheta = -J^-1 dF/dtheta,    J = dF/du at u*,

and for a scalar figure g(u*, theta) the reverse-mode product is

    theta_bar = -lambda^T dF/dtheta,    J^T lambda = u_bar.

:func:`make_steady_state` wraps the Newton solve of a :class:`~pvsim.device.Device` in a
``jax.custom_vjp`` that does exactly this: the backward pass assembles J at u*, solves the
transposed system with the factors the forward Newton left (PARDISO and KLU solve with
J^T from the factors of J), refined against the exact J^T until the residual is 1e-13 of
u_bar (a fresh factorisation only if that fails), and pulls lambda back through ``jax.vjp``
of the residual with respect to the parameters. Newton iterations are never differentiated (DESIGN.md,
"Adjoint"). If the forward solve did not converge, the gradient is NaN: a gradient of an
unconverged state means nothing.

Any leaf of :class:`~pvsim.params.Params` can be differentiated: material arrays (mobility,
lifetimes, band parameters per region), the per-site doping and generation, contact
voltages, set currents and work functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from .newton import CONVERGED


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class SteadyState:
    """A converged state as reference + increment (see :mod:`pvsim.newton`).

    Consumers use ``u`` (= ref + delta) or the split differences of
    :meth:`pvsim.assembly.Assembler.raw`; both depend on ref and delta only through their
    sum, so the cotangents of the two parts are equal and the adjoint takes delta's.
    """

    ref: jax.Array
    delta: jax.Array
    status: jax.Array

    @property
    def u(self):
        return self.ref + self.delta


def make_steady_state(device, chord: bool = False):
    """``solve(u0, params, topology=None) -> SteadyState`` with an implicit-adjoint VJP.

    ``u0`` is the Newton start (a nearby converged state); it receives no gradient.
    Chord steps are off by default so that the function can also be vmapped. On large meshes
    pass ``topology=device.topology`` through the arguments of the jitted function that calls
    ``solve``, as for :meth:`~pvsim.device.Device.solve_pure`: the index arrays then stay out
    of the compiled program (they receive no gradient).
    """
    def run(topology, u0, params):
        res = device.solve_pure(u0, params, chord, topology)
        return SteadyState(res.ref, res.delta, res.status), res.factorization

    @jax.custom_vjp
    def steady(topology, u0, params):
        return run(topology, u0, params)[0]

    def fwd(topology, u0, params):
        state, fact = run(topology, u0, params)
        return state, (topology, state, params, fact)

    def adjoint(asm, solver, vals, fact, u_bar):
        """lambda with J^T lambda = u_bar: refine with the forward's last factors of J (taken
        within one Newton update of u*, so a step or two suffices); factorise afresh only
        if that does not converge."""
        n = asm.n_dof

        def residual(lam):
            return u_bar - jax.ops.segment_sum(vals * lam[asm.rows], asm.cols, num_segments=n)

        def refine(carry):
            lam, r, k = carry
            lam = lam + solver.resolve_transpose(fact, r, asm.rows, asm.cols)
            return lam, residual(lam), k + 1

        scale = jnp.max(jnp.abs(u_bar))
        small = lambda c: jnp.max(jnp.abs(c[1])) <= 1e-13 * scale  # noqa: E731
        lam0 = jnp.zeros_like(u_bar)
        lam, r, _ = jax.lax.while_loop(lambda c: ~small(c) & (c[2] < 8), refine,
                                       (lam0, u_bar, 0))

        def fresh(_):
            _, f2 = solver.factor_solve(vals, jnp.zeros_like(u_bar), asm.rows, asm.cols)
            return solver.resolve_transpose(f2, u_bar, asm.rows, asm.cols)

        return jax.lax.cond(small((lam, r, 0)), lambda _: lam, fresh, None)

    def bwd(saved, state_bar):
        topology, state, params, fact = saved
        asm, solver = device._bind(topology)
        ref, delta = state.ref, state.delta
        _, vals = asm.residual_and_jacobian(delta, params, ref=ref)
        lam = adjoint(asm, solver, vals, fact, state_bar.delta)
        _, pullback = jax.vjp(lambda p: asm.residual(delta, p, ref=ref), params)
        (p_bar,) = pullback(-lam)
        ok = state.status == CONVERGED
        p_bar = jax.tree_util.tree_map(lambda g: jnp.where(ok, g, jnp.nan), p_bar)
        return None, jnp.zeros_like(delta), p_bar  # None: no cotangent for the topology

    steady.defvjp(fwd, bwd)

    def solve(u0, params, topology=None):
        return steady(device.topology if topology is None else topology, u0, params)

    return solve
