"""pvsim against DEVSIM on identical 2D and 3D diode meshes, side by side in one run.

    pip install -e ".[bench]"     # devsim; it needs a BLAS: apt install libopenblas0
    python scripts/bench_devsim.py [--fine] [--3d] [--3d-unstructured] [--p1]

The case is cases/diode_2d.toml (2 um x 1 um silicon diode, anode on half of the left face)
on meshes/diode_2d.msh; ``--fine`` adds a finer and a coarser mesh of the same geometry.
``--3d`` adds the same diode extruded 1 um in z (anode: the y < 0.5 um half of the x = 0 face)
on a structured Kuhn tetrahedral mesh (``diode_3d_kuhn`` below, build/diode_3d_kuhn.msh, 4,410
nodes), ``--3d-unstructured`` on gmsh tetrahedra (``diode_3d``, build/diode_3d.msh, about 5,500
nodes); both gmsh 2.2, read by both codes; the same case with that mesh, currents in A instead
of A/m. Both codes sweep the anode 0.05 -> 0.70 V in 0.05 V steps from equilibrium.

The two codes discretise the same equations on the same mesh with different geometric
coefficients: pvsim takes the edge couples from the P1 stiffness matrix (signed; negative on
non-Delaunay edges) and lumped barycentric control volumes |K|/(d+1); DEVSIM takes non-negative
edge couples and node volumes that are sums of edge pyramids (circumcentric). Where the mesh is
Delaunay-like (the 2D triangles; the Kuhn tetrahedra, all P1 couples >= 0, DEVSIM's volumes tile
the regions) the two differ only slightly; on the gmsh tetrahedra 17 % of the P1 couples are
negative, DEVSIM's volumes sum to 1.11-1.13 times the region volume and its currents come out
11 % above pvsim's. Printed per mesh: negative P1 couples, DEVSIM's volume sums, and the largest
difference between DEVSIM's couples and volumes and the P1 ones. ``--p1`` runs DEVSIM a second
time with pvsim's couples and volumes in place of its own (scripts/devsim_peer.py,
``geometry="p1"``): then the two codes solve the identical discrete system, and the currents
agree to 1e-9 (minority current, every bias) and 3e-11 (terminal current at 0.70 V).

Equal Newton tolerance: DEVSIM stops when the sum over its 6 (region, variable) pairs of
max |dx|/(|x| + 1e-10) is below rel_tol (psi in V, n and p in cm^-3; scripts/devsim_peer.py);
pvsim stops when max |du| <= tol with potentials in units of V_T, where a quasi-Fermi update
du is the relative density change dn/n. Both use 1e-10: DEVSIM's sum is the stricter on
the densities, its psi term (relative to |psi + 0.01 V|, psi from the intrinsic level; the offset
keeps psi = 0 off the junction plane: scripts/devsim_peer.py) the stricter near the junction
centre; pvsim's tol is an absolute 2.6e-12 V on psi everywhere.

Printed: the IV curves side by side with the largest relative difference where |I| > 1e-12
A/m (2D; 1e-18 A in 3D: the same density over the 1 um depth), and the median wall time per
bias point of each. DEVSIM's terminal currents are sums of majority-carrier edge fluxes, which
float64 resolves only to ~3e-13 A/m here (at 0.05 V its anode and cathode currents differ by
7 %), so the IV agreement is taken where DEVSIM's own |I_anode + I_cathode| / |I_anode| < 1e-3,
and the electron (minority) current at the anode, which both codes resolve, is compared at every
bias (pvsim after ``block_until_ready``, in a second, warm sweep; its compile time is the
difference between the first and the second sweep). Absolute times on shared machines are
noisy: read the ratio.
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


def diode_3d(msh_path: Path, h: float = 0.1, h_junction: float = 0.04, width: float = 2.0,
             height: float = 1.0, depth: float = 1.0, contact_fraction: float = 0.5):
    """3D pn diode (um): diode_2d's cross-section extruded ``depth`` in z, tetrahedra.

    p side x < width/2 (two boxes, split at the anode edge y = contact_fraction * height so that
    the anode face exists as a surface), n side x > width/2; anode = the x = 0 face below the
    split, cathode = the x = width face, junction = the x = width/2 faces. Element size
    ``h_junction`` within 0.05 um of the junction, growing to ``h`` beyond 0.3 um. Writes
    ``msh_path`` (gmsh 2.2) and returns pvsim's Mesh.
    """
    from pvsim.geometry.gmsh_tools import finish, gmsh_session

    with gmsh_session("diode_3d") as gmsh:
        occ = gmsh.model.occ
        xm, yc = width / 2, contact_fraction * height
        boxes = [occ.addBox(0, 0, 0, xm, yc, depth), occ.addBox(0, yc, 0, xm, height - yc, depth),
                 occ.addBox(xm, 0, 0, width - xm, height, depth)]
        occ.fragment([(3, t) for t in boxes[:2]], [(3, boxes[2])])
        occ.synchronize()
        vols = [t for _, t in gmsh.model.getEntities(3)]
        side = {t: occ.getCenterOfMass(3, t)[0] < xm for t in vols}
        cm = {t: occ.getCenterOfMass(2, t) for _, t in gmsh.model.getEntities(2)}
        anode = [t for t, c in cm.items() if abs(c[0]) < 1e-9 and c[1] < yc]
        cathode = [t for t, c in cm.items() if abs(c[0] - width) < 1e-9]
        junction = [t for t, c in cm.items() if abs(c[0] - xm) < 1e-9]
        for d, tags, name in [(3, [t for t in vols if side[t]], "p_side"),
                              (3, [t for t in vols if not side[t]], "n_side"),
                              (2, anode, "anode"), (2, cathode, "cathode"), (2, junction, "junction")]:
            gmsh.model.addPhysicalGroup(d, tags, name=name)
        fd = gmsh.model.mesh.field
        dist = fd.add("Distance")
        fd.setNumbers(dist, "SurfacesList", junction)
        thr = fd.add("Threshold")
        fd.setNumber(thr, "InField", dist)
        for k, v in (("SizeMin", h_junction), ("SizeMax", h), ("DistMin", 0.05), ("DistMax", 0.3)):
            fd.setNumber(thr, k, v)
        fd.setAsBackgroundMesh(thr)
        for opt in ("MeshSizeExtendFromBoundary", "MeshSizeFromPoints", "MeshSizeFromCurvature"):
            gmsh.option.setNumber(f"Mesh.{opt}", 0)
        return finish(gmsh, 3, msh_path, "um")


def diode_3d_kuhn(msh_path: Path, h: float = 0.08, h_junction: float = 0.015, h_y: float = 0.05,
                  h_z: float = 0.2, width: float = 2.0, height: float = 1.0, depth: float = 1.0,
                  contact_fraction: float = 0.5):
    """The 3D diode of ``diode_3d`` on a structured Kuhn (Freudenthal) mesh (um).

    A tensor-product grid of boxes: x graded from ``h`` at the contacts to ``h_junction`` at the
    junction plane x = width/2 (growth <= 1.3 per cell), y uniform ``h_y`` with a grid line at the
    anode edge y = contact_fraction * height, z uniform ``h_z``. Every box is cut into the 6
    tetrahedra around its main diagonal, with the same orientation in every box (so the faces
    conform): these are orthoschemes, all dihedral angles <= 90 degrees, so every P1 edge couple is
    >= 0 and the circumcentres lie in the closed tetrahedra (DEVSIM's node volumes tile the
    regions). Same groups as ``diode_3d``. Writes ``msh_path`` (gmsh 2.2); returns pvsim's Mesh.
    """
    from pvsim.geometry.monolayer import _kuhn, _pattern, _write_msh
    from pvsim.mesh import from_arrays

    xm, yc = width / 2, contact_fraction * height

    def uniform(a, b, step):
        return np.linspace(a, b, max(1, round((b - a) / step)) + 1)

    xs = np.concatenate([xm * _pattern(xm, h, h_junction, h),
                         xm + (width - xm) * _pattern(width - xm, h_junction, h, h)[1:]])
    ys = np.concatenate([uniform(0, yc, h_y), uniform(yc, height, h_y)[1:]])
    zs = uniform(0, depth, h_z)
    shape = (len(xs), len(ys), len(zs))
    pts = np.stack(np.meshgrid(xs, ys, zs, indexing="ij"), axis=-1)
    pts = pts.transpose(2, 1, 0, 3).reshape(-1, 3)         # node i + nx (j + ny k), as _kuhn
    cells = _kuhn(shape)
    p_cell = pts[cells].mean(axis=1)[:, 0] < xm
    faces = np.sort(cells[:, [[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]]].reshape(-1, 3), axis=1)
    faces = np.unique(faces, axis=0)
    fx, fy = pts[faces][..., 0], pts[faces][..., 1]
    tol = 1e-9 * width
    boundaries = {"anode": faces[np.all(np.abs(fx) < tol, axis=1) & np.all(fy < yc + tol, axis=1)],
                  "cathode": faces[np.all(np.abs(fx - width) < tol, axis=1)],
                  "junction": faces[np.all(np.abs(fx - xm) < tol, axis=1)]}
    mesh = from_arrays(pts, {"p_side": cells[p_cell], "n_side": cells[~p_cell]}, boundaries,
                       length_unit="um", source="diode_3d_kuhn")
    _write_msh(mesh, msh_path, "um")
    return mesh


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
        solver=type(dev.solver).__name__, dim=dev.mesh.dim,
    )


def run_devsim(msh: Path, geometry: str = "devsim"):
    from devsim_peer import run_devsim_diode

    r = run_devsim_diode(str(msh), length_unit_m=1e-6, params=SILICON, biases_V=BIASES, rel_tol=TOL,
                         geometry=geometry)
    return dict(current=np.asarray(r["current_anode"]), time=np.asarray(r["time_s"]),
                its=np.asarray(r["iterations"]), cathode=np.asarray(r["current_cathode"]),
                electron=np.asarray(r["electron_current_anode"]), units=r["units"],
                negative=r["negative_couples"], geometry=r["geometry_check"])


def compare(msh: Path, p1: bool = False) -> dict:
    pv = run_pvsim(msh)
    dv = run_devsim(msh)
    u, floor = ("A/m", 1e-12) if pv["dim"] == 2 else ("A", 1e-18)
    print(f"\n== {msh.name} ({pv['dim']}D): {pv['nodes']} nodes, {pv['unknowns']} unknowns "
          f"(pvsim {pv['solver']})")
    for reg, g in dv["geometry"].items():
        print(f"  {reg}: {g['negative']} negative P1 couples; DEVSIM's node volumes sum to "
              f"{g['volume_ratio']:.4f} x the region volume; max |DEVSIM - P1| / max: couples "
              f"{g['couple_diff']:.1e}, volumes {g['volume_diff']:.1e}")
    print(f"{'V':>5} {f'I pvsim ({u})':>14} {f'I DEVSIM ({u})':>15} {'rel diff':>9} "
          f"{'pvsim ms':>9} {'it/LU':>6} {'DEVSIM ms':>10} {'it':>3}")
    for k, v in enumerate(BIASES):
        rel = abs(pv["current"][k] - dv["current"][k]) / abs(dv["current"][k])
        print(f"{v:5.2f} {pv['current'][k]:14.6e} {dv['current'][k]:15.6e} {rel:9.2e} "
              f"{pv['time'][k] * 1e3:9.1f} {pv['its'][k]:3d}/{pv['lu'][k]:<2d} "
              f"{dv['time'][k] * 1e3:10.1f} {dv['its'][k]:3d}")
    self_consistent = np.abs(dv["current"] + dv["cathode"]) < 1e-3 * np.abs(dv["current"])
    mask = (np.abs(dv["current"]) > floor) & self_consistent
    worst = np.max(np.abs(pv["current"][mask] - dv["current"][mask]) / np.abs(dv["current"][mask]))
    worst_n = np.max(np.abs(pv["electron"] - dv["electron"]) / np.abs(dv["electron"]))
    balance = np.max(np.abs(dv["current"] + dv["cathode"]) / np.abs(dv["current"]))
    print(f"DEVSIM self-consistent (|I_a + I_c| < 1e-3 |I_a|) from {BIASES[np.argmax(self_consistent)]:.2f} "
          f"V; below, its |I_a + I_c| / |I_a| reaches {balance:.1e}")
    print(f"minority electron current at the anode, all biases: max relative difference {worst_n:.2e}")
    t_pv, t_dv = np.median(pv["time"]), np.median(dv["time"])
    print(f"IV agreement: max relative difference {worst:.2e} where |I| > {floor:g} {u} and DEVSIM "
          f"self-consistent (target < 1e-2)")
    print(f"median time per bias point: pvsim {t_pv * 1e3:.1f} ms, DEVSIM {t_dv * 1e3:.1f} ms, "
          f"ratio {t_pv / t_dv:.3f} (target <= 0.1); pvsim compile {pv['compile']:.1f} s")
    row = dict(mesh=msh.name, dim=pv["dim"], nodes=pv["nodes"], worst=worst, worst_n=worst_n,
               ratio=t_pv / t_dv, t_pv=t_pv, t_dv=t_dv, p1=None)
    if p1:   # DEVSIM with pvsim's couples and volumes: the identical discrete system
        d1 = run_devsim(msh, geometry="p1")
        ok = np.abs(d1["current"] + d1["cathode"]) < 1e-3 * np.abs(d1["current"])
        m1 = (np.abs(d1["current"]) > floor) & ok
        rel = np.abs(pv["current"] - d1["current"]) / np.abs(d1["current"])
        rel_n = np.abs(pv["electron"] - d1["electron"]) / np.abs(d1["electron"])
        row["p1"] = (np.max(rel[m1]), np.max(rel_n), rel[-1])
        print(f"DEVSIM with pvsim's P1 couples and volumes ({d1['negative']} negative couples): "
              f"I {' '.join(f'{x:.1e}' for x in rel)}")
        print(f"  max relative difference {row['p1'][0]:.2e} (self-consistent, |I| > {floor:g} {u}), "
              f"minority electron current {row['p1'][1]:.2e}; DEVSIM median "
              f"{np.median(d1['time']) * 1e3:.1f} ms per point")
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fine", action="store_true", help="also a coarser and a finer 2D mesh")
    ap.add_argument("--3d", dest="three_d", action="store_true",
                    help="also the 3D diode on a structured Kuhn tetrahedral mesh")
    ap.add_argument("--3d-unstructured", dest="three_d_gmsh", action="store_true",
                    help="also the 3D diode on gmsh tetrahedra (non-Delaunay: negative P1 couples)")
    ap.add_argument("--p1", action="store_true",
                    help="also DEVSIM with pvsim's edge couples and node volumes (identical discretisation)")
    args = ap.parse_args()
    meshes = [ROOT / "meshes" / "diode_2d.msh"]
    if args.fine:
        from pvsim.geometry import diode_2d

        tmp = ROOT / "build"
        tmp.mkdir(exist_ok=True)
        for name, h, hj in [("diode_2d_coarse.msh", 0.1, 0.02), ("diode_2d_fine.msh", 0.03, 0.006)]:
            diode_2d(h=h, h_junction=hj, msh_path=tmp / name)
            meshes.append(tmp / name)
    (ROOT / "build").mkdir(exist_ok=True)
    for on, make, name in ((args.three_d, diode_3d_kuhn, "diode_3d_kuhn.msh"),
                           (args.three_d_gmsh, diode_3d, "diode_3d.msh")):
        if on:
            make(ROOT / "build" / name)
            meshes.append(ROOT / "build" / name)
    rows = [compare(m, args.p1) for m in meshes]
    print("\nsummary:")
    for r in rows:
        p1 = (f"\n  {'':22s} DEVSIM on P1 geometry: IV max rel diff {r['p1'][0]:.1e}, at "
              f"{BIASES[-1]:.2f} V {r['p1'][2]:.1e} (minority {r['p1'][1]:.1e})") if r["p1"] else ""
        print(f"  {r['mesh']:22s} {r['dim']}D {r['nodes']:6d} nodes  IV max rel diff {r['worst']:.1e} "
              f"(minority {r['worst_n']:.1e})  ms/point pvsim {r['t_pv'] * 1e3:.0f} DEVSIM "
              f"{r['t_dv'] * 1e3:.0f}, ratio {r['ratio']:.3f}{p1}")


if __name__ == "__main__":
    main()
