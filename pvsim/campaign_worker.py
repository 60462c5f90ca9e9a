"""The worker side of a parameter sweep: the members of one task, on one compiled device.

A task holds the members that share a mesh. The first member's :class:`~pvsim.device.Device`
is compiled (JIT) once; every later member whose device differs only in parameters
(materials, doping, work functions, interface and heat coefficients) is solved on that
device with :meth:`~pvsim.device.Device.set_base_params`, so nothing recompiles. A member
whose compiled structure differs (temperature, statistics, contact kinds, solver options)
gets its own device. Compiled devices are kept per worker thread (the last
``CACHE_SIZE`` meshes), so a later task or sweep on the same mesh in the same worker, a
resumed run in the same process for instance, compiles nothing either.

Each member's bias sweep is the continuation of :mod:`pvsim.sweep` (equilibrium, then each
target from the nearest converged point), run here point by point so that every converged
point is checkpointed as it completes and a resumed member continues where it stopped. To
make a resumed member bit-for-bit equal to an uninterrupted one, the continuation restarts
at every bias point from the stored state alone: the tangent predictor refactorises the
Jacobian there instead of reusing the last Newton factorisation (which cannot be stored).
That costs one extra factorisation per bias point; results agree with ``pvsim run`` to the
Newton tolerance, and with each other (fresh or resumed, any worker) exactly.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections import OrderedDict
from dataclasses import replace

import numpy as np

from .campaign_store import Store, Superseded


CACHE_SIZE = 2  # compiled devices kept per worker thread
_local = threading.local()


def _compiled() -> OrderedDict:
    """This thread's compiled devices: {id: (mesh key, device)}, least recently used first."""
    if not hasattr(_local, "devices"):
        _local.devices = OrderedDict()
    return _local.devices


def _remember(mesh_key: str, dev) -> None:
    cache = _compiled()
    cache[id(dev)] = (mesh_key, dev)
    cache.move_to_end(id(dev))
    while len(cache) > CACHE_SIZE:
        cache.popitem(last=False)


def run_task(task: dict, progress=None) -> list[dict]:
    """Run the members of one task; returns their records (also written to the store).

    ``task``: ``{"root", "token", "base_dir", "batch", "members": [{"name", "case", "values",
    "task_key"}, ...]}``, plain data. Members already finished (a record in the store) are
    skipped. With ``batch`` the members go through :mod:`pvsim.campaign_batch` (vmap) where
    they can. ``progress(record)`` is called after each member (in-process runs only).
    """
    from .units import enable_x64

    enable_x64()
    store = Store(task["root"], task["token"])
    records, todo = [], []
    for member in task["members"]:
        done = store.record(member["name"])
        if done is not None:
            records.append(done)
        else:
            todo.append(member)
    if task.get("batch") and len(todo) > 1:
        todo = _run_batched(todo, store, task["base_dir"], records, progress)
    for member in todo:
        record = _run_member(member, store, task["base_dir"])
        records.append(record)
        if progress is not None:
            progress(record)
    return records


def _record(member, status, reason, t0, **extra) -> dict:
    return {"name": member["name"], "values": member["values"], "status": status, "reason": reason,
            "wall_time": time.perf_counter() - t0, **extra}


def _prepare(member: dict, store: Store, base_dir: str, t0):
    """(case, device, targets, compiled device or None) of a member, or its failure record."""
    from .case import CaseError, build_device, load_case, sweep_targets
    from .mesh import MeshError

    case = member["case"]
    key = base_dir + "|" + json.dumps([case.get("mesh"), case.get("geometry")], sort_keys=True, default=str)
    same_mesh = [d for k, d in _compiled().values() if k == key]
    try:
        cfg, base = load_case(case, base_dir)
        dev = build_device(cfg, base, mesh=same_mesh[-1].mesh if same_mesh else None)
        targets = sweep_targets(cfg, dev)
    except (CaseError, MeshError, ValueError) as exc:
        rec = _record(member, "failed", f"case or mesh: {exc}", t0, n_points=0, compiled=False)
        store.finish_member(member["name"], None, rec)
        return rec
    solver = next((d for d in reversed(same_mesh) if same_compiled_structure(d, dev)), None)
    if solver is not None:
        solver.set_base_params(dev.params())
        _compiled().move_to_end(id(solver))
    else:
        solver = dev
        _remember(key, dev)
    return cfg, dev, targets, solver


