"""Post-processing (pvsim.post, the ds.pvsim accessor) and the array layer of pvsim.figures,
against hand-computed values on small 1D runs and synthetic Datasets."""

import tomllib
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

import pvsim.post  # noqa: F401  (registers ds.pvsim)
from pvsim.api import run_case
from pvsim.figures import arrays
from pvsim.units import Q

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def pn():
    """The textbook silicon diode on a coarse mesh, with radiative and Auger recombination
    added so that every bulk channel is on; both minority carriers reach the contacts."""
    data = tomllib.loads((ROOT / "cases" / "pn_diode_1d.toml").read_text())
    for layer in data["mesh"]["layers"]:
        layer.update(spacing_nm=20, min_spacing_nm=2)
    data["materials"]["silicon"].update(radiative_B_cm3_s=1e-10, auger_Cn_cm6_s=1e-28, auger_Cp_cm6_s=1e-28)
    data["sweep"] = {"contact": "anode", "voltages_V": [0.0, 0.2, 0.4, 0.5, 0.6]}
    ds = run_case(data, base_dir=ROOT / "cases")
    assert ds.attrs["status"] == "complete"
    return ds


def _pin(etl_gap):
    """p-HTL / intrinsic emitter / n-ETL, 20 nm each, radiative recombination in the emitter
    only. HTL conduction band 1 eV above the emitter's (electrons blocked); the ETL valence
    band 1 eV below it with ``etl_gap`` 3 eV (holes blocked), level with it at 2 eV."""
    def mat(chi, gap, **kw):
        return dict(kind="semiconductor", eps_r=5.0, electron_affinity_eV=chi, band_gap_eV=gap,
                    Nc_cm3=1e19, Nv_cm3=1e19, mu_n_cm2_Vs=1e-2, mu_p_cm2_Vs=1e-2, **kw)

    layer = dict(thickness_nm=20, spacing_nm=1.0, min_spacing_nm=0.1)
    case = dict(
        simulation=dict(name="pin", temperature_K=300.0),
        mesh=dict(left_contact="anode", right_contact="cathode",
                  layers=[dict(region=r, material=r, **layer) for r in ("htl", "eml", "etl")]),
        materials=dict(htl=mat(2.0, 3.0), eml=mat(3.0, 2.0, radiative_B_cm3_s=1e-10), etl=mat(3.0, etl_gap)),
        regions=dict(htl=dict(acceptors_cm3=1e18), etl=dict(donors_cm3=1e18)),
        contacts=dict(anode=dict(type="ohmic"), cathode=dict(type="ohmic")),
        sweep=dict(contact="anode", voltages_V=[0.0, 1.5, 2.0]),
    )
    ds = run_case(case)
    assert ds.attrs["status"] == "complete"
    return ds


@pytest.fixture(scope="module")
def pin():
    return _pin(3.0)


def _synthetic(points, cells, cell_region, regions, geometry, **fields):
    """A Dataset with the mesh variables of pvsim.io and node fields (bias, node)."""
    ds = xr.Dataset(coords=dict(x=(("node", "dim"), points)), attrs=dict(
        regions=" ".join(regions), geometry=geometry, current_units="A m-2"))
    ds["cells"] = (("cell", "vertex"), cells)
    ds["cell_region"] = ("cell", cell_region)
    for name, values in fields.items():
        ds[name] = (("bias", "node"), values, dict(units="V"))
    return ds


