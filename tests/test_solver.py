"""Solver features: current control, jit/vmap of a steady-state solve, linear back ends."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import silicon

from pvsim.device import Device
from pvsim.doping import DopingProfile
from pvsim.geometry import Layer, layer_stack
from pvsim.layout import ContactSpec
from pvsim.linalg import pardiso_available
from pvsim.sweep import BiasPoint, run_sweep

BACKENDS = ["klu", "scipy"] + (["pardiso"] if pardiso_available() else [])


def _diode(control="voltage", solver="auto", n=120):
    mesh = layer_stack([Layer("p_side", 1e-6, 1e-6 / n, 1e-9), Layer("n_side", 1e-6, 1e-6 / n, 1e-9)],
                       "anode", "cathode")
    return Device(mesh, {"p_side": silicon(), "n_side": silicon()},
                  (ContactSpec("anode", "ohmic", control), ContactSpec("cathode")),
                  doping={"p_side": [DopingProfile(acceptors_cm3=1e17)],
                          "n_side": [DopingProfile(donors_cm3=1e17)]},
                  linear_solver=solver)


def test_current_control_reproduces_voltage_control():
    vdev = _diode()
    res = run_sweep(vdev, [BiasPoint(np.array([v, 0.0]), np.zeros(2)) for v in (0.3, 0.6)])
    target = res.points[-1].observables["current_direct"][0]  # A/m^2 at 0.6 V
    cdev = _diode("current")
    cres = run_sweep(cdev, [BiasPoint(np.zeros(2), np.array([target, 0.0]))])
    assert cres.ok, cres.failure
    v = cres.points[-1].observables["voltage"][0]
    assert abs(v - 0.6) < 1e-8, v
    np.testing.assert_allclose(cres.points[-1].observables["current_direct"][0], target, rtol=1e-9)


# scipy's batching is covered in the default run by the nested-vmap test below
VMAP_BACKENDS = [pytest.param(b, marks=pytest.mark.slow if b == "scipy" else []) for b in BACKENDS]


@pytest.mark.parametrize("backend", VMAP_BACKENDS)
def test_vmap_over_doping_equals_serial_and_jit(backend):
    """Equilibrium, then 0.2 V, both inside the vmapped (and jitted) function."""
    dev = _diode(solver=backend, n=60)
    zero, biased = dev.params(), dev.params([0.2, 0.0])
    factors = jnp.array([0.5, 1.0, 2.0, 4.0])

    def solve_one(f):
        scale = lambda p: type(p)(**{**p.__dict__, "doping": p.doping * f})  # noqa: E731
        eq = dev.solve_pure(dev.initial_guess(scale(zero)), scale(zero))
        r = dev.solve_pure(eq.u, scale(biased))
        return r.u, jnp.maximum(eq.status, r.status)

    u_batch, status = jax.jit(jax.vmap(solve_one))(factors)
    assert np.all(np.asarray(status) == 0)
    for k, f in enumerate(factors):
        u_k, s_k = jax.jit(solve_one)(f)
        assert int(s_k) == 0
        np.testing.assert_allclose(u_batch[k], u_k, rtol=0, atol=1e-9)
    # the doping really changed the solution
    assert float(jnp.max(jnp.abs(u_batch[0] - u_batch[3]))) > 1.0


def test_backends_agree():
    currents = []
    for backend in BACKENDS:
        dev = _diode(solver=backend, n=60)
        res = run_sweep(dev, [BiasPoint(np.array([0.5, 0.0]), np.zeros(2))])
        currents.append(res.points[-1].observables["current"][0])
    np.testing.assert_allclose(currents, currents[0], rtol=1e-9)


def test_far_start_keeps_current_precision():
    """A solve started far from its solution (equilibrium -> 0.3 V in one call) is re-based
    and polished, so its direct terminal currents conserve current like a sweep's."""
    dev = _diode(n=120)
    eq = dev.solve(dev.initial_guess(dev.params()), dev.params())
    p = dev.params([0.3, 0.0])
    res = dev.solve(eq.u, p)
    assert int(res.status) == 0
    i = dev.observe(res.ref, p, res.delta)["current_direct"]
    assert abs(i[0] + i[1]) < 1e-9 * abs(i[0])


