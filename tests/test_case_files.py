"""Case files: validation errors are one paragraph naming the key, the value and the fix."""

import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from pvsim.api import run_case
from pvsim.case import CaseError, build_device, load_case, sweep_targets

ROOT = Path(__file__).resolve().parent.parent
PN = tomllib.loads((ROOT / "cases" / "pn_diode_1d.toml").read_text())


def _variant(mutate):
    data = tomllib.loads((ROOT / "cases" / "pn_diode_1d.toml").read_text())
    mutate(data)
    return data


def _error(data) -> str:
    with pytest.raises(CaseError) as info:
        case, base = load_case(data, ROOT / "cases")
        sweep_targets(case, build_device(case, base))
    msg = str(info.value)
    assert "\n" not in msg and len(msg) < 600  # one paragraph
    return msg


def test_missing_key():
    msg = _error(_variant(lambda d: d["materials"]["silicon"].pop("eps_r")))
    assert "materials.silicon.eps_r" in msg and "missing" in msg and "eps_r = 11.1" in msg


def test_wrong_unit_suggests_the_right_key():
    def mutate(d):
        d["mesh"]["layers"][0]["thickness_um"] = d["mesh"]["layers"][0].pop("thickness_nm") / 1000
    msg = _error(_variant(mutate))
    assert "thickness_um" in msg and "thickness_nm" in msg


def test_negative_thickness():
    msg = _error(_variant(lambda d: d["mesh"]["layers"][1].update(thickness_nm=-5.0)))
    assert "thickness_nm" in msg and "-5.0" in msg and "greater than 0" in msg


def test_unknown_region_and_contact():
    msg = _error(_variant(lambda d: d["regions"].update(n_sid={"donors_cm3": 1e17})))
    assert "n_sid" in msg and "n_side" in msg
    msg = _error(_variant(lambda d: d["contacts"].update(gate={"type": "ohmic"})))
    assert "gate" in msg and "anode" in msg and "cathode" in msg
    msg = _error(_variant(lambda d: d["sweep"].update(contact="drain")))
    assert "drain" in msg


