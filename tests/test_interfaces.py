"""Interface links, Schottky contacts, Poole–Frenkel mobility: against analytic limits.

References used here are independent of pvsim's kernels: the Richardson constant
A* = 4 pi q m0 k^2 / h^3 = 120.17 A cm^-2 K^-2 (Sze & Ng, 3rd ed., ch. 3), the exact
transmission of a rectangular barrier (any QM text, e.g. Griffiths, Introduction to Quantum
Mechanics, sec. 2.6), mpmath quadrature, and conservation identities.
"""

import math

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
from helpers import silicon

from pvsim.device import Device
from pvsim.doping import DopingProfile
from pvsim.geometry import Layer, layer_stack
from pvsim.layout import ContactSpec
from pvsim.materials import InterfaceSpec, MaterialSpec
from pvsim.physics.interface import mean_transmission, wkb_transmission
from pvsim.sweep import BiasPoint, run_sweep
from pvsim.units import HBAR, KB, M0, H, Q, Scales, thermal_voltage

VT = thermal_voltage(300.0)
A_STAR = 4 * math.pi * Q * M0 * KB**2 / H**3  # A m^-2 K^-2 (m* = m0)
NC_M0 = 2 * (2 * math.pi * M0 * KB * 300.0 / H**2) ** 1.5 / 1e6  # cm^-3: Nc of m* = m0 at 300 K


def _stack(layers, materials, doping, interfaces=(), contacts=None, n=80):
    mesh = layer_stack([Layer(name, t, t / n, min(t / n, 2e-10)) for name, t in layers],
                       "left", "right")
    return Device(mesh, materials, contacts or (ContactSpec("left"), ContactSpec("right")),
                  doping={k: [DopingProfile(donors_cm3=v[0], acceptors_cm3=v[1])] for k, v in doping.items()},
                  interfaces=tuple(interfaces))


def _sweep(dev, volts, k=1):
    pts = [BiasPoint(np.where(np.arange(2) == k, v, 0.0), np.zeros(2)) for v in volts]
    res = run_sweep(dev, pts)
    assert res.ok, res.failure
    return res


def _current(res, i):
    return res.points[i].observables["current"][0]


# ----------------------------------------------------------------- transmission
def test_wkb_matches_exact_rectangular_barrier_in_the_opaque_limit():
    """T_exact = [1 + V0^2 sinh^2(kd) / (4E(V0-E))]^-1 -> 16E(V0-E)/V0^2 exp(-2kd) for kd >> 1;
    WKB keeps the exponent: ln T_exact / ln T_wkb -> 1."""
    s = Scales()
    phi, mass = 1.4 / VT, 0.42
    for d_nm in (1.5, 2.0, 3.0):
        b = s.tunnel_constant * (d_nm * 1e-9 / s.L_ref) * math.sqrt(mass)
        for e in (0.1 * phi, 0.3 * phi, 0.5 * phi):
            kd = 0.5 * b * math.sqrt(phi - e)
            exact = 1.0 / (1.0 + phi**2 * math.sinh(kd) ** 2 / (4 * e * (phi - e)))
            wkb = float(wkb_transmission(e, phi, b))
            assert kd > 2.5
            prefactor = 16 * e * (phi - e) / phi**2
            # exponent: relative error of ln T is ln(prefactor)/ln T, small for kd >> 1
            assert abs(math.log(exact) - math.log(wkb) - math.log(prefactor)) < 2 * math.exp(-2 * kd)
            bound = (abs(math.log(prefactor)) + 2 * math.exp(-2 * kd)) / (2 * kd)
            assert abs(math.log(exact) / math.log(wkb) - 1) <= bound
    # kappa from first principles: 2 kappa d = 2 d sqrt(2 m (V0 - E)) / hbar
    d = 1.5e-9
    kappa = math.sqrt(2 * mass * M0 * 1.4 * Q) / HBAR
    b = s.tunnel_constant * (d / s.L_ref) * math.sqrt(mass)
    assert math.isclose(b * math.sqrt(phi), 2 * kappa * d, rel_tol=1e-12)


