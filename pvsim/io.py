"""Results as an ``xarray.Dataset`` (DESIGN.md section 6) and NetCDF output.

Dimensions ``bias``, ``node``, ``contact``, ``dim``, ``channel``, ``cell``, ``vertex``; every
variable carries CF ``units`` and ``long_name``. ``cells``/``cell_region`` hold the mesh
(for plots and VTU export), ``volume`` the node control volumes. At an interface node,
densities, rates and band edges are the control-volume-weighted averages of the adjacent
regions' values (so sum(R * volume) over nodes is the exact discrete integral); potentials
are single-valued there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from . import __version__
from .sweep import PointResult, SweepResult

_NODE_FIELDS = {
    "potential": ("psi", "V", "electrostatic (vacuum-level) potential"),
    "phi_n": ("phi_n", "V", "electron quasi-Fermi potential"),
    "phi_p": ("phi_p", "V", "hole quasi-Fermi potential"),
    "n": ("n", "m-3", "electron density"),
    "p": ("p", "m-3", "hole density"),
    "R_srh": ("R_srh", "m-3 s-1", "Shockley-Read-Hall recombination rate"),
    "R_rad": ("R_rad", "m-3 s-1", "radiative recombination rate"),
    "R_auger": ("R_auger", "m-3 s-1", "Auger recombination rate"),
    "Ec": ("Ec", "eV", "conduction band edge (energy; 0 = Fermi level of a grounded contact)"),
    "Ev": ("Ev", "eV", "valence band edge"),
}
_HEAT_FIELDS = {
    "heat": ("heat", "W m-3", "heat source density (all kinds; negative: cooling)"),
    "heat_joule": ("heat_joule", "W m-3", "Joule heat: carrier flux times quasi-Fermi drop"),
    "heat_recombination": ("heat_recombination", "W m-3",
                           "recombination heat R (pi_p - pi_n) less the light leaving"),
    "heat_peltier": ("heat_peltier", "W m-3",
                     "Peltier and Thomson heat (heterointerfaces, contacts, gradients)"),
    "light": ("light", "W m-3", "power density leaving as light (escape fraction of R_rad hbar omega)"),
}


def to_dataset(result: SweepResult, case_text: str = "", include_equilibrium: bool = True) -> xr.Dataset:
    dev = result.device
    eq = result.equilibrium
    # a sweep that starts at the equilibrium bias already holds that point
    repeated = bool(result.points) and np.array_equal(result.points[0].bias.vector(), eq.bias.vector())
    pts: list[PointResult] = ([eq] if include_equilibrium and not repeated else []) + result.points
    cu = dev.scales.current_units
    obs = [p.observables for p in pts]

    def stack(key):
        return np.stack([o[key] for o in obs]) if obs else np.zeros((0,))

    mesh = dev.mesh
    node_region = np.full(mesh.n_nodes, -1)
    node_region[dev.disc.site_node[::-1]] = dev.disc.site_region[::-1]  # first region wins
    ds = xr.Dataset(
        coords=dict(
            bias=("bias", np.arange(len(pts)), dict(
                units="1", long_name="bias point index, equilibrium first")),
            contact=("contact", dev.contact_names, dict(
                units="1", long_name="contact (gmsh physical group name)")),
            x=(("node", "dim"), mesh.points, dict(units="m", long_name="node coordinates")),
            channel=("channel", ["srh", "radiative", "auger", "interface"], dict(
                units="1", long_name="recombination channel")),
        )
    )
    ds["region"] = ("node", node_region, dict(
        units="1", long_name="region index of the node (first region at interfaces)",
        flag_values=np.arange(len(dev.disc.region_names)),
        flag_meanings=" ".join(dev.disc.region_names)))
    cells = np.concatenate([mesh.regions[r] for r in dev.disc.region_names])
    ds["cells"] = (("cell", "vertex"), cells, dict(
        units="1", long_name="simplex connectivity (node indices), all regions"))
    ds["cell_region"] = ("cell", np.concatenate(
        [np.full(len(mesh.regions[r]), k) for k, r in enumerate(dev.disc.region_names)]), dict(
        units="1", long_name="region index of the cell", flag_values=np.arange(len(dev.disc.region_names)),
        flag_meanings=" ".join(dev.disc.region_names)))
    vol_unit = {1: "m", 2: "m2", 3: "m3"}[dev.scales.dim_eff]
    ds["volume"] = ("node", np.bincount(dev.disc.site_node, dev.disc.site_volume, mesh.n_nodes)
                    * dev.scales.L_ref ** dev.scales.dim_eff, dict(
        units=vol_unit, long_name="control volume of the node (all regions; 2 pi r weighted "
                                  "when axisymmetric, per metre of depth in 2D)"))
    for name, (key, units, long) in _NODE_FIELDS.items():
        ds[name] = (("bias", "node"), stack(key), dict(units=units, long_name=long))
    _add_vector_maps(ds, dev, cells)
    heat = bool(obs) and "temperature" in obs[0]
    temp = stack("temperature") if heat else np.full((len(pts), mesh.n_nodes), dev.temperature_K)
    ds["temperature"] = (("bias", "node"), temp, dict(units="K", long_name="lattice temperature"))
    if heat:
        pu = {1: "W m-2", 2: "W m-1", 3: "W"}[dev.scales.dim_eff]
        for name, (key, units, long) in _HEAT_FIELDS.items():
            ds[name] = (("bias", "node"), stack(key), dict(units=units, long_name=long))
        by_kind = stack("heat_by_kind")
        ds["dissipated_power"] = ("bias", by_kind[:, 0], dict(
            units=pu, long_name="heat released in the device (integral of heat)"))
        ds["light_power"] = ("bias", by_kind[:, 3], dict(units=pu, long_name="power leaving as light"))
        ds["peak_temperature"] = ("bias", stack("T_max"), dict(units="K", long_name="peak lattice temperature"))
    ds["voltage"] = (("bias", "contact"), stack("voltage"), dict(units="V", long_name="contact voltage"))
    for name, key, long in [
        ("current", "current", "terminal current into the device (robust extraction)"),
        ("current_direct", "current_direct", "terminal current into the device (direct edge-flux sum)"),
        ("current_n", "i_n_robust", "electron part of the terminal current"),
        ("current_p", "i_p_robust", "hole part of the terminal current"),
    ]:
        ds[name] = (("bias", "contact"), stack(key), dict(units=cu, long_name=long))
    ds["recombination_current"] = (("bias", "channel"), stack("recombination_current_by_channel"),
                                   dict(units=cu, long_name="q times the integral of each recombination rate"))
    total = np.abs(ds["current"]).max("contact")
    iqe = np.where(total > 0, ds["recombination_current"].sel(channel="radiative") / np.where(total > 0, total, 1), np.nan)
    ds["iqe"] = ("bias", iqe, dict(units="1", long_name="internal quantum efficiency q int R_rad dV / |I|"))
    for name, vals, units, long in [
        ("newton_iterations", [p.iterations for p in pts], "1", "Newton iterations: linear solves, full and chord (all sub-steps)"),
        ("jacobian_factorizations", [p.factorizations for p in pts], "1", "Jacobian factorisations (all sub-steps)"),
        ("newton_residual", [p.residual for p in pts], "1", "row-equilibrated residual max norm at the last Jacobian"),
        ("newton_update", [p.update for p in pts], "1", "last Newton update max norm (units of V_T)"),
        ("continuation_substeps", [p.substeps for p in pts], "1", "continuation sub-steps"),
        ("wall_time", [p.wall_time for p in pts], "s", "wall time of the bias point"),
    ]:
        ds[name] = ("bias", np.asarray(vals), dict(units=units, long_name=long))
    ds.attrs.update(
        title="pvsim steady-state sweep", pvsim_version=__version__, Conventions="CF-1.8",
        current_units=cu, temperature_K=dev.temperature_K,
        convergence=f"max |du| <= {dev.newton.tol:g} (scaled, units of V_T) per Newton solve",
        status="complete" if result.ok else "stopped: " + result.failure,
        regions=" ".join(dev.disc.region_names), case=case_text,
        geometry="axisymmetric (r, z)" if mesh.axisymmetric else f"{mesh.dim}D",
    )
    return ds


def _add_vector_maps(ds: xr.Dataset, dev, cells: np.ndarray) -> None:
    """Node maps of |electric field| and |current density| for plots and ParaView.

    Per cell, the P1 gradients of psi, phi_n and phi_p give E = -grad psi and
    J = -q (mu_n n grad phi_n + mu_p p grad phi_p) with the cell means of n and p and the
    region's low-field mobility at the simulation temperature (no field or local-temperature
    dependence); node values are the control-volume-weighted means of the adjacent cells'
    vectors. Maps only: terminal currents and every balance use the exact edge fluxes.
    """
    from .discretize import element_geometry
    from .materials import scaled_material
    from .units import Q

    x = dev.mesh.points[cells]  # (M, d+1, d)
    d = x.shape[-1]
    _, corner = element_geometry(x, dev.mesh.axisymmetric, xp=np)  # (M, d+1)
    inv = np.linalg.pinv(x[:, 1:, :] - x[:, :1, :])  # (M, d, d): grad f = inv @ (f_k - f_0)

    def grad(f):  # (B, N) -> (B, M, d)
        df = f[:, cells[:, 1:]] - f[:, cells[:, :1]]
        return np.einsum("mij,bmj->bmi", inv, df)

    cell_region = ds["cell_region"].values
    mat = scaled_material(dev.region_specs, dev.scales)
    semi = np.array([m.is_semiconductor for m in dev.region_specs], dtype=float)
    mu_n = (np.asarray(mat.mu_n) * dev.scales.mu_ref * semi)[cell_region][None, :, None]
    mu_p = (np.asarray(mat.mu_p) * dev.scales.mu_ref * semi)[cell_region][None, :, None]
    mean = lambda f: f[:, cells].mean(axis=2)[..., None]  # noqa: E731
    field = -grad(ds["potential"].values)
    current = -Q * (mu_n * mean(ds["n"].values) * grad(ds["phi_n"].values)
                    + mu_p * mean(ds["p"].values) * grad(ds["phi_p"].values))
    weight = np.bincount(cells.ravel(), corner.ravel(), dev.mesh.n_nodes)
    weight = np.where(weight > 0, weight, 1.0)

    def to_nodes(v):  # (B, M, d) -> (B, N) magnitude of the volume-weighted node vector
        out = np.zeros((v.shape[0], dev.mesh.n_nodes, d))
        for k in range(d + 1):
            np.add.at(out, (slice(None), cells[:, k]), v * corner[None, :, k, None])
        return np.linalg.norm(out / weight[None, :, None], axis=-1)

    ds["field"] = (("bias", "node"), to_nodes(field), dict(
        units="V m-1", long_name="electric field magnitude (cell P1 gradients, volume-weighted)"))
    ds["current_density"] = (("bias", "node"), to_nodes(current), dict(
        units="A m-2", long_name="total current density magnitude (drift-diffusion in quasi-Fermi form "
                                 "per cell, low-field mobility; for maps)"))


def write_netcdf(ds: xr.Dataset, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.to_netcdf(path, engine="h5netcdf")
    return path
