"""Plots (pvsim.plots) and ParaView export (pvsim.export) of real sweep results.

Three small sweeps, run once for the module: cases/nc_led_1d.toml (1D, 3 bias points),
cases/core_shell_axisym.toml at half resolution (axisymmetric, 3 points), and a 3D silicon
pn box (gmsh box, 2 points). The hopping layers run with Boltzmann statistics here: the
Gauss-Fermi tables cost ~35 s of XLA compilation, and nothing plotted depends on them.
"""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import meshio
import numpy as np
import pytest

from pvsim import export, plots
from pvsim.api import run_case

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


def _boltzmann(data: dict) -> dict:
    for mat in data.get("materials", {}).values():
        if mat.get("statistics") == "gauss_fermi":
            mat["statistics"] = "boltzmann"
            mat.pop("disorder_n_eV", None)
            mat.pop("disorder_p_eV", None)
    for reg in data.get("regions", {}).values():
        lib = reg.get("material")
        if lib in ("TFB", "TPBi", "poly_TPD", "PVK"):  # Gauss-Fermi library entries
            data["materials"][f"{lib}_boltzmann"] = {"base": lib, "statistics": "boltzmann"}
            reg["material"] = f"{lib}_boltzmann"
    return data


@pytest.fixture(scope="module")
def led1d(tmp_path_factory):
    data = _boltzmann(tomllib.loads((ROOT / "cases" / "nc_led_1d.toml").read_text()))
    data["sweep"] = {"contact": "anode", "voltages_V": [0.0, 2.0, 3.0]}
    out = tmp_path_factory.mktemp("led1d") / "led1d.nc"
    ds = run_case(data, base_dir=ROOT / "cases", output=out)
    return ds, out


@pytest.fixture(scope="module")
def axisym(tmp_path_factory):
    data = _boltzmann(tomllib.loads((ROOT / "cases" / "core_shell_axisym.toml").read_text()))
    data["geometry"]["resolution"] = 0.5
    data["sweep"] = {"contact": "anode", "voltages_V": [0.0, 2.0, 3.0]}
    out = tmp_path_factory.mktemp("axisym") / "core_shell.nc"
    ds = run_case(data, base_dir=ROOT / "cases", output=out)
    return ds, out


@pytest.fixture(scope="module")
def box3d(tmp_path_factory):
    from pvsim.geometry import box

    d = tmp_path_factory.mktemp("box3d")
    box((1.0, 1.0, 1.0), h=0.3, msh_path=d / "box.msh", length_unit="um")
    si = dict(kind="semiconductor", eps_r=11.1, electron_affinity_eV=4.05, intrinsic_density_cm3=1e10,
              Nc_cm3=1e19, Nv_cm3=1e19, mu_n_cm2_Vs=400, mu_p_cm2_Vs=200, tau_n_s=1e-5, tau_p_s=1e-5)
    step = dict(type="step", axis="x", position_nm=500.0)
    data = {"mesh": {"file": "box.msh", "length_unit": "um"}, "materials": {"si": si},
            "regions": {"domain": {"material": "si", "doping": [
                {**step, "acceptors_cm3": 1e17, "side": "below"},
                {**step, "donors_cm3": 1e17, "side": "above"}]}},
            "contacts": {"xmin": {"type": "ohmic"}, "xmax": {"type": "ohmic"}},
            "sweep": {"contact": "xmin", "voltages_V": [0.0, 0.3]}}
    return run_case(data, base_dir=d), None  # (the coarse box logs negative EAFE weights)


def _line(ax, gid):
    (line,) = [ln for ln in ax.get_lines() if ln.get_gid() == gid]
    return np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)


def _png_ok(path: Path):
    assert path.is_file() and path.read_bytes()[:8] == PNG
    assert path.stat().st_size > 10_000  # axes, labels and data drawn, not an empty canvas


