"""Small builders shared by the tests."""

import numpy as np
import scipy.sparse as sp

from pvsim.materials import MaterialSpec
from pvsim.mesh import from_arrays
from pvsim.units import thermal_voltage


def silicon(**kw):
    vt = thermal_voltage(300.0)
    base = dict(eps_r=11.1, electron_affinity_eV=4.05, band_gap_eV=2 * vt * np.log(1e19 / 1e10),
                Nc_cm3=1e19, Nv_cm3=1e19, mu_n_cm2_Vs=400, mu_p_cm2_Vs=200,
                tau_n_s=1e-5, tau_p_s=1e-5)
    base.update(kw)
    return MaterialSpec(**base)


def split_regions(mesh, bounds, names):
    """Re-assign a single-region mesh's elements to regions by centroid x (fractions of the width)."""
    cells = np.concatenate(list(mesh.regions.values()))
    cx = mesh.points[cells][:, :, 0].mean(axis=1)
    x0, x1 = mesh.points[:, 0].min(), mesh.points[:, 0].max()
    edges = x0 + (x1 - x0) * np.asarray(bounds)
    which = np.searchsorted(edges, cx)
    regions = {n: cells[which == k] for k, n in enumerate(names)}
    return from_arrays(mesh.points, regions, mesh.boundaries, axisymmetric=mesh.axisymmetric)


def laplacian_3d(m, convection=0.0):
    """7-point finite-difference -Laplacian (+ upwind convection along x) on an m^3 grid,
    Dirichlet boundaries; CSR-ordered (rows, cols, vals)."""
    one = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(m, m))
    conv = sp.diags([-1.0, 1.0], [-1, 0], shape=(m, m)) * convection
    eye = sp.identity(m)
    a = (sp.kron(sp.kron(eye, eye), one + conv) + sp.kron(sp.kron(eye, one), eye)
         + sp.kron(sp.kron(one, eye), eye)).tocsr()
    a.sort_indices()
    coo = a.tocoo()
    return coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data, a


def diode_far_from_equilibrium():
    """The 2D diode (cases/diode_2d.toml) one full Newton step after a jump from equilibrium
    to 0.3 V (quasi-Fermi levels spread over ~12 V_T): (device, state u, residual f, Jacobian
    values) of the next Newton system."""
    from dataclasses import replace
    from pathlib import Path

    from pvsim.case import build_device, load_case
    from pvsim.newton import newton_solve

    case, base = load_case(Path(__file__).resolve().parent.parent / "cases" / "diode_2d.toml")
    dev = build_device(case, base)
    p0 = dev.params(np.zeros(2))
    eq = dev.solve(dev.initial_guess(p0), p0)
    p1 = dev.params(np.array([0.3, 0.0]))
    u = newton_solve(dev.asm, dev.solver, eq.u, p1, replace(dev.newton, max_iter=1, chord=False)).u
    f, vals = dev.asm.residual_and_jacobian(u, p1)
    return dev, u, f, vals
