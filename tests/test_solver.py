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


@pytest.mark.parametrize("backend", BACKENDS)
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