def test_three_contacts_robust_currents_balance():
    """n+ source / p body (contact inside) / n+ drain: robust currents sum to zero and
    equal the direct ones (which the split state resolves)."""
    from pvsim.mesh import from_arrays

    x = np.linspace(0, 3e-6, 601)
    cells = np.stack([np.arange(600), np.arange(1, 601)], axis=1)
    mesh = from_arrays(x, {"src": cells[:100], "body": cells[100:500], "drn": cells[500:]},
                       {"source": [[0]], "base": [[300]], "drain": [[600]]})
    dev = Device(mesh, {r: silicon() for r in ("src", "body", "drn")},
                 (ContactSpec("source"), ContactSpec("base"), ContactSpec("drain")),
                 doping={"src": [DopingProfile(donors_cm3=1e18)], "body": [DopingProfile(acceptors_cm3=1e16)],
                         "drn": [DopingProfile(donors_cm3=1e18)]})
    res = run_sweep(dev, [BiasPoint(np.array([0.0, 0.0, 0.25]), np.zeros(3)),
                          BiasPoint(np.array([0.0, 0.3, 0.25]), np.zeros(3))])
    assert res.ok, res.failure
    for p in res.points:
        o = p.observables
        assert abs(o["current"].sum()) <= 1e-9 * np.abs(o["current"]).max()
        np.testing.assert_allclose(o["current"], o["current_direct"], rtol=1e-7,
                                   atol=1e-9 * np.abs(o["current"]).max())


def test_contacts_must_not_share_nodes():
    from pvsim.mesh import from_arrays

    mesh = from_arrays(np.linspace(0, 1e-6, 11), {"s": np.stack([np.arange(10), np.arange(1, 11)], 1)},
                       {"a": [[0]], "b": [[0]], "c": [[10]]})
    with pytest.raises(ValueError, match="contacts 'a' and 'b' share the node"):
        Device(mesh, {"s": silicon()}, (ContactSpec("a"), ContactSpec("b"), ContactSpec("c")))


def test_floating_current_contact_is_refused():
    dev = _diode("current", n=40)
    res = run_sweep(dev, [BiasPoint(np.zeros(2), np.zeros(2))])
    assert not res.ok and "zero set current" in res.failure


def test_recombination_wide_gap_at_low_temperature_is_finite():
    """TPBi-like gap at 40 K under 3 V: ni^2 underflows and exp(split) overflows."""
    from types import SimpleNamespace

    from pvsim.physics import recombination_rates

    kt = 40.0 * 8.617333262e-5
    m = SimpleNamespace(lnNc=np.log(1e21 * 1e6 / 1e24), lnNv=np.log(1e21 * 1e6 / 1e24), Eg=3.5 / kt,
                        Et=0.0, tau_n=1.0, tau_p=1.0, B=1.0, Cn=1.0, Cp=1.0)
    split = 3.0 / kt
    ln_n = m.lnNc - 1.0 / kt  # E_c - E_Fn = 1 eV
    ln_p = 2 * 0.5 * (m.lnNc + m.lnNv - m.Eg) + split - ln_n  # n p = ni^2 e^split
    rates = [float(r) for r in recombination_rates(ln_n, ln_p, split, m)]
    assert all(np.isfinite(rates)) and rates[1] > 0
    np.testing.assert_allclose(rates[1], np.exp(ln_n + ln_p), rtol=1e-12)  # B (np - ni^2) ~ B np


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "klu"])
def test_host_solvers_under_nested_vmap(backend):
    dev = _diode(solver=backend, n=20)
    p = dev.params([0.2, 0.0])
    f, vals = dev.asm.residual_and_jacobian(dev.initial_guess(p), p)
    scales = jnp.array([[1.0, 2.0], [3.0, 4.0]])
    solve = lambda s: dev.solver.solve(vals * s, -f, dev.asm.rows, dev.asm.cols)  # noqa: E731
    x = jax.vmap(jax.vmap(solve))(scales)
    ref = solve(jnp.asarray(1.0))
    for s in np.asarray(scales).ravel():
        np.testing.assert_allclose(x.reshape(4, -1)[list(np.asarray(scales).ravel()).index(s)], ref / s,
                                   rtol=1e-9, atol=1e-12)
