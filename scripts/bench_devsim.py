"""pvsim against DEVSIM on the identical 2D diode mesh, in one run.

    pip install -e ".[bench]"     # devsim; it needs a BLAS: apt install libopenblas0
    python scripts/bench_devsim.py [--fine]

The case is cases/diode_2d.toml (2 um x 1 um silicon diode, anode on half of the left face)
on meshes/diode_2d.msh; ``--fine`` adds a finer and a coarser mesh of the same geometry.
Both codes sweep the anode 0.05 -> 0.70 V in 0.05 V steps from equilibrium.

Equal Newton tolerance: DEVSIM stops when the sum over its 6 (region, variable) pairs of
max |dx|/(|x| + 1e-10) is below rel_tol (psi in V, n and p in cm^-3; scripts/devsim_peer.py);
pvsim stops when max |du| <= tol with potentials in units of V_T, where a quasi-Fermi update
du is the relative density change dn/n. Both use 1e-10: DEVSIM's sum is the stricter on
the densities, its psi term (relative to |psi| from the intrinsic level) the stricter near
the junction centre; pvsim's tol is an absolute 2.6e-12 V on psi everywhere.

Printed: the IV curves side by side with the largest relative difference where |I| > 1e-12
A/m, and the median wall time per bias point of each. DEVSIM's terminal currents are sums
of majority-carrier edge fluxes, which float64 resolves only to ~3e-13 A/m here (at 0.05 V
its anode and cathode currents differ by 7 %), so the IV agreement is taken where DEVSIM's
own |I_anode + I_cathode| / |I_anode| < 1e-3, and the electron (minority) current at the
anode, which both codes resolve, is compared at every bias (pvsim after ``block_until_ready``, in
a second, warm sweep; its compile time is the difference between the first and the second
sweep). Absolute times on shared machines are noisy: read the ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

TOL = 1e-10
BIASES = [round(0.05 * k, 2) for k in range(1, 15)]
SILICON = dict(NA_cm3=1e17, ND_cm3=1e17, ni_cm3=1e10, eps_r=11.1, mu_n_cm2Vs=400, mu_p_cm2Vs=200,
               tau_n_s=1e-5, tau_p_s=1e-5, T_K=300.0)


def run_pvsim(msh: Path):
    import jax

    jax.config.update("jax_enable_x64", True)
    from pvsim.case import build_device, load_case
    from pvsim.sweep import BiasPoint, run_sweep

    case, base = load_case(ROOT / "cases" / "diode_2d.toml")
    data = case.model_dump(exclude_unset=True)
    data["mesh"]["file"] = str(msh)
    data.setdefault("solver", {})["tolerance"] = TOL
    case, _ = load_case(data, base)
    dev = build_device(case, base)
    targets = [BiasPoint(np.array([v, 0.0]), np.zeros(2)) for v in BIASES]
    t0 = time.perf_counter()
    run_sweep(dev, targets)  # cold: compiles
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = run_sweep(dev, targets)  # warm
    warm = time.perf_counter() - t0
    assert res.ok, res.failure
    return dict(
        current=np.array([p.observables["current"][0] for p in res.points]),
        electron=np.array([p.observables["i_n_robust"][0] for p in res.points]),
        time=np.array([p.wall_time for p in res.points]),
        its=np.array([p.iterations for p in res.points]),
        lu=np.array([p.factorizations for p in res.points]),
        compile=cold - warm, nodes=dev.mesh.n_nodes, unknowns=dev.asm.n_dof,
        solver=type(dev.solver).__name__,
    )


def run_devsim(msh: Path):
    from devsim_peer import run_devsim_diode

    r = run_devsim_diode(str(msh), length_unit_m=1e-6, params=SILICON, biases_V=BIASES, rel_tol=TOL)
    return dict(current=np.asarray(r["current_anode"]), time=np.asarray(r["time_s"]),
                its=np.asarray(r["iterations"]), cathode=np.asarray(r["current_cathode"]),
                electron=np.asarray(r["electron_current_anode"]))


def compare(msh: Path) -> dict:
    pv = run_pvsim(msh)
    dv = run_devsim(msh)
    print(f"\n== {msh.name}: {pv['nodes']} nodes, {pv['unknowns']} unknowns (pvsim {pv['solver']})")
    print(f"{'V':>5} {'I pvsim (A/m)':>14} {'I DEVSIM (A/m)':>15} {'rel diff':>9} "
          f"{'pvsim ms':>9} {'it/LU':>6} {'DEVSIM ms':>10} {'it':>3}")
    for k, v in enumerate(BIASES):
        rel = abs(pv["current"][k] - dv["current"][k]) / abs(dv["current"][k])
        print(f"{v:5.2f} {pv['current'][k]:14.6e} {dv['current'][k]:15.6e} {rel:9.2e} "
              f"{pv['time'][k] * 1e3:9.1f} {pv['its'][k]:3d}/{pv['lu'][k]:<2d} "
              f"{dv['time'][k] * 1e3:10.1f} {dv['its'][k]:3d}")
    self_consistent = np.abs(dv["current"] + dv["cathode"]) < 1e-3 * np.abs(dv["current"])
    mask = (np.abs(dv["current"]) > 1e-12) & self_consistent
    worst = np.max(np.abs(pv["current"][mask] - dv["current"][mask]) / np.abs(dv["current"][mask]))
    worst_n = np.max(np.abs(pv["electron"] - dv["electron"]) / np.abs(dv["electron"]))
    print(f"DEVSIM self-consistent (|I_a + I_c| < 1e-3 |I_a|) from {BIASES[np.argmax(self_consistent)]:.2f} V; "
          f"below, its |I_a + I_c| / |I_a| reaches {np.max(np.abs(dv['current'] + dv['cathode']) / np.abs(dv['current'])):.1e}")
    print(f"minority electron current at the anode, all biases: max relative difference {worst_n:.2e}")
    t_pv, t_dv = np.median(pv["time"]), np.median(dv["time"])
    print(f"IV agreement: max relative difference {worst:.2e} where |I| > 1e-12 A/m and DEVSIM "
          f"self-consistent (target < 1e-2)")
    print(f"median time per bias point: pvsim {t_pv * 1e3:.1f} ms, DEVSIM {t_dv * 1e3:.1f} ms, "
          f"ratio {t_pv / t_dv:.3f} (target <= 0.1); pvsim compile {pv['compile']:.1f} s")
    return dict(mesh=msh.name, nodes=pv["nodes"], worst=worst, worst_n=worst_n, ratio=t_pv / t_dv)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fine", action="store_true", help="also a coarser and a finer mesh")
    args = ap.parse_args()
    meshes = [ROOT / "meshes" / "diode_2d.msh"]
    if args.fine:
        from pvsim.geometry import diode_2d

        tmp = ROOT / "build"
        tmp.mkdir(exist_ok=True)
        for name, h, hj in [("diode_2d_coarse.msh", 0.1, 0.02), ("diode_2d_fine.msh", 0.03, 0.006)]:
            diode_2d(h=h, h_junction=hj, msh_path=tmp / name)
            meshes.append(tmp / name)
    rows = [compare(m) for m in meshes]
    print("\nsummary:")
    for r in rows:
        print(f"  {r['mesh']:22s} {r['nodes']:6d} nodes  IV max rel diff {r['worst']:.1e} "
              f"(minority {r['worst_n']:.1e})  "
              f"time ratio pvsim/DEVSIM {r['ratio']:.3f}")


if __name__ == "__main__":
    main()