# ---------------------------------------------------------------------------- array layer
def test_array_layer_numpy_and_jax_agree():
    rng = np.random.default_rng(0)
    ch = rng.uniform(0.1, 1.0, (3, 4))
    w, x = rng.uniform(0.0, 1.0, (3, 7)), np.linspace(0.0, 1e-7, 7)
    v, i = rng.uniform(300.0, 320.0, (3, 9)), np.array([2.0, -3.0, 0.5])
    cases = [
        (arrays.iqe, (ch[:, 1], i)),
        (arrays.charge_balance, (ch.sum(-1), i)),
        (arrays.recombination_fractions, (ch,)),
        (arrays.zone, (w, x)),
        (arrays.smooth_max, (v, 2.0)),
        (arrays.region_fraction, (ch[:, 0], i)),
        (arrays.eqe, (ch[:, 1], 0.2)),
    ]
    for f, args in cases:
        a = f(*args)
        b = f(*[jnp.asarray(z) if isinstance(z, np.ndarray) else z for z in args])
        assert not isinstance(a[0] if isinstance(a, tuple) else a, jax.Array)  # numpy in, numpy out
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-13, err_msg=f.__name__)
    # hand values
    np.testing.assert_allclose(arrays.iqe(ch[:, 1], i), ch[:, 1] / np.abs(i))
    np.testing.assert_allclose(arrays.recombination_fractions(ch).sum(-1), 1.0)
    mean, width = arrays.zone(np.array([1.0, 0.0, 1.0]), np.array([0.0, 1.0, 2.0]))
    assert mean == 1.0 and width == 1.0
    assert arrays.eqe(0.5, 0.2) == pytest.approx(0.1)


def test_smooth_max_tends_to_max_and_is_differentiable():
    v = np.array([300.0, 310.0, 312.0, 311.5, 305.0])
    errors = []
    for s in (0.1, 1.0, 10.0, 100.0):
        m = arrays.smooth_max(v, s)
        assert v.max() <= m <= v.max() + np.log(len(v)) / s
        errors.append(m - v.max())
    assert np.all(np.diff(errors) < 0) and errors[-1] < 1e-12
    g = jax.jit(jax.grad(lambda z: arrays.smooth_max(z, 1.0)))(jnp.asarray(v))
    assert np.all(np.isfinite(g))
    soft = np.exp(v - v.max()) / np.exp(v - v.max()).sum()  # the gradient is the softmax
    np.testing.assert_allclose(np.asarray(g), soft, rtol=1e-12)
    # large values (a field in V/m) do not overflow
    assert arrays.smooth_max(jnp.asarray([1e8, 2e8]), 1e-6) == pytest.approx(2e8)


# ---------------------------------------------------------------------------- efficiencies
def test_confined_radiative_pin_has_unit_iqe(pin):
    """Radiative recombination only, both carriers blocked by 1 eV offsets: every injected
    pair recombines radiatively, IQE = charge balance = 1, and it happens in the emitter."""
    acc = pin.pvsim
    i = pin.current.sel(contact="anode").values
    own = Q * (pin.R_rad * pin.volume).sum("node").values[1:] / np.abs(i[1:])  # my own integral
    np.testing.assert_allclose(acc.iqe().values[1:], own, rtol=1e-10)
    np.testing.assert_allclose(acc.iqe().values[1:], 1.0, atol=1e-9)
    np.testing.assert_allclose(acc.charge_balance().values[1:], 1.0, atol=1e-9)
    assert np.isnan(acc.iqe().values[0])  # no current at 0 V
    frac = acc.recombination_fractions().fraction
    np.testing.assert_array_equal(frac.sel(channel="radiative").values[1:], 1.0)
    np.testing.assert_allclose(acc.eqe(0.2).values, 0.2 * acc.iqe().values)
    # regions: everything in the emitter but the interface nodes' share (module docstring:
    # a region gets its volume share of an interface node's average)
    parts = {r: acc.region_current_fraction(r).values[1:] for r in acc.regions}
    np.testing.assert_allclose(sum(parts.values()), acc.charge_balance().values[1:], rtol=1e-12)
    assert np.all(parts["eml"] > 0.99)
    zone = acc.recombination_zone()
    assert np.all((20e-9 < zone.centroid[1:]) & (zone.centroid[1:] < 40e-9))
    assert np.all((0 < zone.width[1:]) & (zone.width[1:] < 10e-9))  # half the emitter at most