def _finish(member: dict, store: Store, dev, result, t0, compiled: bool) -> dict:
    """Write a member's Dataset and record (the result of its bias sweep)."""
    from .io import to_dataset

    result.device = dev  # the member's own materials and scales, for the Dataset
    ds = to_dataset(result, case_text=json.dumps(member["case"], sort_keys=True, default=str))
    ds.attrs.update(sweep_member=member["name"], sweep_values=json.dumps(member["values"], sort_keys=True))
    status = "ok" if result.ok else "stopped"
    rec = _record(member, status, result.failure, t0, n_points=len(result.points), compiled=compiled)
    store.finish_member(member["name"], ds, rec)
    return rec


def _run_member(member: dict, store: Store, base_dir: str) -> dict:
    """The record of one member; failures become records, never exceptions."""
    from .sweep import SweepFailure, SweepOptions

    t0 = time.perf_counter()
    name = member["name"]
    prepared = _prepare(member, store, base_dir, t0)
    if isinstance(prepared, dict):
        return prepared
    cfg, dev, targets, solver = prepared
    options = SweepOptions(predictor=cfg.solver.predictor)
    try:
        result = member_sweep(solver, targets, options, store, name)
    except Superseded:
        raise
    except SweepFailure as exc:
        rec = _record(member, "failed", str(exc), t0, n_points=0, compiled=solver is dev)
        store.finish_member(name, None, rec)
        return rec
    except Exception as exc:  # noqa: BLE001 - one member's crash must not stop the sweep
        tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
        rec = _record(member, "failed", f"unexpected error: {tb}", t0, n_points=0, compiled=solver is dev)
        store.finish_member(name, None, rec)
        return rec
    return _finish(member, store, dev, result, t0, solver is dev)


def _run_batched(todo: list, store: Store, base_dir: str, records: list, progress) -> list:
    """Run what can be batched; return the members left for the serial path."""
    from .campaign_batch import batch_sweep
    from .sweep import SweepOptions

    t0 = time.perf_counter()
    ready, serial = [], []
    for member in todo:
        prepared = _prepare(member, store, base_dir, t0)
        if isinstance(prepared, dict):
            records.append(prepared)
            if progress is not None:
                progress(prepared)
            continue
        # the member's own parameters, now: preparing the next member re-points the shared device
        ready.append((member, *prepared, prepared[1].params()))
    if not ready:
        return []
    solver, first = ready[0][4], ready[0][3]
    batch = []
    for member, cfg, dev, targets, _, base in ready:
        fits = (same_compiled_structure(solver, dev) and cfg.solver.predictor == "tangent"
                and len(targets) == len(first)
                and all(np.array_equal(a.vector(), b.vector()) for a, b in zip(targets, first))
                and not any(c.control == "current" for c in dev.contacts)
                and store.load_points(member["name"])[0] is None)
        (batch if fits else serial).append((member, dev, base))
    if len(batch) < 2:
        return [m for m, *_ in serial] + [m for m, *_ in batch]
    try:
        results, left = batch_sweep(solver, [d for _, d, _ in batch], [b for *_, b in batch],
                                    [m["name"] for m, *_ in batch], first, SweepOptions(), store)
    except Superseded:
        raise
    except Exception:  # noqa: BLE001 - the serial path reports a member's own error
        results, left = {}, [m["name"] for m, _ in batch]
    for member, dev, _ in batch:
        if member["name"] in results:
            rec = _finish(member, store, dev, results[member["name"]], t0, False)
            records.append(rec)
            if progress is not None:
                progress(rec)
    return [m for m, *_ in serial] + [m for m, *_ in batch if m["name"] in left]