# ------------------------------------------------------------------------------- plots
def test_headless_no_pyplot(led1d, tmp_path):
    """import pvsim (and the plot/export modules) loads no matplotlib; plotting uses no pyplot."""
    code = ("import sys, pvsim, pvsim.plots, pvsim.export\n"
            "assert 'matplotlib' not in sys.modules\n"
            f"pvsim.plots.cli_plot({str(led1d[1])!r}, band=True, output_dir={str(tmp_path)!r})\n"
            "assert 'matplotlib.pyplot' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120,
                   env={**os.environ, "MPLBACKEND": "TkAgg"})  # a GUI backend would need a display
    _png_ok(tmp_path / "led1d_band.png")


def test_iv(led1d, tmp_path):
    ds, _ = led1d
    ax = plots.plot_iv(ds)
    v, i = _line(ax, "current")
    cur = np.abs(ds["current"].sel(contact="anode").values)
    keep = cur > 0
    assert np.array_equal(v, ds["voltage"].sel(contact="anode").values[keep])
    assert np.array_equal(i, cur[keep]) and len(i) >= 2
    assert ax.get_yscale() == "log" and "A m$^{-2}$" in ax.get_ylabel()
    _png_ok(plots.save_figure(ax.figure, tmp_path / "iv.png"))
    with pytest.raises(ValueError, match="contacts: anode, cathode"):
        plots.plot_iv(ds, contact="gate")


def test_band_1d_at_nodes(led1d, tmp_path):
    ds, _ = led1d
    ax = plots.plot_band(ds, bias=-1)
    order = np.argsort(ds["x"].values[:, 0])
    x, ec = _line(ax, "Ec")
    assert np.allclose(x, ds["x"].values[order, 0] * 1e9, rtol=1e-12)
    assert np.array_equal(ec, ds["Ec"].isel(bias=-1).values[order])
    _, efn = _line(ax, "phi_n")
    assert np.array_equal(efn, -ds["phi_n"].isel(bias=-1).values[order])
    labels = {t.get_text() for t in ax.texts}
    assert set(ds.attrs["regions"].split()) <= labels
    _png_ok(plots.save_figure(ax, tmp_path / "band.png"))


def test_band_axisym_on_axis(axisym):
    """Default line: the symmetry axis; every node on it is sampled with its own values."""
    ds, _ = axisym
    ax = plots.plot_band(ds, bias=1)
    z, ec = _line(ax, "Ec")
    x = ds["x"].values
    on = np.flatnonzero(np.abs(x[:, 0]) < 1e-15)
    assert len(on) > 10 and ax.get_xlabel() == "z (nm)"
    at = np.searchsorted(z, x[on, 1] * 1e9)
    assert np.allclose(z[at], x[on, 1] * 1e9, rtol=1e-12)
    assert np.allclose(ec[at], ds["Ec"].isel(bias=1).values[on], rtol=0, atol=1e-12)
    # between nodes: P1 interpolation stays within the field's range, no gaps
    assert np.isfinite(ec).all() and ec.min() >= ds["Ec"].isel(bias=1).min() - 1e-12
    assert {"core", "shell", "htl", "etl"} <= {t.get_text() for t in ax.texts}
    # an oblique line: distance along it, P1 values of a linear field are exact
    lin = ds.copy()
    lin["Ec"] = (("bias", "node"), np.broadcast_to(3e7 * x[:, 0] + 1e7 * x[:, 1], (ds.sizes["bias"], len(x))))
    a, b = np.array([1e-9, 5e-9]), np.array([8e-9, 100e-9])
    s, e = _line(plots.plot_band(lin, start=a, end=b), "Ec")
    pts = a + (s * 1e-9 / np.linalg.norm(b - a))[:, None] * (b - a)
    assert np.allclose(e, 3e7 * pts[:, 0] + 1e7 * pts[:, 1], rtol=1e-9)