def test_hole_overshoot_lowers_charge_balance_by_the_leak():
    """With no hole barrier at the ETL, holes reach the cathode: charge balance (= IQE, all
    recombination radiative) is 1 - |I_p(cathode)| / I, electrons still blocked at the anode."""
    ds = _pin(2.0)
    acc = ds.pvsim
    i = ds.current.sel(contact="anode").values[1:]
    leak_p = -ds.current_p.sel(contact="cathode").values[1:]
    leak_n = ds.current_n.sel(contact="anode").values[1:]
    assert np.all(leak_p > 0.2 * i) and np.all(np.abs(leak_n) < 1e-12 * i)
    cb = acc.charge_balance(contact="anode").values[1:]
    np.testing.assert_allclose(cb, 1 - (leak_n + leak_p) / i, rtol=1e-10)
    np.testing.assert_allclose(acc.iqe().values[1:], cb, rtol=1e-12)
    assert np.all(cb < 0.8)


def test_pn_charge_balance_fractions_and_integrals(pn, tmp_path):
    acc = pn.pvsim
    i = pn.current.sel(contact="anode").values
    fwd = slice(1, None)
    # charge balance: 1 minus the minority currents reaching the far contacts
    leak = pn.current_n.sel(contact="anode").values - pn.current_p.sel(contact="cathode").values
    cb = acc.charge_balance("anode").values
    np.testing.assert_allclose(cb[fwd], 1 - leak[fwd] / i[fwd], rtol=1e-10)
    assert np.all(cb[fwd] < 0.1)  # long diffusion lengths: most current leaks
    np.testing.assert_allclose(acc.iqe().values, pn.iqe.values, rtol=1e-12)
    # recombination currents are q sum(R * volume); the fractions are their ratios
    rc = pn.recombination_current
    for name, ch in [("R_srh", "srh"), ("R_rad", "radiative"), ("R_auger", "auger")]:
        np.testing.assert_allclose(Q * (pn[name] * pn.volume).sum("node"), rc.sel(channel=ch), rtol=1e-12)
    frac = acc.recombination_fractions()
    np.testing.assert_allclose(frac.fraction.sum("channel")[fwd], 1.0, rtol=1e-14)
    np.testing.assert_allclose(frac.fraction[fwd], (rc / rc.sum("channel"))[fwd], rtol=1e-14)
    assert np.all(frac.fraction.sel(channel=["srh", "radiative", "auger"])[fwd] > 0)
    # region volumes partition the node volumes; region integrals add up to the total
    np.testing.assert_allclose(acc.region_volume("p_side") + acc.region_volume("n_side"), pn.volume,
                               rtol=1e-13)
    parts = acc.region_integral("R_srh", "p_side") + acc.region_integral("R_srh", "n_side")
    np.testing.assert_allclose(parts, acc.region_integral("R_srh"), rtol=1e-13)
    np.testing.assert_allclose(sum(acc.region_current_fraction(r) for r in acc.regions)[fwd], cb[fwd],
                               rtol=1e-12)
    # a linear field is integrated exactly over each region: int_0^1um x dx, int_1um^2um x dx
    x = xr.DataArray(np.broadcast_to(pn.x.values[:, 0], (pn.sizes["bias"], pn.sizes["node"])),
                     dims=("bias", "node"), name="position")
    np.testing.assert_allclose(acc.region_integral(x, "p_side"), 0.5e-12, rtol=1e-12)
    np.testing.assert_allclose(acc.region_integral(x, 1), 1.5e-12, rtol=1e-12)
    # symmetric doping: the recombination centroid at the junction
    np.testing.assert_allclose(acc.recombination_zone().centroid[fwd], 1e-6, rtol=1e-2)
    # isothermal: peak temperature 300 K, the smooth maximum within log(N)/sharpness of it
    np.testing.assert_array_equal(acc.peak_temperature(), 300.0)
    sm = acc.peak_temperature(sharpness=10.0).values
    assert np.all((sm > 300.0) & (sm <= 300.0 + np.log(pn.sizes["node"]) / 10.0 + 1e-12))
    # the accessor works on the NetCDF file read back
    pn.to_netcdf(tmp_path / "pn.nc", engine="h5netcdf")
    with xr.open_dataset(tmp_path / "pn.nc", engine="h5netcdf") as back:
        np.testing.assert_allclose(back.pvsim.charge_balance("anode"), cb, rtol=1e-15)