def test_mean_transmission_against_quadrature_and_exp_minus_2_kappa_d():
    mp.mp.dps = 30
    for phi, b in [(54.0, 2.0), (54.0, 10.0), (20.0, 9.0), (10.0, 30.0), (0.5, 1.0)]:
        f = lambda e: mp.exp(-e - b * mp.sqrt(phi - e))  # noqa: E731
        ref = mp.quad(f, [0, phi / 2, phi]) + mp.exp(-phi)
        assert abs(float(mean_transmission(phi, b)) / float(ref) - 1) < 1e-12
    # slope in thickness: d ln<T>/dd -> -2 kappa(band edge) (1 + O(kappa d / phi)) for kappa d >> 1
    s = Scales()
    phi, mass = 1.4 / VT, 0.42
    kappa = math.sqrt(2 * mass * M0 * 1.4 * Q) / HBAR
    c = s.tunnel_constant * math.sqrt(mass) / s.L_ref  # b per metre
    slope = jax.grad(lambda d: jnp.log(mean_transmission(phi, c * d)))(1.5e-9)
    assert abs(float(slope) / (-2 * kappa) - 1) < 0.05
    # no barrier or zero thickness: full transmission
    assert float(mean_transmission(0.0, 5.0)) == 1.0 and float(mean_transmission(40.0, 0.0)) == 1.0


# ----------------------------------------------------------------- thermionic emission
def _hetero(model, offset_eV=0.5, nc_ratio=1e3, velocity=None, doping=1e17, mu=400.0):
    a = silicon(electron_affinity_eV=4.0, band_gap_eV=1.5, mu_n_cm2_Vs=mu, mu_p_cm2_Vs=mu)
    b = silicon(electron_affinity_eV=4.0 + offset_eV, band_gap_eV=1.5 - offset_eV,
                Nc_cm3=1e19 / nc_ratio, mu_n_cm2_Vs=mu, mu_p_cm2_Vs=mu)
    itf = [InterfaceSpec(("a", "b"), model=model, velocity_cm_s=velocity)] if model else []
    return _stack([("a", 200e-9), ("b", 200e-9)], {"a": a, "b": b},
                  {"a": (0.0, doping), "b": (doping, 0.0)}, itf)


def test_thermionic_link_detailed_balance():
    """Nc ratio 1e3 and a 0.5 eV offset: no current at 0 V, also after a trip to 1 V."""
    dev = _hetero("thermionic")
    res = _sweep(dev, [0.0, -0.5, -1.0, -0.5, 0.0])  # forward: cathode (right, n side) negative
    j_on = abs(_current(res, 2))
    assert j_on > 1.0  # A/m^2: a real forward current
    for i in (0, 4):
        obs = res.points[i].observables
        assert abs(obs["current"][0]) < 1e-14 * j_on
        assert abs(obs["current_direct"][0]) < 1e-14 * j_on
    # the split really exists: quasi-Fermi levels jump at the interface under bias
    assert dev.layout.n_carriers == dev.mesh.n_nodes + 1


def test_continuous_link_reproduces_core_and_fast_link_converges_to_it():
    """A 'continuous' interface (link with no flux) equals no interface to 1e-10; a
    thermionic link with velocity v approaches it as 1/v."""
    ref = _sweep(_hetero(None, offset_eV=0.1, nc_ratio=1.0), [0.0, -0.6])
    cont = _sweep(_hetero("continuous", offset_eV=0.1, nc_ratio=1.0), [0.0, -0.6])
    j0 = _current(ref, 1)
    assert abs(_current(cont, 1) / j0 - 1) < 1e-10
    errs = []
    for v in (1e6, 1e8, 1e10):
        r = _sweep(_hetero("thermionic", offset_eV=0.1, nc_ratio=1.0, velocity=v), [0.0, -0.6])
        errs.append(abs(_current(r, 1) / j0 - 1))
    assert errs[0] > errs[1] > errs[2]
    assert 50 < errs[0] / errs[1] < 200 and 50 < errs[1] / errs[2] < 200  # ~1/v


def test_n_N_heterojunction_richardson_limit():
    """High mobility: the interface limits the current; in linear response
    J / V = (q/kT) A* T^2 exp(-Phi_B/kT), Phi_B from the equilibrium band diagram."""
    kw = dict(Nc_cm3=NC_M0, mu_n_cm2_Vs=1e5, mu_p_cm2_Vs=1e5)  # A* T^2 = q Nc v_R needs Nc(m0)
    n_side = silicon(electron_affinity_eV=4.2, **kw)
    big_n = silicon(electron_affinity_eV=4.0, **kw)
    dev = _stack([("n", 100e-9), ("N", 100e-9)], {"n": n_side, "N": big_n},
                 {"n": (1e18, 0.0), "N": (1e18, 0.0)},
                 [InterfaceSpec(("n", "N"), model="thermionic")])
    res = _sweep(dev, [0.0, 1e-4])
    x = dev.mesh.points[:, 0]
    node = int(np.argmin(np.abs(x - 100e-9)))
    psi_if = res.points[0].observables["psi"][node]
    barrier = -psi_if - 4.0  # eV: Ec on the N side at the interface, E_F = 0
    predicted = (1 / VT) * A_STAR * 300.0**2 * math.exp(-barrier / VT)  # A m^-2 per V
    g = abs(_current(res, 1)) / 1e-4
    assert 0.2 < barrier < 0.35
    assert abs(g / predicted - 1) < 0.01