def test_band_3d(box3d):
    ds, _ = box3d
    ax = plots.plot_band(ds)
    z, ec = _line(ax, "Ec")
    assert ax.get_xlabel() == "z (nm)" and np.isclose(z[0], 0) and np.isclose(z[-1], 1000)
    assert np.isfinite(ec).all()


def test_map_axisym_one_colour_per_cell(axisym, tmp_path):
    from matplotlib.colors import LogNorm

    ds, _ = axisym
    ax = plots.plot_map(ds, "potential")
    c = ax.collections[0].get_array()
    assert len(c) == ds.sizes["cell"]
    assert np.allclose(c, ds["potential"].isel(bias=-1).values[ds["cells"].values].mean(axis=1))
    _png_ok(plots.save_figure(ax, tmp_path / "potential.png"))
    # densities: log scale; the insulating matrix blank (NaN), every other cell coloured
    ax = plots.plot_map(ds, "n", mirror=True)
    coll = ax.collections[0]
    c = np.ma.filled(coll.get_array(), np.nan)
    assert isinstance(coll.norm, LogNorm) and len(c) == 2 * ds.sizes["cell"]
    matrix = ds.attrs["regions"].split().index("matrix")
    in_matrix = np.tile(ds["cell_region"].values == matrix, 2)
    assert np.isnan(c[in_matrix]).all() and np.isfinite(c[~in_matrix]).all()
    _png_ok(plots.save_figure(ax.figure, tmp_path / "n_mirror.png"))


def test_map_3d_slice_is_exact_p1(box3d, tmp_path):
    """A cut normal to y near the centre: one polygon per cut tetrahedron, corners on the
    plane, and the colour of a linear field equal to its value at the polygon's corner mean."""
    ds, _ = box3d
    x, cells = ds["x"].values, ds["cells"].values
    y = np.unique(x[:, 1])
    gap = np.diff(y) > 1e-8  # a plane clear of every node (no degenerate cuts to count)
    mid = 0.5 * (y[1:] + y[:-1])[gap]
    y0 = mid[np.argmin(np.abs(mid - 0.5e-6))]
    d = x[cells, 1] - y0
    n_cut = int(np.sum((d.min(axis=1) < 0) & (d.max(axis=1) > 0)))
    lin = ds.copy()
    lin["potential"] = (("bias", "node"), np.broadcast_to(2e6 * x[:, 0] - 1e6 * x[:, 2], (2, len(x))))
    ax = plots.plot_map(lin, "potential", slice_at=y0)
    coll = ax.collections[0]
    c = coll.get_array()
    assert len(c) == n_cut
    for path, value in zip(coll.get_paths(), c):
        corners = np.unique(path.vertices, axis=0) * 1e-9  # (x, z) in nm -> m
        assert len(corners) in (3, 4)
        assert np.isclose(value, np.mean(2e6 * corners[:, 0] - 1e6 * corners[:, 1]), rtol=0, atol=1e-9)
    assert ax.get_xlabel() == "x (nm)" and ax.get_ylabel() == "z (nm)"
    ax = plots.plot_map(ds, "n", slice_axis="z")
    assert len(ax.collections[0].get_array()) > 0
    _png_ok(plots.save_figure(ax, tmp_path / "n3d.png"))


def test_map_1d(led1d):
    ds, _ = led1d
    order = np.argsort(ds["x"].values[:, 0])
    ax = plots.plot_map(ds, "n", bias=1)
    _, n = _line(ax, "n")
    assert ax.get_yscale() == "log" and np.array_equal(n, ds["n"].isel(bias=1).values[order])
    ax = plots.plot_map(ds, "potential", log=None)
    assert ax.get_yscale() == "linear"
    with pytest.raises(ValueError, match="not a node field"):
        plots.plot_map(ds, "current")


def test_auto_log():
    assert plots.auto_log(np.array([0.0, 1.0, 1e5]))
    assert not plots.auto_log(np.array([1.0, 10.0, 500.0]))
    assert not plots.auto_log(np.array([-1.0, 1.0, 1e5]))
    assert not plots.auto_log(np.array([np.nan, 0.0]))


