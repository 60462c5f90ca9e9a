"""Batched members (``pvsim sweep --batch``): the members of one task advanced together with
``jax.vmap`` of :meth:`~pvsim.device.Device.solve_pure`, one bias point at a time.

For one GPU (or many small devices on a CPU): the members of a task share a mesh and a compiled
structure and differ only in parameters, so their parameter pytrees stack along a batch axis
and one vmapped Newton solve (a ``lax.while_loop`` around a linear-solve primitive with a
batching rule) advances all of them. Each bias point is reached from the same converged point
in every member (the nearest, as in :mod:`pvsim.sweep`) with the tangent predictor, then a
retry from the unpredicted state; a member that still fails leaves the batch and finishes on
the serial path (step halving, :mod:`pvsim.campaign_worker`), which continues from the points
it has checkpointed. Every converged point is checkpointed as in the serial path.

Members with current-controlled contacts, with points already checkpointed (a resumed member)
or with another bias list than the first member's run serially. Batched results agree with the
serial path to the Newton tolerance, not bit for bit (the Newton iteration differs: no chord
steps under vmap).
"""

from __future__ import annotations

import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .campaign_store import Store


def _batched(dev):
    """vmapped, jitted (guess, solve, tangent) of a compiled device, built once per device."""
    fns = dev.__dict__.get("_campaign_batched")
    if fns is None:  # the topology is an argument shared by the batch (see Device.topology)
        solve = jax.jit(jax.vmap(lambda t, u, p: dev.solve_pure(u, p, topology=t), in_axes=(None, 0, 0)))
        tangent = jax.jit(jax.vmap(lambda t, u, p, dp: dev._tangent_impl(u, p, dp, topology=t),
                                   in_axes=(None, 0, 0, 0)))
        fns = (jax.jit(jax.vmap(dev._guess_impl)), partial(solve, dev.topology),
               partial(tangent, dev.topology))
        dev.__dict__["_campaign_batched"] = fns
    return fns


def _stack(trees):
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


def batch_sweep(dev, devices: list, bases: list, names: list[str], targets: list, options, store: Store):
    """Advance ``devices`` (one per member, same structure as the compiled ``dev``; ``bases``
    their bias-independent parameters) through ``targets`` together. Returns ({name:
    SweepResult} of members that finished in the batch, [names that left it])."""
    from .sweep import BiasPoint, PointResult, SweepResult, _current_controlled

    guess_b, solve_b, tangent_b = _batched(dev)
    k_contacts = len(dev.contacts)
    left: list[str] = []
    active = list(range(len(devices)))

    def params(k, b):
        dev.set_base_params(bases[k])
        return dev.params(b.voltage, b.current, b.hold)

    def points(res, idx, bias, sub, t0, p):
        wall = (time.perf_counter() - t0) / max(len(idx), 1)
        out = {}
        for row, k in enumerate(idx):
            out[k] = PointResult(
                bias=bias, u=res.u[row], observables=dev.observe(res.ref[row], p[row], res.delta[row]),
                iterations=int(res.iterations[row]) + sub[row][0], factorizations=int(res.factorizations[row])
                + sub[row][1], residual=float(res.residual[row]), update=float(res.update[row]),
                substeps=1 + sub[row][2], wall_time=wall, factorization=None)
        return out

    t0 = time.perf_counter()
    eq_bias = BiasPoint(np.zeros(k_contacts), np.zeros(k_contacts), _current_controlled(dev))
    ps = [params(k, eq_bias) for k in active]
    res = solve_b(guess_b(_stack(ps)), _stack(ps))
    ok = np.asarray(res.converged)
    done = {k: [] for k in active}  # converged points of each member, equilibrium first
    eqs = points(res, active, eq_bias, [(0, 0, 0)] * len(active), t0, ps)
    for row, k in enumerate(list(active)):
        if not ok[row]:
            left.append(names[k])
            active.remove(k)
            continue
        store.save_point(names[k], None, eqs[k], -1)
        done[k].append(eqs[k])
    for i, target in enumerate(targets):
        if not active:
            break
        t0 = time.perf_counter()
        vec = target.vector()
        ref = done[active[0]]
        j = min(range(len(ref)), key=lambda m: np.max(np.abs(ref[m].bias.vector() - vec)))
        p0 = [params(k, done[k][j].bias) for k in active]
        p1 = [params(k, target) for k in active]
        p0 = [type(a)(**{**a.__dict__, "hold_voltage": b.hold_voltage}) for a, b in zip(p0, p1)]
        P0, P1 = _stack(p0), _stack(p1)
        dP = jax.tree_util.tree_map(lambda a, b: b - a, P0, P1)
        U0 = jnp.stack([done[k][j].u for k in active])
        step = tangent_b(U0, P0, dP)
        size = jnp.max(jnp.abs(step), axis=1)
        cap = jnp.maximum(options.max_prediction, 2.0 * jnp.max(jnp.abs(dP.voltage), axis=1))
        scale = jnp.where(jnp.isfinite(size), jnp.minimum(1.0, cap / jnp.maximum(size, 1e-300)), 0.0)
        res = solve_b(U0 + step * scale[:, None], P1)
        sub = [(0, 0, 0)] * len(active)
        if not bool(jnp.all(res.converged)):  # retry every member from its unpredicted state
            first = res
            retry = solve_b(U0, P1)
            use = first.converged
            res = jax.tree_util.tree_map(
                lambda a, b: jnp.where(use.reshape((-1,) + (1,) * (a.ndim - 1)), a, b), first, retry)
            sub = [(0, 0, 0) if bool(use[r]) else (int(first.iterations[r]), int(first.factorizations[r]), 1)
                   for r in range(len(active))]
        ok = np.asarray(res.converged)
        got = points(res, active, target, sub, t0, p1)
        for row, k in enumerate(list(active)):
            if not ok[row]:  # the serial path halves the step from the points saved so far
                left.append(names[k])
                active.remove(k)
                continue
            store.save_point(names[k], i, got[k], j)
            done[k].append(got[k])
    out = {names[k]: SweepResult(device=devices[k], equilibrium=done[k][0], points=done[k][1:])
           for k in active}
    return out, left
