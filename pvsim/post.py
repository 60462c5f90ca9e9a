"""Post-processing of a results Dataset: the ``ds.pvsim`` accessor.

``import pvsim.post`` registers an ``xarray`` accessor on every Dataset written by
:func:`pvsim.io.to_dataset` (or read back from its NetCDF file)::

    import pvsim.post  # noqa: F401
    ds.pvsim.iv()                      # voltage, current (and density) per bias
    ds.pvsim.turn_on_voltage(1.0)      # V at 1 A/m^2, interpolated in log J
    ds.pvsim.iqe(), ds.pvsim.charge_balance(), ds.pvsim.recombination_fractions()
    ds.pvsim.region_current_fraction("eml")
    ds.pvsim.band_diagram()            # Ec, Ev, quasi-Fermi levels along a line

The formulas are those of the array layer :class:`pvsim.figures.arrays` (the inverse design
uses the same ones on a device state, differentiably); this module gathers their inputs from
the Dataset with numpy. Currents are in ``ds.attrs["current_units"]`` (A m-2 in 1D, A m-1
in 2D, A in 3D and axisymmetric), volumes in the units of ``ds.volume`` (m, m2 or m3;
2 pi r weighted when axisymmetric), so q * sum(R * volume) is in current units.

Integrals over one region
-------------------------
``ds.volume`` holds each node's whole control volume, and at an interface node the rates are
the volume-weighted averages of the sides' values (:mod:`pvsim.io`), so the exact per-side
values are not in the Dataset. :meth:`PvsimAccessor.region_integral` integrates with the
lumped per-cell corner volumes (:func:`pvsim.discretize.element_geometry`, from ``x`` and
``cells``) of the region's cells only: the region owns the part of each interface node's
control volume that its own cells contribute. This is the discretisation's exact integral
for a field continuous across the region's boundary, the per-region integrals add up to the
exact total sum(f * volume), and for a field that jumps at an interface the interface
nodes' share is split in proportion to volume (an error confined to the half cells next to
the interface: e.g. a transport layer with no recombination of its own is credited with its
volume share of the emitter's rate at their common nodes, ~0.1 % of the current for 20 nm
layers on a 1 nm mesh).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .figures import arrays
from .units import Q

__all__ = ["PvsimAccessor"]

_DENSITY_AREA = {"A m-2": None, "A m-1": "m (width of the device in the plane)", "A": "m2"}


@xr.register_dataset_accessor("pvsim")
class PvsimAccessor:
    """Figures of merit, IV analysis and line profiles of a pvsim results Dataset."""

    def __init__(self, ds: xr.Dataset):
        self._ds = ds
        self._cache: dict = {}

    # ------------------------------------------------------------------ helpers
    @property
    def regions(self) -> list[str]:
        """Region names, in the order of the region indices."""
        return self._ds.attrs["regions"].split()

    def _region_index(self, region) -> int:
        if isinstance(region, str):
            if region not in self.regions:
                raise KeyError(f"no region {region!r}; regions: {', '.join(self.regions)}")
            return self.regions.index(region)
        return int(region)

    @property
    def _axisymmetric(self) -> bool:
        return self._ds.attrs.get("geometry", "").startswith("axisymmetric")

    @property
    def _dim(self) -> int:
        return self._ds.sizes["dim"]

    def _template(self) -> xr.DataArray:
        """A DataArray with the Dataset's bias dimension (or none, for one selected bias)."""
        return self._ds["voltage"].isel(contact=0, drop=True)

    def _wrap(self, values, name, units, long_name, template=None) -> xr.DataArray:
        t = self._template() if template is None else template
        return xr.DataArray(np.asarray(values), coords=t.coords, dims=t.dims, name=name,
                            attrs=dict(units=units, long_name=long_name))

    def _current(self, contact) -> xr.DataArray:
        """The current of one contact, or the largest |I| over the contacts (``None``)."""
        i = self._ds["current"]
        return abs(i).max("contact") if contact is None else i.sel(contact=contact, drop=True)

    def _node_values(self, field) -> xr.DataArray:
        f = self._ds[field] if isinstance(field, str) else field
        if "node" not in f.dims:
            raise ValueError(f"{getattr(f, 'name', field)!r} is not a node field")
        return f.reset_coords(drop=True).transpose(..., "node")

    def _corner_volumes(self) -> np.ndarray:
        """(cell, vertex) lumped control-volume parts, in the units of ``ds.volume``."""
        if "corner" not in self._cache:
            from .discretize import element_geometry

            x = self._ds["x"].values[self._ds["cells"].values]
            self._cache["corner"] = element_geometry(x, self._axisymmetric, xp=np)[1]
        return self._cache["corner"]

    def _region_cells(self, region) -> np.ndarray:
        return np.nonzero(self._ds["cell_region"].values == self._region_index(region))[0]

    def region_volume(self, region) -> np.ndarray:
        """(node,) the part of each node's control volume that lies in ``region`` (its cells'
        lumped corner volumes); summed over all regions it is ``ds.volume``."""
        key = ("volume", self._region_index(region))
        if key not in self._cache:
            cells = self._region_cells(region)
            self._cache[key] = np.bincount(self._ds["cells"].values[cells].ravel(),
                                           self._corner_volumes()[cells].ravel(), self._ds.sizes["node"])
        return self._cache[key]

    # ------------------------------------------------------------------ IV
    def iv(self, contact="anode", area=None) -> xr.Dataset:
        """Voltage and current of ``contact`` per bias, and the current density (A/m^2).

        The density is the current itself in 1D (already A/m^2); in 2D (A/m) ``area`` is the
        device width in m, in 3D and axisymmetric (A) the contact area in m^2. Without it
        (2D, 3D) the Dataset has no ``current_density``.
        """
        ds = self._ds
        units = ds.attrs["current_units"]
        out = xr.Dataset({"voltage": ds["voltage"].sel(contact=contact, drop=True),
                          "current": ds["current"].sel(contact=contact, drop=True)})
        if units not in _DENSITY_AREA:
            raise ValueError(f"unknown current units {units!r}")
        if _DENSITY_AREA[units] is None:
            if area is not None:
                raise ValueError("1D currents are already densities (A m-2): give no area")
            j = out["current"]
        elif area is None:
            return out
        else:
            j = out["current"] / area
        out["current_density"] = j.assign_attrs(units="A m-2", long_name="current density into the device")
        return out

    def turn_on_voltage(self, threshold_A_m2: float = 1.0, contact="anode", area=None) -> float:
        """Voltage at which the current density first reaches ``threshold_A_m2`` (default
        1 A/m^2 = 0.1 mA/cm^2), linearly interpolated in log10 J between the bias points
        around the crossing.

        Only forward points (J > 0 into ``contact``, the driven contact) count, in order of
        voltage. NaN when no point reaches the threshold or the lowest forward point is
        already above it (no bracket).
        """
        iv = self.iv(contact, area)
        if "current_density" not in iv:
            raise ValueError("a current density needs the area (2D: width in m; 3D/axisymmetric: m^2)")
        v = np.atleast_1d(iv["voltage"].values)
        j = np.atleast_1d(iv["current_density"].values)
        forward = j > 0
        order = np.argsort(v[forward], kind="stable")
        v, j = v[forward][order], j[forward][order]
        above = np.nonzero(j >= threshold_A_m2)[0]
        if len(above) == 0:
            return float("nan")
        k = above[0]
        if j[k] == threshold_A_m2:
            return float(v[k])
        if k == 0:
            return float("nan")
        lj0, lj1 = np.log10(j[k - 1]), np.log10(j[k])
        return float(v[k - 1] + (np.log10(threshold_A_m2) - lj0) / (lj1 - lj0) * (v[k] - v[k - 1]))

    # ------------------------------------------------------------------ efficiencies
    def iqe(self, contact=None) -> xr.DataArray:
        """q int R_rad dV / |I| per bias; |I| of ``contact``, or by default the largest over
        the contacts (as ``ds.iqe``). NaN at zero current."""
        i = self._current(contact)
        r = self._ds["recombination_current"].sel(channel="radiative", drop=True)
        val = arrays.iqe(r.values, i.where(i != 0).values)
        return self._wrap(val, "iqe", "1", "internal quantum efficiency q int R_rad dV / |I|")

    def eqe(self, outcoupling: float = 0.2, contact=None) -> xr.DataArray:
        """External quantum efficiency: IQE times the outcoupling efficiency."""
        val = arrays.eqe(self.iqe(contact).values, outcoupling)
        return self._wrap(val, "eqe", "1", f"external quantum efficiency (outcoupling {outcoupling:g})")

    def charge_balance(self, contact=None) -> xr.DataArray:
        """q int (R_srh + R_rad + R_auger) dV plus the interface recombination current, over
        |I| (``contact``, or the largest over the contacts): the fraction of the current
        that recombines in the device. 1 - charge balance is the leakage: electrons leaving
        at the anode plus holes leaving at the cathode, (I_n(anode) - I_p(cathode)) / I."""
        i = self._current(contact)
        total = self._ds["recombination_current"].sum("channel")
        val = arrays.charge_balance(total.values, i.where(i != 0).values)
        return self._wrap(val, "charge_balance", "1", "recombination current over terminal current")

    def recombination_fractions(self) -> xr.Dataset:
        """Per bias and channel (srh, radiative, auger, interface): ``fraction`` of the total
        recombination (sums to 1 over channel; NaN with no recombination) and ``current``
        (q int R dV, current units)."""
        rc = self._ds["recombination_current"].transpose(..., "channel")
        total = rc.sum("channel")
        frac = arrays.recombination_fractions(rc.where(total != 0).values)
        return xr.Dataset({
            "fraction": (rc.dims, frac, dict(units="1", long_name="share of the recombination")),
            "current": rc,
        }, coords=rc.coords)

    # ------------------------------------------------------------------ integrals
    def region_integral(self, field, region=None) -> xr.DataArray:
        """Integral of a node field over one region (name or index), per bias.

        The region's own cells only, with their lumped corner volumes (module docstring:
        exact for fields continuous at the region's boundary; the regions' integrals add up
        to the whole-device integral). ``region=None``: the whole device, sum(f * volume).
        """
        f = self._node_values(field)
        w = self._ds["volume"].values if region is None else self.region_volume(region)
        vals = f.values
        val = (np.where(w > 0, vals, 0.0) * w).sum(axis=-1)
        units = f.attrs.get("units", "1")
        vunits = self._ds["volume"].attrs.get("units", "")
        where = "the device" if region is None else f"region {region}"
        return xr.DataArray(val, coords=f.isel(node=0, drop=True).coords, dims=f.dims[:-1],
                            name=f"{f.name or 'field'}_integral", attrs=dict(
                                units=f"({units}) {vunits}", long_name=f"integral of {f.name} over {where}"))

    def region_current_fraction(self, region, contact="anode") -> xr.DataArray:
        """q int_region (R_srh + R_rad + R_auger) dV / |I(contact)| per bias: the fraction of
        the terminal current that recombines in ``region`` (interface recombination, which
        belongs to no region, is left out; over all regions plus it, the fractions add up
        to the charge balance)."""
        rate = sum(self.region_integral(f, region) for f in ("R_srh", "R_rad", "R_auger"))
        i = self._current(contact)
        val = arrays.region_fraction(Q * rate.values, i.where(i != 0).values)
        return self._wrap(val, "region_current_fraction", "1",
                          f"q int R dV over region {region} / |I({contact})|")

    def recombination_zone(self, axis: int = -1, field: str = "R_rad") -> xr.Dataset:
        """``centroid`` and ``width`` (m; rate-weighted mean and standard deviation of
        coordinate ``axis``, default the last: x in 1D, y in 2D, z axisymmetric) of a
        recombination rate, per bias (NaN where it vanishes)."""
        f = self._node_values(field)
        x = self._ds["x"].values[:, axis]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean, width = arrays.zone(f.values * self._ds["volume"].values, x)
        t = f.isel(node=0, drop=True)
        return xr.Dataset({
            "centroid": self._wrap(mean, "centroid", "m", f"{field}-weighted mean of coordinate {axis}", t),
            "width": self._wrap(width, "width", "m", f"{field}-weighted standard deviation", t),
        })

    # ------------------------------------------------------------------ peaks
    def _peak(self, values, keep, sharpness):
        v = values[..., keep]
        return v.max(axis=-1) if sharpness is None else arrays.smooth_max(v, sharpness)

    def peak_temperature(self, region=None, sharpness=None) -> xr.DataArray:
        """Largest lattice temperature (K) per bias, over the nodes of ``region`` (all by
        default); with ``sharpness`` (1/K) the log-sum-exp smooth maximum instead."""
        t = self._node_values("temperature")
        if region is None:
            keep = np.ones(self._ds.sizes["node"], bool)
        else:
            keep = np.zeros(self._ds.sizes["node"], bool)
            keep[self._ds["cells"].values[self._region_cells(region)].ravel()] = True
        return self._wrap(self._peak(t.values, keep, sharpness), "peak_temperature", "K",
                          "peak lattice temperature", t.isel(node=0, drop=True))

    def electric_field(self, vector: bool = False) -> xr.DataArray:
        """Electric field -grad(potential) per cell (P1 gradient, constant in a cell), V/m:
        its magnitude, dims (bias, cell), or with ``vector`` the components (bias, cell, dim)
        ((r, z) when axisymmetric)."""
        psi = self._node_values("potential")
        cells = self._ds["cells"].values
        grad = arrays.cell_gradient(self._ds["x"].values[cells], psi.values[..., cells])
        dims = psi.dims[:-1] + ("cell",)
        coords = psi.isel(node=0, drop=True).coords
        if vector:
            return xr.DataArray(-grad, coords=coords, dims=dims + ("dim",), name="electric_field",
                                attrs=dict(units="V m-1", long_name="electric field -grad(psi)"))
        magnitude = np.sqrt(np.sum(grad**2, axis=-1))
        return xr.DataArray(magnitude, coords=coords, dims=dims, name="electric_field",
                            attrs=dict(units="V m-1", long_name="electric field magnitude"))

    def peak_field(self, region=None, sharpness=None) -> xr.DataArray:
        """Largest field magnitude (V/m) over the cells of ``region`` (all by default) per
        bias; with ``sharpness`` (m/V) the log-sum-exp smooth maximum instead."""
        e = self.electric_field()
        keep = (np.ones(self._ds.sizes["cell"], bool) if region is None
                else self._ds["cell_region"].values == self._region_index(region))
        return self._wrap(self._peak(e.values, keep, sharpness), "peak_field", "V m-1",
                          "peak electric field magnitude", e.isel(cell=0, drop=True))

    # ------------------------------------------------------------------ line profiles
    def _default_line(self):
        """The vertical axis through the device centre: the last coordinate from its minimum
        to its maximum, the others at the bounding-box centre (r = 0 when axisymmetric)."""
        x = self._ds["x"].values
        lo, hi = x.min(axis=0), x.max(axis=0)
        mid = (lo + hi) / 2
        if self._axisymmetric:
            mid[0] = lo[0]
        start, end = mid.copy(), mid.copy()
        start[-1], end[-1] = lo[-1], hi[-1]
        return start, end

    def _samples_1d(self, start, end, split):
        """Node samples of a 1D line: (s, position, node, region); with ``split`` each
        interface node twice, once per region along the line."""
        x = self._ds["x"].values[:, 0]
        start = x.min() if start is None else float(np.ravel(start)[0])
        end = x.max() if end is None else float(np.ravel(end)[0])
        lo, hi = min(start, end), max(start, end)
        tol = 1e-9 * max(np.ptp(x), 1e-300)
        if split:
            cells = self._ds["cells"].values
            creg = self._ds["cell_region"].values
            inside = np.all((x[cells] >= lo - tol) & (x[cells] <= hi + tol), axis=1)
            cells, creg = cells[inside], creg[inside]
            dist = np.abs(x[cells] - start)  # (M, 2)
            order = np.argsort(dist.mean(axis=1), kind="stable")
            ends = np.argsort(dist[order], axis=1, kind="stable")
            nodes = np.take_along_axis(cells[order], ends, axis=1).ravel()
            reg = np.repeat(creg[order], 2)
            keep = np.ones(len(nodes), bool)
            keep[1:] = (nodes[1:] != nodes[:-1]) | (reg[1:] != reg[:-1])
            nodes, reg = nodes[keep], reg[keep]
        else:
            nodes = np.nonzero((x >= lo - tol) & (x <= hi + tol))[0]
            nodes = nodes[np.argsort(np.abs(x[nodes] - start), kind="stable")]
            reg = self._ds["region"].values[nodes]
        s = np.abs(x[nodes] - start)
        return s, x[nodes][:, None], nodes[:, None], np.ones((len(nodes), 1)), reg

    def _samples(self, start, end, n):
        """P1 samples of a segment: (s, position, node indices (n, d+1), barycentric weights,
        region of the containing cell; -1 and NaN weights outside the mesh)."""
        if start is None and end is None:
            start, end = self._default_line()
        elif start is None or end is None:
            raise ValueError("give both start and end (or neither: the vertical axis through the centre)")
        start, end = np.asarray(start, float), np.asarray(end, float)
        d = self._dim
        if start.shape != (d,) or end.shape != (d,):
            raise ValueError(f"start and end need {d} coordinates")
        t = np.linspace(0.0, 1.0, n)
        pos = start + t[:, None] * (end - start)
        cells = self._ds["cells"].values
        x = self._ds["x"].values
        if "barycentric" not in self._cache:
            xc = x[cells]
            # lambda_{1..d} = inv(E^T) (p - x_0), E rows x_k - x_0
            edges_t = np.swapaxes(xc[:, 1:, :] - xc[:, :1, :], 1, 2)
            self._cache["barycentric"] = (xc[:, 0, :], np.linalg.inv(edges_t))
        x0, tinv = self._cache["barycentric"]
        m = len(cells)
        cell = np.full(n, -1)
        lam = np.full((n, d + 1), np.nan)
        chunk = max(1, int(4e6 // max(m * (d + 1), 1)))
        for a in range(0, n, chunk):
            p = pos[a:a + chunk]  # (c, d)
            rest = np.einsum("mij,cmj->cmi", tinv, p[:, None, :] - x0[None])  # (c, M, d)
            full = np.concatenate([1.0 - rest.sum(axis=-1, keepdims=True), rest], axis=-1)
            worst = full.min(axis=-1)  # (c, M): >= 0 inside
            best = np.argmax(worst, axis=1)
            ok = worst[np.arange(len(p)), best] >= -1e-9
            cell[a:a + chunk] = np.where(ok, best, -1)
            lam[a:a + chunk] = np.where(ok[:, None], full[np.arange(len(p)), best], np.nan)
        idx = np.where(cell[:, None] >= 0, cells[np.maximum(cell, 0)], 0)
        region = np.where(cell >= 0, self._ds["cell_region"].values[np.maximum(cell, 0)], -1)
        return t * np.linalg.norm(end - start), pos, idx, lam, region

    def _profile(self, fields, samples) -> xr.Dataset:
        s, pos, idx, w, region = samples
        ds = self._ds
        node = xr.DataArray(idx, dims=("s", "vertex_"))
        weight = xr.DataArray(w, dims=("s", "vertex_"))
        out = xr.Dataset(coords=dict(s=("s", s, dict(units="m", long_name="distance along the line"))))
        out["x"] = (("s", "dim"), pos, dict(units="m", long_name="position of the sample"))
        for name in [fields] if isinstance(fields, str) else fields:
            f = self._node_values(name)
            v = (f.isel(node=node) * weight).where(weight != 0, 0.0).sum("vertex_", skipna=False)
            out[name] = v.where(weight.notnull().all("vertex_")).transpose(..., "s").assign_attrs(f.attrs)
        out["region"] = ("s", region, {k: ds["cell_region"].attrs[k] for k in ("flag_values", "flag_meanings")
                                       if k in ds["cell_region"].attrs} | dict(
            units="1", long_name="region of the sample (-1: outside the mesh)"))
        return out

    def line_profile(self, fields, start=None, end=None, n: int = 200) -> xr.Dataset:
        """Node fields along the segment ``start`` -> ``end`` (coordinates in m), as a
        Dataset over ``s`` (distance from ``start``, m) with the fields, the sample
        positions ``x`` and the ``region`` of each sample.

        In 1D the samples are the nodes between start and end (default: the whole device),
        ``n`` unused, and ``region`` is the node's (first region at interfaces). Otherwise
        ``n`` equally spaced points, each interpolated linearly (P1) in the cell that
        contains it (exact for fields linear in a cell); points outside the mesh get NaN and
        region -1. Default segment: the vertical axis through the device centre.
        """
        samples = self._samples_1d(start, end, False) if self._dim == 1 else self._samples(start, end, n)
        return self._profile(fields, samples)

    def _offsets(self, field):
        """Per-region constant c_k with field = c_k - potential on the region's interior nodes
        (band edges: c = -chi, -chi - Eg); None when the difference is not constant."""
        cells = self._ds["cells"].values
        creg = self._ds["cell_region"].values
        n_node, n_reg = self._ds.sizes["node"], len(self.regions)
        touch = np.zeros((n_reg, n_node), bool)
        touch[np.repeat(creg, cells.shape[1]), cells.ravel()] = True
        interior = touch & (touch.sum(axis=0) == 1)
        e = self._node_values(field).values + self._node_values("potential").values
        out = np.full(e.shape[:-1] + (n_reg,), np.nan)
        for k in range(n_reg):
            if not interior[k].any():
                return None
            v = e[..., interior[k]]
            if np.nanmax(np.abs(v - v[..., :1])) > 1e-9 * max(1.0, np.nanmax(np.abs(v))):
                return None
            out[..., k] = v[..., 0]
        return out

    def band_diagram(self, start=None, end=None, bias=-1, n: int = 400) -> xr.Dataset:
        """Band diagram of one bias point along a line (default: the vertical axis through
        the device centre; the whole device in 1D): ``Ec``, ``Ev`` and the quasi-Fermi
        levels ``Efn`` = -phi_n, ``Efp`` = -phi_p, in eV (0 = Fermi level of a grounded
        contact), over ``s`` (m), with ``region``.

        Where a band edge minus the vacuum level is constant in each region (isothermal
        runs: Ec = -(psi + chi)), it is rebuilt from the interpolated potential and the
        region's offset, so band offsets are sharp steps: in 1D each interface node appears
        twice, once per side. Otherwise (heat on: E_g(T)) the nodal values are interpolated,
        and interface nodes carry the volume-weighted average of the sides (:mod:`pvsim.io`).
        """
        one = self._ds.isel(bias=bias) if "bias" in self._ds.dims else self._ds
        acc = one.pvsim
        samples = (acc._samples_1d(start, end, True) if acc._dim == 1
                   else acc._samples(start, end, n))
        prof = acc._profile(["potential", "Ec", "Ev", "phi_n", "phi_p"], samples)
        region = prof["region"].values
        for name in ("Ec", "Ev"):
            c = acc._offsets(name)
            if c is not None:
                prof[name] = prof[name].copy(data=np.where(region >= 0, c[np.maximum(region, 0)], np.nan)
                                             - prof["potential"].values)
        out = xr.Dataset({
            "Ec": prof["Ec"].assign_attrs(units="eV", long_name="conduction band edge"),
            "Ev": prof["Ev"].assign_attrs(units="eV", long_name="valence band edge"),
            "Efn": (-prof["phi_n"]).assign_attrs(units="eV", long_name="electron quasi-Fermi level -phi_n"),
            "Efp": (-prof["phi_p"]).assign_attrs(units="eV", long_name="hole quasi-Fermi level -phi_p"),
            "region": prof["region"], "x": prof["x"],
        })
        return out
