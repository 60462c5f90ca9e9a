"""Adjoint gradients of device figures against central finite differences, per parameter class.

Every class of design parameter (material per region, contact, thermal boundary, bias, and
geometry by mesh morphing) on 1D, 2D and 2D-axisymmetric devices, with heat on and off. The
Jacobian of several figures (terminal current, IQE, peak temperature, region current
fraction) from the implicit adjoint must match central differences with h = 1e-5
max(|theta|, typical) to |g - g_FD| <= 1e-5 |g| per parameter (pvsim.verification.gradient_check);
Newton is converged to 1e-12 V_T so that the differences resolve it.
"""

import tomllib
from dataclasses import replace
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_heat_balance import _led

from pvsim import design, figures
from pvsim.adjoint import make_steady_state
from pvsim.verification import gradient_check

ROOT = Path(__file__).resolve().parent.parent


def _converged(dev, volts):
    dev.newton = replace(dev.newton, tol=1e-12)
    return design.operating_point(dev, volts)


def _assert_close(err, names):
    bad = {n: float(e) for n, e in zip(names, err) if not e <= 1e-5}
    assert not bad, f"adjoint and finite differences differ (relative): {bad}"


# each entry: (name, how theta_k enters the params, theta_k at the case's value, typical size);
# a geometric entry gives instead ("shape", device, fields): all of them morph the mesh at once
def _apply(params, entries, theta):
    shape = {}
    for k, (name, fn, _, _) in enumerate(entries):
        if isinstance(fn, tuple):
            shape[name] = theta[k]
            dev, fields = fn[1:]
        else:
            params = fn(params, theta[k])
    return design.morph(dev, params, fields, shape) if shape else params


def _run(dev, u0, base, entries, outputs):
    solve = make_steady_state(dev)

    def f(theta):
        p = _apply(base, entries, theta)
        s = solve(u0, p)
        return jnp.stack([g(dev, s, p) for g in outputs])

    theta = jnp.array([e[2] for e in entries])
    jac, fd, err = gradient_check(f, theta, [e[3] for e in entries])
    _assert_close(err, [e[0] for e in entries])
    return jac


def _current(dev, s, p):
    return figures.terminal_currents(dev, s, p)[0]


@pytest.mark.slow  # ~60 s: heat, link and Schottky kernels compile
def test_1d_heterostructure_led_with_heat():
    """Self-heated LED (thermionic link, surface SRH, Schottky cathode, Robin + heat sink):
    material (doping, mobility, lifetime, B, affinity, gap, kappa), interface (emission
    velocity), contact (Schottky barrier), thermal (h, ambient and sink temperature), bias."""
    dev = _led()
    # a poorer heat path (kappa / 20, h / 100) so that the device warms by a few kelvin and
    # the thermal sensitivities stand well above the finite-difference noise
    hot = design.scale_leaf(design.scale_leaf(dev.params(), "material.kappa", 0.05), "thermal.robin_h", 0.01)
    dev.set_base_params(hot)
    u0, base = _converged(dev, [2.3, 0.0])
    htl, eml = design.region_index(dev, "htl"), design.region_index(dev, "eml")
    vt = dev.scales.V_T
    S, A = design.scale_leaf, design.shift_leaf
    entries = [
        ("doping", lambda p, t: S(p, "doping", t), 1.0, 1.0),
        ("mu_p htl", lambda p, t: S(p, "material.mu_p", t, htl), 1.0, 1.0),
        ("tau_n eml", lambda p, t: S(p, "material.tau_n", t, eml), 1.0, 1.0),
        ("B eml", lambda p, t: S(p, "material.B", t, eml), 1.0, 1.0),
        ("chi eml", lambda p, t: A(p, "material.chi", t / vt, eml), 0.0, 0.1),
        ("Eg eml", lambda p, t: A(p, "material.Eg", t / vt, eml), 0.0, 0.1),
        ("kappa eml", lambda p, t: S(p, "material.kappa", t, eml), 1.0, 1.0),
        ("v_p link", lambda p, t: S(p, "interface.v_p", t, 0), 1.0, 1.0),
        ("Schottky barrier", lambda p, t: A(p, "work_function", t / vt, 1), 0.0, 0.1),
        ("Robin h", lambda p, t: S(p, "thermal.robin_h", t, 0), 1.0, 1.0),
        ("Robin T", lambda p, t: A(p, "thermal.robin_T", t / 300.0, 0), 0.0, 1.0),
        ("sink T", lambda p, t: A(p, "thermal.fixed_T", t / 300.0, 0), 0.0, 1.0),
        ("bias", lambda p, t: A(p, "voltage", t / vt, 0), 0.0, 0.1),
    ]
    peak_t = lambda d, s, p: figures.peak_temperature(d, s, p, sharpness=10.0)  # noqa: E731
    jac = _run(dev, u0, base, entries, [_current, figures.iqe, peak_t])
    # physics signs: more bias, more current and more heat; a hotter sink, a hotter device;
    # a better conductor, a cooler device
    assert jac[2, 6] < 0
    assert jac[0, -1] > 0 and jac[2, -1] > 0 and jac[2, -2] > 0.5