# ---------------------------------------------------------------------------- IV
def _iv(voltage, current, units="A m-2"):
    ds = xr.Dataset(coords=dict(bias=np.arange(len(voltage)), contact=["anode", "cathode"]),
                    attrs=dict(current_units=units))
    ds["voltage"] = (("bias", "contact"), np.stack([voltage, np.zeros_like(voltage)], 1))
    ds["current"] = (("bias", "contact"), np.stack([current, -current], 1))
    return ds


def test_turn_on_voltage_of_an_exponential_iv(pn):
    v = np.array([-0.5, 0.0, 0.4, 0.8, 1.2, 1.6, 2.0])
    j0, v0 = 1e-6, 0.1
    j = np.where(v > 0, j0 * np.exp(v / v0), np.where(v < 0, -1e-3, 0.0))  # reverse: large, negative
    acc = _iv(v, j).pvsim
    assert acc.turn_on_voltage(1.0) == pytest.approx(v0 * np.log(1.0 / j0), rel=1e-12)
    assert acc.turn_on_voltage(1e2) == pytest.approx(v0 * np.log(1e2 / j0), rel=1e-12)
    assert np.isnan(acc.turn_on_voltage(1e30)) and np.isnan(acc.turn_on_voltage(1e-8))
    with pytest.raises(ValueError):
        acc.iv(area=1e-12)  # a 1D current is already a density
    # 2D: A/m over a 2 um wide device
    acc2 = _iv(v, j * 2e-6, "A m-1").pvsim
    assert "current_density" not in acc2.iv()
    np.testing.assert_allclose(acc2.iv(area=2e-6).current_density, j)
    assert acc2.turn_on_voltage(1.0, area=2e-6) == pytest.approx(v0 * np.log(1.0 / j0), rel=1e-12)
    # a solved diode: log-linear between the bracketing bias points
    iv = pn.pvsim.iv()
    np.testing.assert_array_equal(iv.current_density, iv.current)
    lj = np.log10(iv.current.values[1:])
    expected = np.interp(0.0, lj, iv.voltage.values[1:])
    assert pn.pvsim.turn_on_voltage(1.0) == pytest.approx(expected, rel=1e-12)