# ----------------------------------------------------------------- tunnelling link
def test_tunnelling_link_current_scales_with_transmission():
    """n/n junction of one material split by a ligand barrier: the linear-response
    conductance is link-limited and follows <T>(d), i.e. falls as exp(-2 kappa d)."""
    mat = silicon(mu_n_cm2_Vs=1e4, mu_p_cm2_Vs=1e4)
    g = {}
    for d in (1.0, 1.5, 2.0):
        itf = InterfaceSpec(("l", "r"), model="tunnelling", barrier_thickness_nm=d,
                            electron_barrier_eV=1.4, hole_barrier_eV=1.4,
                            barrier_mass_n=0.42, barrier_mass_p=0.42)
        dev = _stack([("l", 50e-9), ("r", 50e-9)], {"l": mat, "r": mat},
                     {"l": (1e18, 0.0), "r": (1e18, 0.0)}, [itf], n=40)
        res = _sweep(dev, [0.0, 1e-4])
        g[d] = abs(_current(res, 1)) / 1e-4
    s = Scales()
    t = {d: float(mean_transmission(1.4 / VT, s.tunnel_constant * d * 1e-9 / s.L_ref * math.sqrt(0.42)))
         for d in g}
    for d in (1.5, 2.0):
        assert abs((g[d] / g[1.0]) / (t[d] / t[1.0]) - 1) < 1e-3
    # absolute: G = (q/kT) q v_R n <T> in the link-limited limit
    v_r = math.sqrt(KB * 300.0 / (2 * math.pi * M0))
    predicted = Q * v_r * 1e24 * t[2.0] / VT
    assert abs(g[2.0] / predicted - 1) < 0.01


# ----------------------------------------------------------------- surface recombination
def test_interface_recombination_against_surface_diffusion_solution():
    """Gate / oxide / n-Si (flat band) / ohmic contact, uniform generation G, surface SRH at
    the oxide interface, no bulk recombination. Low-injection minority diffusion gives
    dp(x) = -G x^2 / 2D + c1 x + c0 with D dp'(0) = S dp(0), dp(L) = 0:
    surface rate S c0 = S G L^2 / (2 D (1 + S L / D)); the rest, G L - S c0, leaves as hole
    current at the contact (a conservation identity checked on the direct current)."""
    mu_p, s_p, big_l, g = 1.0, 1e3, 100e-7, 1e20  # cm^2/Vs, cm/s, cm, cm^-3 s^-1
    semi = silicon(mu_n_cm2_Vs=1e3, mu_p_cm2_Vs=mu_p)
    semi = MaterialSpec(**{**semi.__dict__, "tau_n_s": math.inf, "tau_p_s": math.inf})
    ox = MaterialSpec(kind="insulator", eps_r=3.9)
    itf = InterfaceSpec(("ox", "semi"), s_n_cm_s=s_p, s_p_cm_s=s_p)
    mesh = layer_stack([Layer("ox", 10e-9, 1e-9), Layer("semi", big_l * 1e-2, 1e-9)], "left", "right")
    flat_band = 4.05 + VT * math.log(1e19 / 1e17)
    dev = Device(mesh, {"ox": ox, "semi": semi},
                 (ContactSpec("left", "work_function"), ContactSpec("right")),
                 doping={"semi": [DopingProfile(donors_cm3=1e17)]},
                 work_functions_eV={"left": flat_band}, interfaces=(itf,))
    p0 = dev.params()
    gen = jnp.where(jnp.asarray(dev.layout.site_carrier >= 0), g * 1e6 / dev.scales.rate, 0.0)
    p = type(p0)(**{**p0.__dict__, "generation": gen})
    eq = dev.solve(dev.initial_guess(p0), p0)
    res = dev.solve(eq.u, p)
    assert int(res.status) == 0
    obs = dev.observe(res.ref, p, res.delta)
    surface = obs["recombination_current_by_channel"][3] / 1e4  # A/cm^2
    d = mu_p * VT
    expected = Q * s_p * g * big_l**2 / (2 * d * (1 + s_p * big_l / d))
    assert abs(surface / expected - 1) < 1e-4  # low injection: dp / N_D ~ 1e-6
    hole_out = -obs["i_p"][1] / 1e4  # direct hole current leaving at the contact
    assert abs((surface + hole_out) / (Q * g * big_l) - 1) < 1e-8


