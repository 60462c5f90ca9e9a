"""The material library: schema (units, sources), SI conversion, physics flags, NC confinement,
the ligand effective barrier, overrides, and agreement with the 1D NC LED case file."""

import dataclasses
import math
import tomllib
from pathlib import Path

import numpy as np
import pytest

from pvsim import library as lib
from pvsim.materials import MaterialSpec, scaled_material
from pvsim.units import Scales

REQUIRED = ["CsPbBr3", "CsPbBr3_NC", "CsPbI3", "CsPbI3_NC", "FAPbBr3", "FAPbBr3_NC", "Cs4PbBr6",
            "SiO2", "Al2O3", "OA_OLA_ligand", "PEDOT_PSS", "poly_TPD", "TFB", "PVK", "TPBi", "ZnO",
            "ZnS", "CdS"]
KT_300 = 0.025852  # eV


def _quantities(entry):
    """(key, quantity) of an entry and its properties."""
    for table in (entry, entry.get("properties", {})):
        for key, q in table.items():
            if isinstance(q, dict) and "value" in q:
                yield key, q


def test_field_units_cover_materialspec():
    numeric = {f.name for f in dataclasses.fields(MaterialSpec)} - {"kind", "statistics"}
    assert set(lib.FIELD_UNITS) == numeric


def test_required_entries_and_contacts_exist():
    assert set(REQUIRED) <= set(lib.list_materials())
    assert {"ITO", "LiF_Al"} <= set(lib.list_contacts())


def test_every_value_has_units_and_a_source():
    entries = [lib.material_entry(n) for n in lib.list_materials()]
    entries += [lib.contact_entry(n) for n in lib.list_contacts()]
    count = 0
    for entry in entries:
        for key, q in _quantities(entry):
            count += 1
            if key in lib.FLAGS:
                assert isinstance(q["value"], str)
            else:
                unit, factor = lib.unit_of(key)  # raises for a key without a unit
                assert unit and factor > 0 and isinstance(q["value"], (int, float))
            assert q["source"].strip() and q["citation"].strip(), (entry["name"], key)
            assert q["confidence"] in ("v", "m", "d"), (entry["name"], key)
            if "range" in q:
                assert q["range"][0] <= q["value"] <= q["range"][1]
    assert count > 250


def test_schema_rejects_numbers_without_source_or_unit():
    good = {"value": 2.0, "source": "design", "confidence": "m"}
    lib._check_quantity("t", "band_gap_eV", good, {"design": "x"})
    with pytest.raises(ValueError, match="empty source"):
        lib._check_quantity("t", "band_gap_eV", {**good, "source": " "}, {"design": "x"})
    with pytest.raises(ValueError, match="unit"):
        lib._check_quantity("t", "band_gap", good, {"design": "x"})
    with pytest.raises(ValueError, match="does not define"):
        lib._check_quantity("t", "band_gap_eV", {**good, "source": "nobody2099"}, {})
    with pytest.raises(ValueError, match="table"):
        lib._check_quantity("t", "band_gap_eV", 2.0, {})


def test_names_are_case_and_punctuation_insensitive():
    for alias in ("CsPbBr3_NC", "cspbbr3-nc", "CsPbBr3 NC film", "CSPBBR3_NC"):
        assert lib.canonical_name(alias) == "CsPbBr3_NC"
    assert lib.canonical_name("PEDOT:PSS") == "PEDOT_PSS"
    assert lib.canonical_name("poly-TPD") == "poly_TPD"
    assert lib.canonical_name("OA/OLA") == "OA_OLA_ligand"
    assert lib.contact_work_function("LiF/Al") == lib.contact_work_function("lif-al") == 3.0
    with pytest.raises(ValueError, match="CsPbBr3"):
        lib.material_spec("CsPbBr")


def test_material_entry_is_a_copy():
    e = lib.material_entry("TPBi")
    e["eps_r"]["value"] = 99.0
    assert lib.material_spec("TPBi").eps_r == 3.0