# ---------------------------------------------------------------------------- fields, profiles
def test_line_profile_band_diagram_and_field_1d(pn):
    acc = pn.pvsim
    x = pn.x.values[:, 0]
    prof = acc.line_profile(["potential", "n"])
    np.testing.assert_array_equal(prof.s, x - x[0])
    np.testing.assert_array_equal(prof.potential, pn.potential)
    np.testing.assert_array_equal(prof.region, pn.region)
    back = acc.line_profile("n", start=1.5e-6, end=0.5e-6)  # reversed, a part
    keep = (x >= 0.5e-6 - 1e-15) & (x <= 1.5e-6 + 1e-15)
    np.testing.assert_array_equal(back.n.values, pn.n.values[:, keep][:, ::-1])
    np.testing.assert_allclose(back.s, 1.5e-6 - x[keep][::-1], atol=1e-21)
    # band diagram: nodal band edges (one material), the interface node once per side, and
    # quasi-Fermi levels at -qV at the anode, 0 at the grounded cathode
    bd = acc.band_diagram(bias=-1)
    assert bd.sizes["s"] == len(x) + 1
    node = np.searchsorted(x, bd.x.values[:, 0])
    np.testing.assert_allclose(bd.Ec, pn.Ec.values[-1, node], atol=1e-12)
    np.testing.assert_allclose(bd.Ev, pn.Ev.values[-1, node], atol=1e-12)
    assert bd.Efn.values[0] == pytest.approx(-0.6) and bd.Efp.values[-1] == 0.0
    # field: per-cell slope of the potential
    e = acc.electric_field()
    cells = pn.cells.values
    slope = np.abs(np.diff(pn.potential.values[:, cells], axis=-1)[..., 0] / np.diff(x[cells], axis=-1)[:, 0])
    assert e.dims == ("bias", "cell")
    np.testing.assert_allclose(e, slope, rtol=1e-12)
    np.testing.assert_allclose(acc.peak_field("n_side"), slope[:, pn.cell_region.values == 1].max(-1))
    peak = acc.peak_field().values
    assert np.all(peak[:-1] > peak[1:]) and 1e6 < peak[0] < 1e8  # forward bias lowers it
    # a linear potential: uniform field on a non-uniform mesh
    xs = np.array([0.0, 1e-9, 3e-9, 7e-9, 8e-9])
    lin = _synthetic(xs[:, None], np.array([[0, 1], [1, 2], [2, 3], [3, 4]]), np.array([0, 0, 1, 1]),
                     ["a", "b"], "1D", potential=np.stack([2e7 * xs, -5e6 * xs]))
    np.testing.assert_allclose(lin.pvsim.electric_field().values, [[2e7] * 4, [5e6] * 4], rtol=1e-12)
    np.testing.assert_allclose(lin.pvsim.electric_field(vector=True).values[..., 0], [[-2e7] * 4, [5e6] * 4],
                               rtol=1e-12)


def test_band_offsets_are_sharp_steps(pin):
    """Isothermal: Ec = c_region - psi, so the band diagram steps by the affinity difference
    exactly at each interface (the nodal Ec there is the average of the two sides)."""
    bd = pin.pvsim.band_diagram(bias=-1)
    twice = np.nonzero(np.diff(bd.s.values) == 0)[0]
    np.testing.assert_allclose(bd.s.values[twice], [20e-9, 40e-9], rtol=1e-12)
    np.testing.assert_array_equal(bd.region.values[twice], [0, 1])
    np.testing.assert_array_equal(bd.region.values[twice + 1], [1, 2])
    step_c = bd.Ec.values[twice] - bd.Ec.values[twice + 1]
    step_v = bd.Ev.values[twice] - bd.Ev.values[twice + 1]
    np.testing.assert_allclose(step_c, [1.0, 0.0], atol=1e-12)  # HTL conduction band 1 eV above
    np.testing.assert_allclose(step_v, [0.0, 1.0], atol=1e-12)  # ETL valence band 1 eV below
    assert bd.Efn.values[0] == pytest.approx(-2.0) and bd.Efn.values[-1] == 0.0


