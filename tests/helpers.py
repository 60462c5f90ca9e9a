"""Small builders shared by the tests."""

import numpy as np

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