def test_si_conversion_through_scaled_material():
    """Scaled values times the scales give the SI values worked out by hand."""
    s = Scales()
    specs = [lib.material_spec("CsPbBr3_NC"), lib.material_spec("poly_TPD")]
    m = scaled_material(specs, s)
    # CsPbBr3_NC: mu 1e-3 cm^2/Vs = 1e-7 m^2/Vs; Nc 2e18 cm^-3 = 2e24 m^-3;
    # B 5e-10 cm^3/s = 5e-16 m^3/s; C 1e-27 cm^6/s = 1e-39 m^6/s; tau 1e-7 s
    assert float(m.mu_n[0]) * s.mu_ref == pytest.approx(1e-7, rel=1e-12)
    assert math.exp(float(m.lnNc[0])) * s.N_ref == pytest.approx(2e24, rel=1e-12)
    assert float(m.B[0]) * s.rate / s.N_ref**2 == pytest.approx(5e-16, rel=1e-12)
    assert float(m.Cn[0]) * s.rate / s.N_ref**3 == pytest.approx(1e-39, rel=1e-12)
    assert float(m.tau_n[0]) * s.N_ref / s.rate == pytest.approx(1e-7, rel=1e-12)
    assert float(m.chi[0]) * s.V_T == pytest.approx(3.1, rel=1e-12)  # eV
    assert float(m.kappa[0]) * s.conductivity == pytest.approx(0.2, rel=1e-12)
    # the same numbers from the library's own unit table
    assert lib.si_value("mu_n_cm2_Vs", 1e-3) == pytest.approx(1e-7)
    assert lib.si_value("Nc_cm3", 2e18) == pytest.approx(2e24)
    assert lib.si_value("radiative_B_cm3_s", 5e-10) == pytest.approx(5e-16)
    assert lib.si_value("auger_Cn_cm6_s", 1e-27) == pytest.approx(1e-39)
    # poly-TPD: Gauss-Fermi site density (no T^1.5 factor) and sigma 0.09 eV
    assert math.exp(float(m.lnNv[1])) * s.N_ref == pytest.approx(1e27, rel=1e-12)
    assert float(m.sigma_p[1]) * s.V_T == pytest.approx(0.09, rel=1e-12)


def test_perovskite_permittivity_is_static():
    bulk = lib.material_entry("CsPbBr3")
    assert bulk["eps_r"]["value"] >= 16  # static, not the optical 4.8
    assert bulk["properties"]["eps_inf"]["value"] < 16
    film = lib.material_spec("CsPbBr3_NC").eps_r
    assert lib.material_spec("ligand").eps_r < film < bulk["eps_r"]["value"]


def _edges(name):
    s = lib.material_spec(name)
    return s.electron_affinity_eV, s.electron_affinity_eV + s.band_gap_eV  # CB, VB depths


@pytest.mark.parametrize("shell", ["ZnS", "CdS"])
def test_zns_cds_are_type_ii_on_cspbbr3(shell):
    assert lib.is_type_ii_on_perovskite(shell)
    chi_s, ie_s = _edges(shell)
    for core in ("CsPbBr3", "CsPbBr3_NC"):
        chi_c, ie_c = _edges(core)
        assert chi_s > chi_c  # shell conduction band BELOW the core's
        assert ie_s > ie_c    # shell valence band below too: staggered, not straddling


def test_cs4pbbr6_straddles_cspbbr3():
    assert not lib.is_type_ii_on_perovskite("Cs4PbBr6")
    chi_h, ie_h = _edges("Cs4PbBr6")
    for core in ("CsPbBr3", "CsPbBr3_NC"):
        chi_c, ie_c = _edges(core)
        assert chi_h < chi_c and ie_h > ie_c  # type-I: the host gap contains the core gap