def test_line_profile_and_field_on_an_axisymmetric_mesh():
    """A potential linear in (r, z) on the core/shell mesh: P1 interpolation reproduces it
    exactly along any segment, its field is uniform, and the region volumes (2 pi r
    weighted) add up to the solver's node control volumes."""
    from pvsim.case import build_device, load_case

    data = tomllib.loads((ROOT / "cases" / "core_shell_axisym.toml").read_text())
    data["geometry"]["resolution"] = 0.5
    dev = build_device(*load_case(data, ROOT / "cases"))
    mesh, names = dev.mesh, dev.disc.region_names
    cells = np.concatenate([mesh.regions[r] for r in names])
    creg = np.concatenate([np.full(len(mesh.regions[r]), k) for k, r in enumerate(names)])
    r, z = mesh.points[:, 0], mesh.points[:, 1]
    coef = np.array([[0.3, 2e7, -1e8], [-1.0, 5e6, 4e7]])  # psi = a + b r + c z, two "biases"
    psi = coef[:, :1] + coef[:, 1:2] * r + coef[:, 2:] * z
    ds = _synthetic(mesh.points, cells, creg, names, "axisymmetric (r, z)", potential=psi)
    acc = ds.pvsim
    volume = np.bincount(dev.disc.site_node, dev.disc.site_volume, mesh.n_nodes) * dev.scales.L_ref ** 3
    np.testing.assert_allclose(sum(acc.region_volume(k) for k in names), volume, rtol=1e-12,
                               atol=1e-12 * volume.max())
    e = acc.electric_field()
    np.testing.assert_allclose(e, np.hypot(coef[:, 1], coef[:, 2])[:, None] * np.ones(len(cells)), rtol=1e-8)
    np.testing.assert_allclose(acc.electric_field(vector=True).isel(cell=7), -coef[:, 1:], rtol=1e-8)
    def exact(pts):
        return coef[:, :1] + coef[:, 1:2] * pts[:, 0] + coef[:, 2:] * pts[:, 1]

    # from the centroid of a cell of the first region to one of the last
    a = mesh.points[cells[creg == 0][0]].mean(0)
    b = mesh.points[cells[creg == len(names) - 1][-1]].mean(0)
    prof = acc.line_profile("potential", a, b, n=101)
    s = np.linspace(0, 1, 101)
    np.testing.assert_allclose(prof.potential, exact(a + s[:, None] * (b - a)), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(prof.s, s * np.linalg.norm(b - a), rtol=1e-12)
    assert prof.region.values[0] == 0 and prof.region.values[-1] == len(names) - 1
    assert set(prof.region.values) <= set(range(len(names)))
    # radially out of the cell (r > r_max): NaN and region -1 there
    start, end = np.array([0.0, z.mean()]), np.array([1.5 * r.max(), z.mean()])
    out = acc.line_profile("potential", start, end, n=61)
    inside = out.region.values >= 0
    np.testing.assert_array_equal(inside, out.x.values[:, 0] <= r.max() * (1 + 1e-12))
    pts = out.x.values
    np.testing.assert_allclose(out.potential.values[:, inside], exact(pts)[:, inside], rtol=1e-10, atol=1e-12)
    assert np.all(np.isnan(out.potential.values[:, ~inside]))
    # default line: the symmetry axis r = 0, bottom to top, inside the mesh throughout
    axis = acc.line_profile("potential", n=50)
    assert np.all(axis.x.values[:, 0] == r.min()) and np.all(axis.region.values >= 0)
    np.testing.assert_allclose(axis.potential.values[:, [0, -1]],
                               coef[:, :1] + coef[:, 2:] * np.array([z.min(), z.max()]), rtol=1e-10)


def test_current_density_and_field_maps_1d(pn):
    """The node map of |J| (cell drift-diffusion in quasi-Fermi form) equals the terminal
    current density in 1D, where the steady current is uniform; |E| equals -dpsi/dx. Next to
    the contacts (two nodes each side of this 20 nm mesh) the minority density changes by
    orders of magnitude across one cell and the cell-mean density of the map overestimates J
    (up to 5x), and single nodes in the depletion region are off by a few percent. The map is
    for pictures, the exact currents come from the edge fluxes."""
    ds = pn
    b = int(np.argmax(np.abs(ds.current.sel(contact="anode").values)))
    x, psi = ds.x.values[:, 0], ds.potential.values[b]
    order = np.argsort(x)
    j = ds.current_density.values[b][order] / abs(float(ds.current.sel(contact="anode")[b]))
    assert abs(np.median(j) - 1) < 1e-3 and np.percentile(np.abs(j - 1), 80) < 0.01
    slope = np.abs(np.diff(psi[order]) / np.diff(x[order]))
    inner = ds.field.values[b][order][1:-1]
    lo, hi = np.minimum(slope[:-1], slope[1:]), np.maximum(slope[:-1], slope[1:])
    assert np.all((inner >= lo * (1 - 1e-9)) & (inner <= hi * (1 + 1e-9)))  # a mean of its two cells
