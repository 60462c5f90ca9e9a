"""Energy balance of a self-heated heterostructure LED, from independent code paths.

The heat released in the device (the output heat-density field integrated over the node
control volumes) plus the power leaving as light must equal the electrical power
sum_k V_k I_k taken from the terminal voltages and currents (the carrier-balance ("robust")
currents), to 1e-8 relative, at every bias. The stack has every heat path: a thermionic
heterointerface (split quasi-Fermi levels), a continuous heterointerface with surface
recombination (Peltier heat at a shared carrier set), an ohmic and a Schottky contact, SRH,
radiative and Auger recombination, temperature-dependent mobility and band gap.
"""

import numpy as np
import pytest

from pvsim.device import Device, HeatSpec, ThermalBoundary
from pvsim.doping import DopingProfile
from pvsim.geometry import Layer, layer_stack
from pvsim.io import to_dataset
from pvsim.layout import ContactSpec
from pvsim.materials import InterfaceSpec, MaterialSpec
from pvsim.sweep import BiasPoint, run_sweep

VOLTS = [0.0, 1.0, 1.6, 2.0, 2.3, 2.6]


def _led():
    layers = [("htl", 40e-9), ("eml", 30e-9), ("etl", 40e-9)]
    mesh = layer_stack([Layer(n, t, t / 40, 2e-10) for n, t in layers], "anode", "cathode")
    common = dict(Nc_cm3=1e19, Nv_cm3=1e19, thermal_conductivity_W_mK=0.3)
    mats = {
        "htl": MaterialSpec(eps_r=3.5, electron_affinity_eV=2.3, band_gap_eV=3.1, mu_n_cm2_Vs=1e-2,
                            mu_p_cm2_Vs=1.0, mobility_disorder_p_eV=0.06, **common),
        "eml": MaterialSpec(eps_r=16.0, electron_affinity_eV=3.4, band_gap_eV=2.36, mu_n_cm2_Vs=1.0,
                            mu_p_cm2_Vs=1.0, tau_n_s=1e-7, tau_p_s=1e-7, radiative_B_cm3_s=1e-10,
                            auger_Cn_cm6_s=1e-28, auger_Cp_cm6_s=1e-28, mobility_T_exponent_n=1.5,
                            mobility_T_exponent_p=1.5, band_gap_T_coeff_eV_K=3e-4, **common),
        "etl": MaterialSpec(eps_r=3.5, electron_affinity_eV=3.0, band_gap_eV=3.5, mu_n_cm2_Vs=1.0,
                            mu_p_cm2_Vs=1e-2, **common),
    }
    itfs = (InterfaceSpec(("htl", "eml"), model="thermionic", electron_mass=0.3, hole_mass=0.3),
            InterfaceSpec(("eml", "etl"), s_n_cm_s=100.0, s_p_cm_s=100.0))
    heat = HeatSpec(boundaries=(ThermalBoundary("anode", "fixed", 300.0),
                                ThermalBoundary("cathode", "robin", 300.0, 2e7)), escape_fraction=0.3)
    contacts = (ContactSpec("anode"), ContactSpec("cathode", "schottky", barrier_eV=0.15))
    return Device(mesh, mats, contacts,
                  doping={"htl": [DopingProfile(acceptors_cm3=1e18)], "etl": [DopingProfile(donors_cm3=1e18)]},
                  interfaces=itfs, heat=heat)


@pytest.fixture(scope="module")
def led_sweep():
    dev = _led()
    res = run_sweep(dev, [BiasPoint(np.array([v, 0.0]), np.zeros(2)) for v in VOLTS])
    assert res.ok, res.failure
    return dev, to_dataset(res, include_equilibrium=False)


def test_heat_plus_light_equals_electrical_power(led_sweep):
    dev, ds = led_sweep
    node_volume = np.bincount(dev.disc.site_node, dev.disc.site_volume, dev.mesh.n_nodes) * dev.scales.volume
    heat = (ds["heat"] * node_volume).sum("node").values
    light = (ds["light"] * node_volume).sum("node").values
    electrical = (ds["voltage"] * ds["current"]).sum("contact").values
    on = electrical > 1e-6 * electrical.max()
    assert on.sum() >= 3  # several biases with a real current (the LED turns on)
    assert np.all(np.abs(heat + light - electrical)[on] <= 1e-8 * electrical[on])
    # the fields carry the same integrals as the reported totals
    assert np.allclose(light, ds["light_power"].values, rtol=1e-12, atol=0)
    assert np.allclose(heat, ds["dissipated_power"].values, rtol=1e-12, atol=0)


def test_heat_kinds_signs_and_light(led_sweep):
    _, ds = led_sweep
    last = ds.isel(bias=-1)
    # Joule heat, flux times quasi-Fermi drop, is >= 0 at uniform temperature (w >= 0 in 1D);
    # with a temperature gradient a thermoelectric current may run against the quasi-Fermi
    # gradient, a correction of order (k/q) dT / dphi, here < 1e-5 of the Joule heat
    joule = last["heat_joule"].values
    assert -joule[joule < 0].sum() < 1e-5 * joule[joule > 0].sum()
    # Peltier cooling happens somewhere (carriers lifted over an offset): nothing is clamped
    assert float(last["heat"].min()) < 0
    assert float(last["light_power"]) > 0 and float(last["peak_temperature"]) > 300.0
    # the sum of kinds is the total
    total = last["heat_joule"] + last["heat_recombination"] + last["heat_peltier"]
    assert np.allclose(total, last["heat"], rtol=1e-9, atol=1e-9 * float(np.abs(last["heat"]).max()))