def test_gauss_fermi_organics_follow_the_case_convention():
    shift = 0.09**2 / (2 * KT_300)  # sigma^2 / 2kT = 0.1567 eV
    for name in ("poly_TPD", "TFB", "PVK", "TPBi"):
        s, props = lib.material_spec(name), lib.material_entry(name)["properties"]
        assert s.statistics == "gauss_fermi" and s.Nc_cm3 == s.Nv_cm3 == 1e21
        assert s.disorder_n_eV == s.disorder_p_eV == 0.09
        assert s.electron_affinity_eV == pytest.approx(props["transport_LUMO_eV"]["value"] - shift, abs=1e-4)
        assert s.electron_affinity_eV + s.band_gap_eV == pytest.approx(
            props["transport_HOMO_eV"]["value"] + shift, abs=1e-4)


@pytest.mark.parametrize("name", ["CsPbBr3", "CsPbI3", "FAPbBr3"])
def test_confinement_model_matches_its_table(name):
    model = lib.confinement_model(name)
    assert model.max_residual_eV <= model.tolerance_eV <= 0.02
    L = np.linspace(*model.valid_edge_nm, 50)
    gap = lib.nc_band_gap(name, L)
    assert np.all(np.diff(gap) < 0)  # confinement: smaller NCs, larger gap
    assert model.a_eV_nm2 > 0 and model.b_eV_nm > 0
    lo, hi = model.valid_edge_nm
    with pytest.raises(ValueError, match="outside"):
        lib.nc_band_gap(name, lo - 0.5)
    with pytest.raises(ValueError, match="outside"):
        lib.nc_band_gap(name, [hi, hi + 1.0])


def test_confinement_physics_and_entries():
    model = lib.confinement_model("CsPbBr3_NC")
    assert model.E_inf_eV == lib.material_spec("CsPbBr3").band_gap_eV
    # strong-confinement particle in a cube, 3 hbar^2 pi^2 / (2 mu L^2) with mu = 0.126 m0,
    # gives a = 8.95 eV nm^2; intermediate confinement (edge ~ 1-3 Bohr diameters) is weaker
    a_box = 3 * 0.376 / 0.126
    assert 0.2 * a_box < model.a_eV_nm2 < a_box
    # FAPbBr3 shares CsPbBr3's curvature (A-site independent confinement energy)
    fa = lib.confinement_model("FAPbBr3")
    assert (fa.a_eV_nm2, fa.b_eV_nm) == (model.a_eV_nm2, model.b_eV_nm)
    assert abs(fa.E_inf_eV - lib.material_spec("FAPbBr3").band_gap_eV) < 0.06
    # each NC-film entry sits near the model at its own edge length
    for film in ("CsPbBr3_NC", "CsPbI3_NC", "FAPbBr3_NC"):
        edge = lib.material_entry(film)["properties"]["edge_nm"]["value"]
        assert abs(lib.nc_band_gap(film, edge) - lib.material_spec(film).band_gap_eV) < 0.05
    # nc_film_spec keeps the entry at its edge and widens the gap, half into each band, below it
    assert lib.nc_film_spec("CsPbBr3_NC", 9.0) == lib.material_spec("CsPbBr3_NC")
    small, ref = lib.nc_film_spec("CsPbBr3_NC", 6.0), lib.material_spec("CsPbBr3_NC")
    dg = small.band_gap_eV - ref.band_gap_eV
    assert dg > 0.05 and small.electron_affinity_eV == pytest.approx(ref.electron_affinity_eV - dg / 2)


