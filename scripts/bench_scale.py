"""Scaling of a 3D NC-monolayer electrothermal bias point with mesh size and linear back end.

    python scripts/bench_scale.py                        # ~1e4 nodes, back ends auto and gmres-ilu
    python scripts/bench_scale.py --sizes 1e4 1e5        # add ~1e5 nodes
    python scripts/bench_scale.py --full                 # 1e4, 1e5 and 1e6 nodes
    python scripts/bench_scale.py --solvers pardiso gmres-ilu jax-gmres
    python scripts/bench_scale.py --memory --sizes 1e4 1e5 --solvers jax-air   # XLA's estimate only

The case is cases/nc_monolayer_2d.toml made 3D: a square lattice of n x n CsPbBr3 nanocubes
(9 nm, 1.5 nm ligand shells) between PEDOT:PSS/TFB below and TPBi above, structured Kuhn
tetrahedra (pvsim.geometry.nc_monolayer, structured=True), heat on: a heat sink at 300 K on
the anode, Robin h = 1e5 W/(m^2 K) on the cathode. Size is set by the mesh resolution and
the number of cubes. Each size sweeps the anode 0 -> 2.5 V in 0.5 V steps from equilibrium.

Printed per size and back end: nodes, unknowns, time per bias point (median over the warm
points: the first bias point, which compiles the continuation, is left out), Newton
iterations per point (linear solves / factorisations), the share of the time spent in the
linear solve (host back ends: time inside the solve callbacks; device-resident back ends:
not separable, "-"), Krylov iterations per solve (host Krylov and jax-amg), and the peak memory (host:
max RSS of the process; GPU: peak bytes in use on the device).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import tomllib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BIASES = [0.5, 1.0, 1.5, 2.0, 2.5]
#: target size -> (resolution, cubes per side)
SIZES = {"2e3": (0.5, 1), "1e4": (1.25, 1), "1e5": (2.0, 2), "1e6": (2.0, 6)}


def case_dict(resolution: float, n: int, solver: str = "auto") -> dict:
    """cases/nc_monolayer_2d.toml made 3D (n x n cubes) with heat."""
    d = tomllib.loads((ROOT / "cases" / "nc_monolayer_2d.toml").read_text())
    d["simulation"]["name"] = "nc_monolayer_3d_heat"
    d["geometry"].update(dim=3, resolution=resolution, n_x=n, n_y=n)
    d["heat"] = {"escape_fraction": 0.2, "boundaries": [
        {"name": "anode", "type": "fixed", "temperature_K": 300.0},
        {"name": "cathode", "type": "robin", "temperature_K": 300.0, "h_W_m2K": 1e5}]}
    d.setdefault("solver", {})["linear_solver"] = solver
    return d


def build(resolution: float, n: int, solver: str):
    from pvsim.case import build_device, load_case

    case, base = load_case(case_dict(resolution, n, solver), ROOT / "cases")
    return build_device(case, base)


def peak_memory() -> str:
    import jax

    dev = jax.devices()[0]
    if dev.platform == "gpu":
        stats = dev.memory_stats() or {}
        return f"{stats.get('peak_bytes_in_use', 0) / 2**30:.2f} GiB (GPU)"
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB (RSS)"


def run(size: str, solver: str, biases=BIASES) -> dict:
    from pvsim import amg, krylov
    from pvsim.linalg import host_stats
    from pvsim.sweep import BiasPoint, run_sweep

    res, n = SIZES[size]
    amg.record_stats = True  # FGMRES iterations of jax-amg (one host callback per solve)
    t0 = time.perf_counter()
    dev = build(res, n, solver)
    t_build = time.perf_counter() - t0
    host_stats.update(calls=0, seconds=0.0)
    krylov.krylov_stats.update(solves=0, iterations=0, not_converged=0, setups=0)
    targets = [BiasPoint(np.array([v, 0.0]), np.zeros(2)) for v in biases]
    t0 = time.perf_counter()
    def progress(i, point):
        print(f"      {size} {solver}: {biases[i]} V after {time.perf_counter() - t0:.1f} s "
              f"({point.iterations} Newton its, {point.wall_time:.2f} s)", flush=True)

    print(f"      {size} {solver}: built in {t_build:.1f} s ({dev.asm.n_dof} unknowns)", flush=True)
    out = run_sweep(dev, targets, progress=progress)
    t_sweep = time.perf_counter() - t0
    points = out.points[1:] if len(out.points) > 1 else out.points
    # linear-solve share over the whole sweep (host back ends)
    share = host_stats["seconds"] / t_sweep if host_stats["calls"] else float("nan")
    times = np.array([p.wall_time for p in points])
    its = np.array([p.iterations for p in points])
    facs = np.array([p.factorizations for p in points])
    ks = krylov.krylov_stats
    kry = ks["iterations"] / ks["solves"] if ks["solves"] else float("nan")
    mean = lambda x: float(np.mean(x)) if len(x) else float("nan")  # noqa: E731
    return dict(size=size, nodes=dev.mesh.n_nodes, unknowns=dev.asm.n_dof, solver=type(dev.solver).__name__,
                name=solver, ok=out.ok, failure=out.failure,
                t_point=float(np.median(times)) if len(times) else float("nan"),
                its=mean(its), facs=mean(facs), share=share, krylov=kry,
                not_conv=ks["not_converged"], memory=peak_memory(), build=t_build, sweep=t_sweep,
                current=[float(p.observables["current"][0]) for p in out.points],
                lu_nnz=dev.solver.fill() if hasattr(dev.solver, "fill") else None,
                matrix_nnz=len(dev.asm.rows),
                T_max=float(out.points[-1].observables.get("T_max", np.nan)))


def compiled_memory(size: str, solver: str) -> dict:
    """Device memory of one bias point's Newton solve (the jitted program of ``Device.solve``),
    from XLA's buffer assignment of the compiled program on this platform, without running it:
    arguments (mesh topology incl. the solver's index arrays, state, parameters), outputs and
    the temporaries' peak. On the CPU this estimates a GPU's need at sizes the host can build
    but the device cannot yet be asked about."""
    import jax

    res, n = SIZES[size]
    t0 = time.perf_counter()
    dev = build(res, n, solver)
    p = dev.params()
    compiled = dev._solve.lower(dev.topology, dev.initial_guess(p), p).compile()
    m = compiled.memory_analysis()
    gib = lambda b: b / 2**30  # noqa: E731
    solver_idx = sum(a.nbytes for a in jax.tree.leaves(dev.topology[1]))
    return dict(size=size, name=solver, nodes=dev.mesh.n_nodes, unknowns=dev.asm.n_dof, matrix_nnz=len(dev.asm.rows),
                arguments=gib(m.argument_size_in_bytes), solver_index=gib(solver_idx),
                outputs=gib(m.output_size_in_bytes), temporaries=gib(m.temp_size_in_bytes),
                total=gib(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
                          - m.alias_size_in_bytes), seconds=time.perf_counter() - t0)


def compare(path_a: Path, path_b: Path) -> int:
    """Largest relative differences of the currents (every bias point) and of T_max between
    the rows of two --json files with the same size (e.g. one run on the GPU, one on the CPU)."""
    a, b = (json.loads(Path(p).read_text()) for p in (path_a, path_b))
    for ra in a:
        for rb in b:
            if ra["size"] != rb["size"] or not (ra["ok"] and rb["ok"]):
                continue
            ia, ib = np.array(ra["current"]), np.array(rb["current"])
            mask = np.abs(ia) > 1e-30
            di = np.max(np.abs(ia - ib)[mask] / np.abs(ia)[mask])
            dt = abs(ra["T_max"] - rb["T_max"]) / ra["T_max"]
            print(f"{ra['size']}: {ra['name']} ({path_a.name}) vs {rb['name']} ({path_b.name}): currents "
                  f"max relative difference {di:.1e} over {mask.sum()} bias points, T_max {dt:.1e}")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["1e4"], choices=list(SIZES))
    ap.add_argument("--full", action="store_true", help="sizes 1e4, 1e5 and 1e6")
    ap.add_argument("--solvers", nargs="+", default=["auto", "gmres-ilu"])
    ap.add_argument("--biases", nargs="+", type=float, default=BIASES, help="anode voltages of the sweep (V)")
    ap.add_argument("--json", type=Path, help="write the rows (currents in full precision) to this file")
    ap.add_argument("--compare", type=Path, nargs=2, metavar=("A", "B"),
                    help="only compare the currents and T_max of two --json files (e.g. GPU and CPU)")
    ap.add_argument("--memory", action="store_true",
                    help="only compile each size's Newton solve and print XLA's memory estimate (GiB)")
    args = ap.parse_args()
    if args.compare:
        return compare(*args.compare)
    import jax

    jax.config.update("jax_enable_x64", True)
    from pvsim.units import enable_compilation_cache

    enable_compilation_cache()
    sizes = list(SIZES) if args.full else args.sizes
    print(f"JAX platform: {jax.default_backend()} ({jax.devices()[0].device_kind})")
    if args.memory:
        print(f"{'size':>5} {'unknowns':>9} {'nnz':>11} {'back end':>10} {'arguments':>9} {'solver idx':>10} "
              f"{'outputs':>8} {'temp':>8} {'total':>8}  GiB")
        rows = []
        for size in sizes:
            for solver in args.solvers:
                r = compiled_memory(size, solver)
                rows.append(r)
                print(f"{size:>5} {r['unknowns']:9d} {r['matrix_nnz']:11d} {solver:>10} {r['arguments']:9.3f} "
                      f"{r['solver_index']:10.3f} {r['outputs']:8.3f} {r['temporaries']:8.3f} {r['total']:8.3f}"
                      f"  (built and compiled in {r['seconds']:.0f} s)", flush=True)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
        return 0
    print(f"{'size':>5} {'nodes':>8} {'unknowns':>9} {'back end':>10} {'s/point':>8} {'Newton it':>9} "
          f"{'LU':>5} {'lin %':>6} {'Krylov it':>9} {'peak memory':>18}  ok")
    rows = []
    for size in sizes:
        for solver in args.solvers:
            r = run(size, solver, args.biases)
            rows.append(r)
            print(f"{r['size']:>5} {r['nodes']:8d} {r['unknowns']:9d} {r['name']:>10} {r['t_point']:8.2f} "
                  f"{r['its']:9.1f} {r['facs']:5.1f} {100 * r['share']:6.1f} {r['krylov']:9.1f} "
                  f"{r['memory']:>18}  {r['ok']} (build {r['build']:.1f} s, sweep {r['sweep']:.1f} s, "
                  f"T_max {r['T_max']:.2f} K, I({args.biases[-1]} V) {r['current'][-1]:.6e} A, "
                  f"nnz {r['matrix_nnz']}, LU nnz {r['lu_nnz']})", flush=True)
            if not r["ok"]:
                print(f"      failure: {r['failure']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    by_size = {}
    for r in rows:
        by_size.setdefault(r["size"], []).append(r)
    for size, rs in by_size.items():
        ok = [r for r in rs if r["ok"]]
        if len(ok) > 1:
            ref = np.array(ok[0]["current"])
            for r in ok[1:]:
                d = np.max(np.abs(np.array(r["current"]) - ref) / np.abs(ref))
                print(f"{size}: terminal currents {r['name']} vs {ok[0]['name']}: "
                      f"max relative difference {d:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
