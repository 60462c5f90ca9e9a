"""Batched solves: vmap over doping variants sharing one mesh, against the same solves in series.

    python scripts/bench_vmap.py                              # 64 variants, 2D diode mesh
    python scripts/bench_vmap.py --variants 8 --solver klu    # smaller, another back end

The case is cases/diode_2d.toml; ``--resolution`` refines its mesh (pvsim.geometry.diode_2d)
to reach >= 1e4 nodes. Variant k scales the doping by a factor between 0.5 and 2 and is
solved at 0.3 V forward bias from the nominal equilibrium (one Newton solve each, chord
steps off). Printed: the time of the 64 serial solves (one compiled solve, called 64
times), of one vmapped solve of all 64, the throughput ratio, and the largest relative
difference of the terminal currents between the two.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variants", type=int, default=64)
    ap.add_argument("--solver", default="auto")
    ap.add_argument("--h", type=float, default=0.02, help="mesh size (um) away from the junction")
    ap.add_argument("--mesh", type=Path, help="a diode_2d mesh made beforehand (no gmsh needed; --h unused)")
    args = ap.parse_args()
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    from pvsim.case import build_device, load_case
    from pvsim.units import enable_compilation_cache

    enable_compilation_cache()
    msh = args.mesh.resolve() if args.mesh else None
    if msh is None:
        from pvsim.geometry import diode_2d

        (ROOT / "build").mkdir(exist_ok=True)
        msh = ROOT / "build" / f"diode_2d_vmap_{args.h}.msh"
        diode_2d(h=args.h, h_junction=args.h / 5, msh_path=msh)
    case, base = load_case(ROOT / "cases" / "diode_2d.toml")
    data = case.model_dump(exclude_unset=True)
    data["mesh"]["file"] = str(msh)
    data.setdefault("solver", {})["linear_solver"] = args.solver
    case, _ = load_case(data, base)
    dev = build_device(case, base)
    print(f"JAX {jax.default_backend()}; {dev.mesh.n_nodes} nodes, {dev.asm.n_dof} unknowns, "
          f"back end {type(dev.solver).__name__}, {args.variants} variants")
    p0 = dev.params(np.zeros(2))
    eq = dev.solve(dev.initial_guess(p0), p0)
    assert bool(eq.converged)
    p1 = dev.params(np.array([0.3, 0.0]))
    factors = np.geomspace(0.5, 2.0, args.variants)
    batch = jax.tree_util.tree_map(lambda x: jnp.stack([x] * args.variants), p1)
    batch = replace(batch, doping=jnp.asarray(factors)[:, None] * p1.doping[None, :])

    solve = jax.jit(lambda u, p: dev.solve_pure(u, p))
    one = lambda k: jax.tree_util.tree_map(lambda x: x[k], batch)  # noqa: E731
    r = solve(eq.u, one(0))
    jax.block_until_ready(r.u)  # compile
    t0 = time.perf_counter()
    serial = []
    for k in range(args.variants):
        r = solve(eq.u, one(k))
        jax.block_until_ready(r.u)
        serial.append(r)
    t_serial = time.perf_counter() - t0

    vsolve = jax.jit(jax.vmap(lambda p: dev.solve_pure(eq.u, p)))
    rb = vsolve(batch)
    jax.block_until_ready(rb.u)  # compile
    t0 = time.perf_counter()
    rb = vsolve(batch)
    jax.block_until_ready(rb.u)
    t_vmap = time.perf_counter() - t0

    i_s = np.array([dev.observe(r.ref, one(k), r.delta)["current"][0] for k, r in enumerate(serial)])
    i_v = np.array([dev.observe(rb.ref[k], one(k), rb.delta[k])["current"][0] for k in range(args.variants)])
    ok = bool(np.all(np.asarray(rb.status) == 0)) and all(bool(r.converged) for r in serial)
    print(f"serial: {t_serial:.2f} s ({t_serial / args.variants * 1e3:.1f} ms per solve); "
          f"vmap: {t_vmap:.2f} s; throughput ratio vmap/serial {t_serial / t_vmap:.2f} (GPU target >= 8)")
    print(f"all converged: {ok}; currents vmap vs serial: max relative difference "
          f"{np.max(np.abs(i_v - i_s) / np.abs(i_s)):.1e}")
    if not ok:
        from pvsim.newton import STATUS_TEXT

        print("status per variant (vmap / serial, Newton iterations):",
              [(STATUS_TEXT[int(a)], STATUS_TEXT[int(r.status)], int(i)) for a, r, i
               in zip(np.asarray(rb.status), serial, np.asarray(rb.iterations))])


if __name__ == "__main__":
    main()
