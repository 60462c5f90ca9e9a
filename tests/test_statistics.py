"""Non-Boltzmann statistics in a device: degenerate built-in potential (Fermi–Dirac) and the
low-density limit of Gauss–Fermi transport layers; references independent of pvsim (mpmath
F_1/2 inversion, the Boltzmann solver with the analytically shifted density of states)."""

import math

import mpmath as mp
import numpy as np
from helpers import silicon

from pvsim.device import Device
from pvsim.doping import DopingProfile
from pvsim.geometry import Layer, layer_stack
from pvsim.layout import ContactSpec
from pvsim.materials import MaterialSpec
from pvsim.sweep import BiasPoint, run_sweep
from pvsim.units import thermal_voltage

VT = thermal_voltage(300.0)


def _eta_fd(ratio):
    """eta with F_1/2(eta) = ratio, F_1/2(eta) = -Li_{3/2}(-e^eta) (mpmath, 30 digits)."""
    mp.mp.dps = 30
    return float(mp.re(mp.findroot(lambda e: -mp.polylog(1.5, -mp.exp(e)) - ratio, math.log(ratio) + 1)))


def test_degenerate_pn_junction_built_in_potential():
    """N_A = N_D = 1e20 cm^-3 with Nc = Nv = 1e19: V_bi = E_g + kT (eta_n + eta_p), eta from
    F_1/2(eta) = N/Nc; Boltzmann would underestimate it by 0.16 V."""
    mat = silicon(statistics="fermi_dirac", band_gap_eV=1.12)
    mesh = layer_stack([Layer("p", 100e-9, 1e-9, 1e-10), Layer("n", 100e-9, 1e-9, 1e-10)],
                       "anode", "cathode")
    dev = Device(mesh, {"p": mat, "n": mat}, (ContactSpec("anode"), ContactSpec("cathode")),
                 doping={"p": [DopingProfile(acceptors_cm3=1e20)],
                         "n": [DopingProfile(donors_cm3=1e20)]})
    res = run_sweep(dev, [BiasPoint(np.zeros(2), np.zeros(2))])
    assert res.ok, res.failure
    psi = res.points[0].observables["psi"]
    x = mesh.points[:, 0]
    bulk_p, bulk_n = psi[np.argmin(np.abs(x - 50e-9))], psi[np.argmin(np.abs(x - 150e-9))]
    eta = _eta_fd(10.0)
    v_bi = 1.12 + 2 * VT * eta
    assert abs((bulk_n - bulk_p) - v_bi) < 1e-9
    boltzmann = 1.12 + 2 * VT * math.log(10.0)
    assert v_bi - boltzmann > 0.1


def _organic_diode(stats, sigma, nc_shift=0.0, n=100):
    """Single-layer OLED, organic 100 nm between contacts with 1.0 eV injection barriers."""
    kw = dict(kind="semiconductor", eps_r=3.0, electron_affinity_eV=2.5, band_gap_eV=3.0,
              mu_n_cm2_Vs=1e-4, mu_p_cm2_Vs=1e-4, radiative_B_cm3_s=1e-11)
    if stats == "gauss_fermi":
        mat = MaterialSpec(Nc_cm3=1e21, Nv_cm3=1e21, statistics=stats, disorder_n_eV=sigma,
                           disorder_p_eV=sigma, **kw)
    else:  # Boltzmann with the low-density Gauss–Fermi limit: N0 exp(sigma^2 / 2 kT^2)
        big = 1e21 * math.exp(nc_shift)
        mat = MaterialSpec(Nc_cm3=big, Nv_cm3=big, **kw)
    mesh = layer_stack([Layer("org", 100e-9, 100e-9 / n, 1e-10)], "anode", "cathode")
    return Device(mesh, {"org": mat},
                  (ContactSpec("anode", "work_function"), ContactSpec("cathode", "work_function")),
                  work_functions_eV={"anode": 5.5 - 1.0, "cathode": 2.5 + 1.0})


def test_gauss_fermi_low_density_limit_is_shifted_boltzmann():
    """With the Fermi level far below the Gaussian centre, ln G -> eta + s^2/2 (the correction
    is ~exp(-(eta + s^2)^2 / 2 s^2), 1e-8 here for 1 eV barriers):
    the device must equal a Boltzmann device with Nc, Nv times exp(s^2/2), both in its IV and
    in the sigma^2/2kT shift of the injection barrier (0.19 eV at sigma = 0.1 eV)."""
    sigma = 0.1
    s = sigma / VT
    volts = [0.0, 1.0, 2.0, 3.0]
    pts = [BiasPoint(np.array([v, 0.0]), np.zeros(2)) for v in volts]
    gf = run_sweep(_organic_diode("gauss_fermi", sigma), pts)
    bz = run_sweep(_organic_diode("boltzmann", 0.0, s * s / 2), pts)
    assert gf.ok and bz.ok, (gf.failure, bz.failure)
    for a, b in zip(gf.points[1:], bz.points[1:]):
        ja, jb = a.observables["current"][0], b.observables["current"][0]
        assert abs(ja / jb - 1) < 1e-6, (ja, jb)
    # without the shift the Boltzmann device injects e^(s^2/2) = 1.8e3 times less at low bias
    plain = run_sweep(_organic_diode("boltzmann", 0.0, 0.0), pts[:2])
    ratio = gf.points[1].observables["current"][0] / plain.points[1].observables["current"][0]
    assert ratio > 100