# ----------------------------------------------------------------- Schottky contact
def test_schottky_diode_follows_thermionic_emission():
    """Schottky barrier 0.7 eV on n-type, contact velocity = Richardson velocity of m0:
    J = A* T^2 exp(-Phi_B/kT) (exp(qV/kT) - 1) when the mobility is high."""
    mat = silicon(mu_n_cm2_Vs=1e4, mu_p_cm2_Vs=1e4, Nc_cm3=NC_M0)
    v_r = math.sqrt(KB * 300.0 / (2 * math.pi * M0)) * 100  # cm/s
    contacts = (ContactSpec("left", "schottky", barrier_eV=0.7, s_n_cm_s=v_r, s_p_cm_s=v_r),
                ContactSpec("right"))
    dev = _stack([("n", 500e-9)], {"n": mat}, {"n": (1e16, 0.0)}, contacts=contacts, n=200)
    volts = [0.0, 0.1, 0.2, 0.3, -0.2]
    res = _sweep(dev, volts, k=0)
    js = A_STAR * 300.0**2 * math.exp(-0.7 / VT)
    for i, v in enumerate(volts[1:], start=1):
        expected = js * math.expm1(v / VT)
        assert abs(_current(res, i) / expected - 1) < 0.02, (v, _current(res, i), expected)


# ----------------------------------------------------------------- Poole–Frenkel
def test_poole_frenkel_resistor():
    """Uniform n-type resistor (density pinned by doping): J = q n mu0 exp(gamma sqrt(F)) F."""
    gamma = 3e-3  # (cm/V)^1/2
    mat = silicon(mu_n_cm2_Vs=1e-3, mu_p_cm2_Vs=1e-3, poole_frenkel_n=gamma, poole_frenkel_p=gamma)
    dev = _stack([("r", 100e-9)], {"r": mat}, {"r": (1e18, 0.0)}, n=50)
    res = _sweep(dev, [0.0, 1.0, 2.0])
    for i, v in ((1, 1.0), (2, 2.0)):
        f = v / 100e-7  # V/cm
        j = Q * 1e18 * 1e-3 * math.exp(gamma * math.sqrt(f)) * f * 1e4  # A/m^2
        assert abs(abs(_current(res, i)) / j - 1) < 2e-3


@pytest.mark.parametrize("bad", ["insulators", "unknown"])
def test_interface_errors_name_the_regions(bad):
    ox = MaterialSpec(kind="insulator", eps_r=3.9)
    mesh = layer_stack([Layer("a", 10e-9, 1e-9), Layer("b", 10e-9, 1e-9), Layer("c", 10e-9, 1e-9)],
                       "left", "right")
    regions = ("a", "b") if bad == "insulators" else ("a", "zz")
    with pytest.raises(ValueError, match="insulators" if bad == "insulators" else "zz"):
        Device(mesh, {"a": ox, "b": ox, "c": silicon()},
               (ContactSpec("left", "work_function"), ContactSpec("right")),
               interfaces=(InterfaceSpec(regions),))


def test_sheet_charge_obeys_gauss_law():
    """Two undoped wide-gap layers (no free charge) between grounded gates of equal work
    function, sheet charge sigma at their interface: the potential peaks there by
    sigma / (eps1/d1 + eps2/d2) (exact for the piecewise-linear solution)."""
    wide = dict(band_gap_eV=6.0, Nc_cm3=1e19, Nv_cm3=1e19, electron_affinity_eV=1.0)
    a, b = silicon(eps_r=3.0, **wide), silicon(eps_r=9.0, **wide)
    sigma = 1e12  # q/cm^2
    contacts = (ContactSpec("left", "work_function"), ContactSpec("right", "work_function"))
    mesh = layer_stack([Layer("a", 20e-9, 1e-9), Layer("b", 30e-9, 1e-9)], "left", "right")
    dev = Device(mesh, {"a": a, "b": b}, contacts, work_functions_eV={"left": 4.0, "right": 4.0},
                 interfaces=(InterfaceSpec(("a", "b"), sheet_charge_cm2=sigma),))
    p = dev.params()
    res = dev.solve(dev.initial_guess(p), p)
    assert int(res.status) == 0
    psi = dev.observe(res.ref, p, res.delta)["psi"]
    node = int(np.argmin(np.abs(mesh.points[:, 0] - 20e-9)))
    from pvsim.units import EPS0
    rise = Q * sigma * 1e4 / (EPS0 * (3.0 / 20e-9 + 9.0 / 30e-9))
    assert abs((psi[node] - psi[0]) / rise - 1) < 1e-8