def _aperture_device(heat=True):
    from pvsim.case import build_device, load_case

    data = tomllib.loads((ROOT / "cases" / "aperture_axisym_heat.toml").read_text())
    data.pop("mesh")
    data["geometry"] = dict(generator="micro_aperture_axisym", opening_radius=60.0, outer_radius=150.0,
                            htl=20.0, eml=15.0, etl=20.0, insulator=15.0, substrate=30.0, resolution=0.5)
    data["interfaces"] = [dict(regions=["htl", "eml"], model="thermionic", thermal_conductance_MW_m2K=100.0)]
    if not heat:
        data.pop("heat")
    case, base = load_case(data, ROOT / "cases")
    return build_device(case, base)


def test_morphed_geometry_equals_rediscretised_mesh():
    """Edge weights, volumes and the interface, Robin and thermal-link areas computed in JAX
    from morphed coordinates equal those of a Device built (numpy) on the morphed mesh;
    the insulator volume's shape derivative is the exact -2 pi r0 t of the aperture wall."""
    from pvsim.device import Device

    dev = _aperture_device()
    fields = design.shape_fields(dev.mesh, ["opening_radius", "htl"])
    x = design.morph_points(dev, fields, {"opening_radius": 4.0, "htl": -2.0})
    assert design.min_volume_ratio(dev, x) > 0.5  # no element folds or collapses
    geo = dev.geometry(x)
    other = Device(**{**{f: getattr(dev, f) for f in dev.__dataclass_fields__},
                      "mesh": replace(dev.mesh, points=np.asarray(x))})
    np.testing.assert_allclose(geo.edge_weight, other.disc.edge_weight, rtol=0, atol=1e-11)
    np.testing.assert_allclose(geo.site_volume, other.disc.site_volume, rtol=1e-12)
    kinds = set()
    for t, t2 in zip(dev.asm.terms, other.asm.terms):
        if "area" in t.data:
            kinds.add(t.kind)
            np.testing.assert_allclose(t.area(geo, dev.asm), t2.data["area"], rtol=1e-12)
    assert kinds == {"link", "robin", "thermal_link"}
    ins = np.nonzero(dev.disc.site_region == design.region_index(dev, "insulator"))[0]

    def volume(r):
        g = dev.geometry(design.morph_points(dev, fields, {"opening_radius": r}))
        return jnp.sum(g.site_volume[ins]) * dev.L_ref**3

    dv = jax.grad(volume)(0.0) / 1e-9  # m^3 per m of radius
    np.testing.assert_allclose(dv, -2 * np.pi * 60e-9 * 15e-9, rtol=1e-12)
    fd = (volume(1e-3) - volume(-1e-3)) / 2e-3 / 1e-9
    np.testing.assert_allclose(dv, fd, rtol=1e-9)


@pytest.mark.slow  # ~80 s
def test_axisymmetric_aperture_with_heat_geometry_and_thermal():
    """Axisymmetric aperture, self-heated: opening radius and HTL thickness (mesh morphing),
    heat-sink and Robin parameters, interface thermal conductance, kappa and the bias;
    figures: current, peak temperature and IQE."""
    dev = _aperture_device()
    dev.set_base_params(design.scale_leaf(dev.params(), "material.kappa", 0.05))  # a few K of heating
    u0, base = _converged(dev, [3.0, 0.0])
    fields = design.shape_fields(dev.mesh, ["opening_radius", "htl"])
    eml = design.region_index(dev, "eml")
    vt = dev.scales.V_T
    S, A = design.scale_leaf, design.shift_leaf

    entries = [
        ("opening_radius", ("shape", dev, fields), 0.0, 10.0),
        ("htl", ("shape", dev, fields), 0.0, 10.0),
        ("kappa eml", lambda p, t: S(p, "material.kappa", t, eml), 1.0, 1.0),
        ("Robin h", lambda p, t: S(p, "thermal.robin_h", t, 0), 1.0, 1.0),
        ("interface conductance", lambda p, t: S(p, "thermal.conductance", t, 0), 1.0, 1.0),
        ("mu_p htl", lambda p, t: S(p, "material.mu_p", t, design.region_index(dev, "htl")), 1.0, 1.0),
        ("bias", lambda p, t: A(p, "voltage", t / vt, 0), 0.0, 0.1),
    ]
    outputs = [_current, lambda d, s, p: figures.peak_temperature(d, s, p, sharpness=10.0),
               figures.iqe]
    jac = _run(dev, u0, base, entries, outputs)
    assert jac[0, 0] > 0  # a wider opening passes more current