def test_cli_prints_error_without_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    text = (ROOT / "cases" / "pn_diode_1d.toml").read_text().replace("eps_r = 11.1", "eps_r = -11.1")
    bad.write_text(text)
    out = subprocess.run([sys.executable, "-m", "pvsim.cli", "run", str(bad), "-o", str(tmp_path / "o.nc")],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and "eps_r" in out.stderr and "-11.1" in out.stderr


def test_unreachable_bias_keeps_converged_points(tmp_path):
    """A bias that cannot converge stops the sweep with a report; converged points are saved."""
    data = _variant(lambda d: d["sweep"].clear() or d["sweep"].update(
        contact="anode", voltages_V=[0.1, 0.2, 1.0e4]))
    out = tmp_path / "partial.nc"
    with pytest.warns(RuntimeWarning, match="bias point 2"):
        ds = run_case(data, output=out, base_dir=ROOT / "cases")
    saved = xr.open_dataset(out)
    assert saved.attrs["status"].startswith("stopped: bias point 2 (anode=10000 V")
    assert "step halving" in saved.attrs["status"]
    # equilibrium + the two converged points, with their currents
    assert saved.sizes["bias"] == 3
    np.testing.assert_allclose(saved["voltage"].sel(contact="anode").values, [0.0, 0.1, 0.2])
    assert np.all(np.abs(saved["current"].values[1:]) > 0)
    assert ds.sizes["bias"] == 3


def test_doping_profiles_from_case_file():
    """Uniform + step + Gaussian contributions add at every site, as written in the case file."""
    def mutate(d):
        d["regions"]["n_side"]["doping"] = [
            {"type": "step", "donors_cm3": 2e17, "position_nm": 1500.0},
            {"type": "gaussian", "acceptors_cm3": 5e16, "center_nm": 1200.0, "sigma_nm": 50.0},
        ]
    case, base = load_case(_variant(mutate), ROOT / "cases")
    dev = build_device(case, base)
    x = dev.mesh.points[dev.disc.site_node, 0]
    region = np.array(dev.disc.region_names)[dev.disc.site_region]
    expected = np.where(region == "p_side", -1e23,
                        1e23 + np.where(x >= 1.5e-6, 2e23, 0.0)
                        - 5e22 * np.exp(-0.5 * ((x - 1.2e-6) / 50e-9) ** 2))
    np.testing.assert_allclose(dev.site_doping, expected, rtol=1e-12)
    # the interface node has one site per region, each with its own region's doping
    at_junction = np.isclose(x, 1e-6, rtol=0, atol=1e-15)
    assert sorted(dev.site_doping[at_junction]) == [-1e23, 1e23 - 5e22 * np.exp(-0.5 * 4.0**2)]


def test_output_schema_has_cf_units(tmp_path):
    data = _variant(lambda d: d["sweep"].clear() or d["sweep"].update(contact="anode", voltages_V=[0.3]))
    run_case(data, output=tmp_path / "o.nc", base_dir=ROOT / "cases")
    ds = xr.open_dataset(tmp_path / "o.nc")
    assert set(ds.dims) == {"bias", "node", "contact", "dim", "channel", "cell", "vertex"}
    for name in list(ds.data_vars) + list(ds.coords):
        assert "units" in ds[name].attrs and "long_name" in ds[name].attrs, name
    assert ds["current"].attrs["units"] == "A m-2" and ds["potential"].attrs["units"] == "V"
    assert "silicon" in ds.attrs["case"] and ds.attrs["status"] == "complete"
    # IQE = q int R_rad / |I|: silicon here has B = 0, and only SRH recombines in the bulk
    assert float(ds["iqe"].isel(bias=1)) == 0.0
    rec = ds["recombination_current"].isel(bias=1)
    assert float(rec.sel(channel="srh")) > 0 and float(rec.sel(channel="auger")) == 0.0


def test_conflicting_or_ignored_keys_are_errors():
    msg = _error(_variant(lambda d: d["contacts"]["anode"].update(work_function_eV=5.0)))
    assert "contacts.anode" in msg and "work_function_eV" in msg and "{" not in msg
    msg = _error(_variant(lambda d: d["sweep"].update(step_V=0.3)))
    assert "step_V" in msg and "whole number" in msg
    msg = _error(_variant(lambda d: d["mesh"].update(length_unit="um")))
    assert "length_unit" in msg and "thickness_nm" in msg


def test_interface_and_statistics_keys_are_checked():
    def add(itf):
        return lambda d: d.setdefault("interfaces", []).append(itf)
    msg = _error(_variant(add({"regions": ["p_side", "n_side"], "model": "tunnelling"})))
    assert "barrier_thickness_nm" in msg
    msg = _error(_variant(add({"regions": ["p_side", "nside"]})))
    assert "nside" in msg and "n_side" in msg
    msg = _error(_variant(add({"regions": ["p_side", "n_side"], "s_n_cm_s": 10.0})))
    assert "s_p_cm_s" in msg
    msg = _error(_variant(lambda d: d["materials"]["silicon"].update(statistics="gauss_fermi")))
    assert "disorder_n_eV" in msg
    msg = _error(_variant(lambda d: d["contacts"]["anode"].update(type="schottky")))
    assert "barrier_eV" in msg
    # a valid interface table builds a device with split carrier sets
    case, base = load_case(_variant(add({"regions": ["p_side", "n_side"], "model": "thermionic"})),
                           ROOT / "cases")
    dev = build_device(case, base)
    assert dev.layout.n_carriers == dev.mesh.n_nodes + 1


def test_library_materials_in_case_files():
    """Regions may name library entries, and [materials.X] base = ... overrides single keys:
    the device gets the same MaterialSpecs as the explicit tables of cases/nc_led_1d_heat.toml
    (which the library reproduces), except for the key overridden."""
    explicit = tomllib.loads((ROOT / "cases" / "nc_led_1d_heat.toml").read_text())
    lib = tomllib.loads((ROOT / "cases" / "nc_led_1d_heat.toml").read_text())
    for layer, name in zip(lib["mesh"]["layers"], ["PEDOT_PSS", "poly-TPD", "CsPbBr3 NC film", "tpbi"]):
        layer["material"] = name
    lib["materials"] = {"CsPbBr3 NC film": {"base": "CsPbBr3_NC", "mu_n_cm2_Vs": 2e-3}}
    a = build_device(*load_case(explicit, ROOT / "cases"))
    b = build_device(*load_case(lib, ROOT / "cases"))
    for region in a.materials:
        ma, mb = a.materials[region], b.materials[region]
        for field in ma.__dataclass_fields__:
            want = 2e-3 if (region, field) == ("eml", "mu_n_cm2_Vs") else getattr(ma, field)
            same = getattr(mb, field) == (pytest.approx(want, rel=1e-12) if isinstance(want, float) else want)
            assert same, (region, field, getattr(mb, field), want)
    lib["materials"] = {"x": {"base": "CsPbBr7"}}
    lib["mesh"]["layers"][2]["material"] = "x"
    msg = _error(lib)
    assert "CsPbBr7" in msg and "CsPbBr3" in msg


def test_cli_validate_and_info(tmp_path):
    """`pvsim validate` checks without solving (0: valid, 2: the error names the key);
    `pvsim info` prints the result's bias table, whose currents are the file's."""
    cli = [sys.executable, "-m", "pvsim.cli"]
    ok = subprocess.run(cli + ["validate", str(ROOT / "cases" / "core_shell_axisym.toml")],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and "valid" in ok.stdout and "shell" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text((ROOT / "cases" / "pn_diode_1d.toml").read_text().replace("donors_cm3", "donors_cm"))
    out = subprocess.run(cli + ["validate", str(bad)], capture_output=True, text=True)
    assert out.returncode == 2 and "donors_cm3" in out.stderr and "Traceback" not in out.stderr
    data = _variant(lambda d: d.update(sweep={"contact": "anode", "voltages_V": [0.0, 0.3]}))
    ds = run_case(data, base_dir=ROOT / "cases", output=tmp_path / "r.nc")
    info = subprocess.run(cli + ["info", str(tmp_path / "r.nc")], capture_output=True, text=True,
                          env={**__import__("os").environ, "COLUMNS": "160"})
    assert info.returncode == 0 and "complete" in info.stdout
    assert f"{float(ds.current.sel(contact='anode')[-1]):+.4e}" in info.stdout