def same_compiled_structure(a, b) -> bool:
    """Whether device ``b`` can be solved by ``a``'s compiled functions with ``b``'s parameters:
    same mesh, scales, statistics, layout, contact kinds, interface models, heat set-up,
    Newton and linear-solver options, and parameter pytrees of the same structure and shapes."""
    import jax

    if a is b:
        return True
    ma, mb = a.mesh, b.mesh
    if not (ma.points.shape == mb.points.shape and np.array_equal(ma.points, mb.points)
            and ma.axisymmetric == mb.axisymmetric
            and list(ma.regions) == list(mb.regions) and list(ma.boundaries) == list(mb.boundaries)
            and all(np.array_equal(ma.regions[k], mb.regions[k]) for k in ma.regions)
            and all(np.array_equal(ma.boundaries[k], mb.boundaries[k]) for k in ma.boundaries)):
        return False

    def interface(i):
        return (tuple(i.regions), i.model, i.velocity, i.organic_region, i.split,
                i.thermal_conductance_MW_m2K is None)

    def heat(h):
        return None if h is None else tuple((t.name, t.kind) for t in h.boundaries)

    same = (a.temperature_K == b.temperature_K and a.L_ref == b.L_ref and a.statistics == b.statistics
            and a.newton == b.newton and a.linear_solver == b.linear_solver
            and [(c.name, c.kind, c.control) for c in a.contacts]
            == [(c.name, c.kind, c.control) for c in b.contacts]
            and [m.is_semiconductor for m in a.region_specs] == [m.is_semiconductor for m in b.region_specs]
            and [interface(i) for i in a.interfaces] == [interface(i) for i in b.interfaces]
            and heat(a.heat) == heat(b.heat) and a.asm.n_dof == b.asm.n_dof)
    if not same:
        return False
    pa, pb = a.params(), b.params()
    la, ta = jax.tree_util.tree_flatten(pa)
    lb, tb = jax.tree_util.tree_flatten(pb)
    return ta == tb and all(np.shape(x) == np.shape(y) for x, y in zip(la, lb))


def member_sweep(dev, targets, options, store: Store, name: str):
    """The bias sweep of one member (the loop of :func:`pvsim.sweep.run_sweep`), with every
    converged point checkpointed and points already in the store taken from it."""
    from .sweep import SweepResult, solve_equilibrium, to_target

    eq, restored, starts = store.load_points(name)
    if eq is None:
        eq = _detached(solve_equilibrium(dev))
        store.save_point(name, None, eq, -1)
    out = SweepResult(device=dev, equilibrium=eq)
    done = [eq]
    came_from: list[int | None] = [None]  # done[k] was reached from done[came_from[k]]
    for i, target in enumerate(targets):
        vec = target.vector()
        if i < len(restored) and np.array_equal(restored[i].bias.vector(), vec):
            out.points.append(restored[i])
            done.append(restored[i])
            came_from.append(starts[i])
            continue
        restored = restored[:i]
        k = min(range(len(done)), key=lambda j: np.max(np.abs(done[j].bias.vector() - vec)))
        prev = done[came_from[k]] if came_from[k] is not None else None
        result, reason = to_target(dev, done[k], target, prev, options)
        if result is None:
            v = ", ".join(f"{c}={x:g} V" for c, x in zip(dev.contact_names, target.voltage))
            out.failure = (f"bias point {i} ({v}) failed: {reason}. "
                           f"{len(out.points)} converged point(s) kept.")
            break
        result = _detached(result)
        store.save_point(name, i, result, k)
        out.points.append(result)
        done.append(result)
        came_from.append(k)
    return out


def _detached(point):
    """The point without its Newton factorisation: what a resumed run can have too."""
    return replace(point, factorization=None)