def test_effective_barrier_against_hand_calculation():
    # kappa = sqrt(2 * 0.42 * 9.10938e-31 kg * 1.602177e-19 J/eV * 1.4 eV) / 1.054572e-34 J s
    #       = sqrt(1.71621e-49) / 1.054572e-34 = 4.14272e-25 / 1.054572e-34 = 3.92835e9 1/m
    # 2 kappa d = 2 * 3.92835 / nm * 1.5 nm = 11.7851; dE = 0.0258520 eV * 11.7851 = 0.30467 eV
    dE = lib.effective_barrier_eV(1.4, 0.42, 1.5)
    assert dE == pytest.approx(0.30467, abs=2e-5)
    assert math.exp(-dE / KT_300) == pytest.approx(math.exp(-11.7851), rel=1e-3)  # = WKB T
    assert lib.effective_barrier_eV(1.4, 0.42, 2.5) == pytest.approx(dE * 2.5 / 1.5)
    assert lib.effective_barrier_eV(1.4, 0.42, 1.5, T=350) == pytest.approx(dE * 350 / 300)
    assert lib.effective_barrier_eV(4 * 1.4, 0.42, 1.5) == pytest.approx(2 * dE)
    with pytest.raises(ValueError):
        lib.effective_barrier_eV(1.4, 0.0, 1.5)
    # v_R = sqrt(kT / (2 pi 0.25 m0)) = 5.380e4 m/s; mu = v_R d / (kT/q) = 31.2 cm^2/Vs
    assert lib.barrier_matched_mobility_cm2_Vs(1.5) == pytest.approx(31.22, rel=1e-3)


def test_ligand_entry_is_the_effective_barrier_of_its_host():
    entry, spec = lib.material_entry("OA_OLA_ligand"), lib.material_spec("OA_OLA_ligand")
    host = lib.material_spec(entry["host"])
    dE = lib.effective_barrier_eV(1.4, 0.42, 1.5)
    assert entry["properties"]["effective_barrier_eV"]["value"] == pytest.approx(dE, abs=1e-4)
    assert host.electron_affinity_eV - spec.electron_affinity_eV == pytest.approx(dE, abs=1e-4)  # above CB
    ie = spec.electron_affinity_eV + spec.band_gap_eV
    assert ie - (host.electron_affinity_eV + host.band_gap_eV) == pytest.approx(dE, abs=1e-4)  # below VB
    assert spec.eps_r == 2.1 and spec.thermal_conductivity_W_mK == 0.2
    recomputed = lib.ligand_barrier_spec()
    for f in ("electron_affinity_eV", "band_gap_eV", "Nc_cm3", "mu_n_cm2_Vs", "mu_p_cm2_Vs"):
        assert getattr(recomputed, f) == pytest.approx(getattr(spec, f), rel=2e-3), f
    thick = lib.ligand_barrier_spec(2.5)
    assert host.electron_affinity_eV - thick.electron_affinity_eV == pytest.approx(
        lib.effective_barrier_eV(1.4, 0.42, 2.5))


def test_overrides_and_bad_keys():
    s = lib.material_spec("TPBi", mu_n_cm2_Vs=5e-5, statistics="boltzmann")
    base = lib.material_spec("TPBi")
    assert s.mu_n_cm2_Vs == 5e-5 and s.statistics == "boltzmann" and s.eps_r == base.eps_r
    with pytest.raises(ValueError, match=r"'mu_n'.*mu_n_cm2_Vs"):
        lib.material_spec("TPBi", mu_n=5e-5)
    with pytest.raises(ValueError, match="band_gap_eV"):
        lib.material_spec("TPBi", bandgap_eV=3.0)


def test_contacts_by_work_function():
    assert lib.contact_work_function("ITO") == 4.7
    assert lib.contact_work_function("PEDOT:PSS/ITO") == 5.1
    assert lib.contact_work_function("Al") > lib.contact_work_function("LiF/Al")
    assert "Michaelson" in lib.contact_entry("Al")["work_function_eV"]["citation"]
    with pytest.raises(ValueError, match="contact"):
        lib.contact_work_function("CsPbBr3")


def test_library_reproduces_the_1d_case_materials():
    """cases/nc_led_1d_heat.toml's materials are library entries (what the case sets)."""
    case = tomllib.loads((Path(__file__).parents[1] / "cases" / "nc_led_1d_heat.toml").read_text())
    for name, given in case["materials"].items():
        spec = lib.material_spec(name)
        for key, value in given.items():
            expected = value if isinstance(value, str) else pytest.approx(value)
            assert getattr(spec, key) == expected, (name, key)