def test_cli_plot(axisym, tmp_path):
    _, nc = axisym
    paths = plots.cli_plot(nc, iv=True, band=True, maps=("R_rad", "temperature"), bias=1,
                           output_dir=tmp_path / "figs")
    assert [p.name for p in paths] == ["core_shell_iv.png", "core_shell_band.png",
                                      "core_shell_R_rad.png", "core_shell_temperature.png"]
    for p in paths:
        _png_ok(p)
    (pdf,) = plots.cli_plot(nc, maps=["Ec"], output_dir=tmp_path, fmt="pdf")
    assert pdf.read_bytes()[:4] == b"%PDF"
    with pytest.raises(ValueError, match="node fields"):
        plots.cli_plot(nc, maps=["nope"], output_dir=tmp_path / "none")
    assert not (tmp_path / "none").exists()
    with pytest.raises(ValueError, match=".png or .pdf"):
        plots.save_figure(plots.plot_iv(axisym[0]), tmp_path / "iv.svg")


# ------------------------------------------------------------------------------- export
def _check_fields(ds, b, point_data):
    fields = [k for k, v in ds.data_vars.items() if v.dims == ("bias", "node")]
    assert {"potential", "phi_n", "n", "R_rad", "Ec", "temperature"} <= set(fields)
    for k in fields:
        assert np.array_equal(point_data[k], ds[k].isel(bias=b).values, equal_nan=True), k
    assert np.array_equal(point_data["region"], ds["region"].values)


@pytest.mark.parametrize("case", ["led1d", "axisym", "box3d"])
def test_vtu_roundtrip(case, request, tmp_path):
    ds, _ = request.getfixturevalue(case)
    path = export.to_vtu(ds, tmp_path / "out.vtu", bias=1)
    m = meshio.read(path)
    x = ds["x"].values
    dim = x.shape[1]
    assert np.array_equal(m.points[:, :dim], x) and not m.points[:, dim:].any()
    (block,) = m.cells
    assert block.type == {1: "line", 2: "triangle", 3: "tetra"}[dim]
    assert np.array_equal(block.data, ds["cells"].values)
    assert np.array_equal(m.cell_data["cell_region"][0], ds["cell_region"].values)
    _check_fields(ds, 1, m.point_data)


@pytest.mark.parametrize("case", ["led1d", "axisym"])
def test_xdmf_time_series(case, request, tmp_path):
    ds, _ = request.getfixturevalue(case)
    path = export.to_xdmf(ds, tmp_path / "sub" / "out.xdmf")
    assert (tmp_path / "sub" / "out.h5").is_file()
    with meshio.xdmf.TimeSeriesReader(path) as reader:
        points, cells = reader.read_points_cells()
        assert np.array_equal(points[:, :ds.sizes["dim"]], ds["x"].values)
        assert np.array_equal(cells[0].data, ds["cells"].values)
        assert reader.num_steps == ds.sizes["bias"]
        for k in range(reader.num_steps):
            t, point_data, cell_data = reader.read_data(k)
            assert t == k
            _check_fields(ds, k, point_data)
            assert np.array_equal(cell_data["cell_region"][0], ds["cell_region"].values)


def test_cli_export(led1d, tmp_path):
    ds, nc = led1d
    vtu = export.cli_export(nc, tmp_path / "led.vtu", bias=0)
    _check_fields(ds, 0, meshio.read(vtu).point_data)
    xdmf = export.cli_export(nc, tmp_path / "led.xdmf")
    with meshio.xdmf.TimeSeriesReader(xdmf) as reader:
        assert reader.num_steps == ds.sizes["bias"]
    with pytest.raises(ValueError, match=".vtu"):
        export.cli_export(nc, tmp_path / "led.vtk")
    with pytest.raises(IndexError):
        export.to_vtu(ds, tmp_path / "x.vtu", bias=5)
