"""Inverse-design tools: differentiable IV sweeps, batched (vmap) adjoint solves, set-current
objectives, and the projected optax loop."""

from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
from test_solver import _diode

from pvsim import design, figures
from pvsim.adjoint import make_steady_state
from pvsim.verification import gradient_check

BIASES = [0.2, 0.35, 0.5]


def test_iv_sweep_gradient_and_ideal_diode_law():
    """d I(V_k) / d(ln mu_n, ln tau_n) over a whole IV curve against central differences, and
    the curve itself: between 0.2 and 0.35 V the diode follows exp(V / V_T) (ideality < 1.1)."""
    dev = _diode(n=60)
    dev.newton = replace(dev.newton, tol=1e-12)
    currents, _ = design.iv_sweep(dev, BIASES)
    base = dev.params()
    r = design.region_index(dev, "p_side")

    def f(theta):
        p = design.scale_leaf(base, "material.mu_n", jnp.exp(theta[0]), r)
        return currents(design.scale_leaf(p, "material.tau_n", jnp.exp(theta[1]), r))

    i = np.asarray(f(jnp.zeros(2)))
    ideality = (BIASES[1] - BIASES[0]) / dev.scales.V_T / np.log(i[1] / i[0])
    assert 1.0 < ideality < 1.1
    jac, fd, err = gradient_check(f, jnp.zeros(2), [1.0, 1.0])
    assert np.all(err < 1e-6), err
    # short-base sides (1 um): the electron diffusion current is proportional to mu_n, so
    # d ln I / d ln mu_n is its share of I (between 0 and 1); a longer lifetime only lowers
    # the recombination current (SRH in the depletion region and the bulk)
    for k in range(len(BIASES)):
        assert 0 < jac[k, 0] / i[k] < 1 and jac[k, 1] < 0


def test_vmap_over_eight_dopings_equals_serial_with_gradients():
    """A batch of 8 doping factors through one vmapped (and jitted) adjoint solve: values and
    gradients equal 8 serial solves."""
    dev = _diode(n=40)
    dev.newton = replace(dev.newton, tol=1e-12)
    u0, base = design.operating_point(dev, [0.3, 0.0])
    solve = make_steady_state(dev)

    def current(factor):
        p = design.scale_leaf(base, "doping", factor)
        return figures.terminal_currents(dev, solve(u0, p), p)[0]

    factors = jnp.linspace(0.6, 1.6, 8)
    both = jax.value_and_grad(current)
    val_b, grad_b = jax.jit(jax.vmap(both))(factors)
    serial = jax.jit(both)
    for k, fac in enumerate(factors):
        v, g = serial(fac)
        np.testing.assert_allclose(val_b[k], v, rtol=1e-10)
        np.testing.assert_allclose(grad_b[k], g, rtol=1e-8)
    # more doping, smaller diffusion current (I ~ 1/N for each minority side)
    assert np.all(np.diff(np.asarray(val_b)) < 0) and np.all(np.asarray(grad_b) < 0)


def test_set_current_objective_gradient():
    """At a set current (current-controlled anode) the contact voltage is a state variable:
    its adjoint gradient with respect to doping and mobility matches central differences,
    and dV/dln(mu_n) < 0 (a better conductor needs less voltage)."""
    dev = _diode(control="current", n=40)
    dev.newton = replace(dev.newton, tol=1e-12)
    u0, base = design.operating_point(dev, current=[50.0, 0.0])
    solve = make_steady_state(dev)
    r = design.region_index(dev, "p_side")

    def voltage(theta):
        p = design.scale_leaf(design.scale_leaf(base, "doping", theta[0]), "material.mu_n",
                              jnp.exp(theta[1]), r)
        s = solve(u0, p)
        return dev.asm.voltages(s.delta, p, s.ref)[:1] * dev.scales.V_T

    jac, _, err = gradient_check(voltage, jnp.array([1.0, 0.0]), [1.0, 1.0])
    assert np.all(err < 1e-5), err
    assert jac[0, 1] < 0


def test_projected_adam_finds_interior_optimum_and_stops_at_bounds():
    """On f = sum (theta - c)^2 with c inside the box the loop reaches c with the projected
    gradient reduced 1000x; with c outside, it stops on the bound with the outward gradient
    projected away."""
    c = jnp.array([0.3, -0.2])
    vg = jax.jit(jax.value_and_grad(lambda t: jnp.sum((t - c) ** 2)))
    ds = design.optimise(vg, [1.0, 1.0], ["a", "b"], [-1, -1], [1, 1], steps=400, learning_rate=0.05,
                         progress=False)
    np.testing.assert_allclose(ds.theta[-1], c, atol=2e-3)
    assert ds.projected_gradient_norm[-1] <= ds.projected_gradient_norm[0] / 1e3
    out = jnp.array([2.0, 0.0])
    vg2 = jax.jit(jax.value_and_grad(lambda t: jnp.sum((t - out) ** 2)))
    ds2 = design.optimise(vg2, [0.0, 0.5], ["a", "b"], [-1, -1], [1, 1], steps=400, learning_rate=0.05,
                          progress=False)
    np.testing.assert_allclose(ds2.theta[-1], [1.0, 0.0], atol=2e-3)
    pg = design.projected_gradient([1.0, 0.0], [-2.0, 0.0], [-1, -1], [1, 1])
    assert np.all(pg == 0)
