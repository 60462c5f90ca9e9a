"""Bernoulli function and derivative against mpmath (50 digits) over |x| <= 745."""

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np

from pvsim.physics.bernoulli import bernoulli

mp.mp.dps = 50


def _ref(x):
    x = mp.mpf(x)
    if x == 0:
        return mp.mpf(1), mp.mpf(-0.5)
    e = mp.expm1(x)
    b = x / e
    db = (e - x * mp.exp(x)) / e**2
    return b, db


def _grid():
    mags = np.concatenate([[0.0], np.logspace(-12, np.log10(745.0), 400)])
    near_switch = np.array([9.99e-4, 1e-3, 1.001e-3])
    x = np.concatenate([mags, near_switch])
    return np.concatenate([-x[::-1], x])


def test_values_and_derivative_match_mpmath():
    x = _grid()
    b = np.asarray(jax.vmap(bernoulli)(jnp.asarray(x)))
    db = np.asarray(jax.vmap(jax.grad(bernoulli))(jnp.asarray(x)))
    assert np.all(np.isfinite(b)) and np.all(np.isfinite(db))
    ref = np.array([[float(v) for v in _ref(xi)] for xi in x])
    tiny = np.finfo(float).tiny
    # values: relative 1e-14 (absolute where the value underflows towards 0)
    assert np.all(np.abs(b - ref[:, 0]) <= 1e-14 * np.abs(ref[:, 0]) + 1e3 * tiny)
    assert np.all(np.abs(db - ref[:, 1]) <= 1e-13 * np.abs(ref[:, 1]) + 1e3 * tiny)


def test_design_pitfalls():
    # the naive x/(exp(x)-1) gives a derivative of 81.7 at 1e-9 and NaN at 800
    g = jax.grad(bernoulli)
    assert abs(float(g(1e-9)) + 0.5) < 1e-9
    assert np.isfinite(float(g(800.0))) and np.isfinite(float(g(-800.0)))
    assert float(bernoulli(-800.0)) == 800.0
    # identity B(-x) = B(x) + x
    x = jnp.linspace(-50, 50, 1001)
    np.testing.assert_allclose(bernoulli(-x), bernoulli(x) + x, rtol=1e-13, atol=1e-13)
