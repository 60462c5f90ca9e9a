"""Occupancy integrals (pvsim.physics.occupancy) against mpmath: values, derivatives, limits."""

import functools

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

from pvsim.physics import occupancy as oc

GAMMA = oc.BLAKEMORE_GAMMA


# ---- references ---------------------------------------------------------------------------------


def _fd_ref(eta):
    """(ln F_1/2, d ln F_1/2 / d eta = F_-1/2 / F_1/2) at 30 digits, F_j = -Li_(j+1)(-e^eta)."""
    with mp.workdps(30):
        z = -mp.exp(mp.mpf(eta))
        f_half = mp.re(-mp.polylog(1.5, z))
        f_mhalf = mp.re(-mp.polylog(0.5, z))
        return mp.log(f_half), f_mhalf / f_half


def _bisect(fun, lo, hi, steps=200):
    """Root of an increasing function on [lo, hi]."""
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if fun(mid) < 0 else (lo, mid)
    return 0.5 * (lo + hi)


def _sigmoid(y):
    return 0.5 * (1.0 + np.tanh(0.5 * y))


def _gf_ref(eta, s):
    """(ln G, d ln G/d eta, d ln G/d s) by mpmath Gauss–Legendre (20 digits) on subintervals.

    Differentiation under the integral: dG/d eta = int phi f (1 - f), dG/ds = int
    (x^2 - s^2)/s^3 phi f (written with 1 - f = f(eta - x) for eta > 0, where G ~ 1).
    Subintervals: 0.5 s over a window holding the peaks of all three integrands (+-10 s), and
    1 kT within 40 kT of the Fermi edge.
    """
    x_val = _bisect(lambda x: x + s * s * _sigmoid(x - eta), -s * s, 0.0)
    x_cmp = -_bisect(lambda x: x + s * s * _sigmoid(x + eta), -s * s, 0.0)
    x_der = _bisect(lambda x: x / (s * s) + np.tanh(0.5 * (x - eta)), -s * s, s * s)
    lo = min(x_val, x_cmp, x_der) - 10.0 * s
    hi = max(x_val, x_cmp, x_der) + 10.0 * s
    cuts = set(np.arange(lo, hi, 0.5 * s)) | {hi}
    cuts |= {p for p in eta + np.arange(-40.0, 40.5) if lo < p < hi}
    with mp.workdps(20):
        e, sm = mp.mpf(eta), mp.mpf(s)
        pts = [-mp.inf] + [mp.mpf(float(p)) for p in sorted(cuts)] + [mp.inf]
        c = 1 / (mp.sqrt(2 * mp.pi) * sm)

        def phi(x):
            return c * mp.exp(-x * x / (2 * sm * sm))

        def quad(fun):
            return mp.quad(fun, pts, method="gauss-legendre")

        g = quad(lambda x: phi(x) / (1 + mp.exp(x - e)))
        g_eta = quad(lambda x: phi(x) / (4 * mp.cosh((x - e) / 2) ** 2))
        if eta > 0:
            g_s = -quad(lambda x: (x * x - sm * sm) / sm**3 * phi(x) / (1 + mp.exp(e - x)))
        else:
            g_s = quad(lambda x: (x * x - sm * sm) / sm**3 * phi(x) / (1 + mp.exp(x - e)))
        return mp.log(g), g_eta / g, g_s / g


def _abs_err(value, ref):
    """|value - ref| with ref an mpf, exact (float64 value converted without rounding)."""
    return float(abs(mp.mpf(float(value)) - ref))


@functools.cache
def _evaluate(kind, s=None):
    """jit(vmap) of eta -> (ln F, d ln F/d eta, rho, d rho/d eta) for a static kind and s."""

    def one(e):
        val, d_val = jax.value_and_grad(lambda x: oc.log_occupancy(x, kind, s))(e)
        rho, d_rho = jax.value_and_grad(lambda x: oc.excess_chemical_potential(x, kind, s))(e)
        return val, d_val, rho, d_rho

    return jax.jit(jax.vmap(one))


@jax.jit
def _gauss_fermi_all(eta, s):
    """(ln G, d ln G/d eta, d ln G/d s), eta and s arrays of one shape."""
    val = oc.log_gauss_fermi(eta, s)
    d_eta, d_s = jax.vmap(jax.grad(oc.log_gauss_fermi, (0, 1)))(eta, s)
    return val, d_eta, d_s


# ---- F_1/2 --------------------------------------------------------------------------------------

FD_ETA = np.unique(np.concatenate([
    -np.geomspace(1e4, 1.0, 70),
    np.linspace(-3.0, 3.0, 41),
    np.geomspace(1.0, 200.0, 80),
    [-745.0, -40.0, -25.0, -1.0, 0.0, 1.0, 10.0, 31.5, 32.0, 32.5, 36.0, 40.0, 100.0, 200.0],
]))


@pytest.fixture(scope="module")
def fd_reference():
    return [_fd_ref(e) for e in FD_ETA]


def test_fermi_half_values_and_derivative_match_mpmath(fd_reference):
    assert 190 <= FD_ETA.size <= 220 and FD_ETA.min() == -1e4 and FD_ETA.max() == 200.0
    val, der = map(np.asarray, _evaluate("fermi_dirac")(jnp.asarray(FD_ETA))[:2])
    assert np.all(np.isfinite(val)) and np.all(np.isfinite(der))
    # relative error of F = absolute error of ln F (measured max 4e-14)
    err = [_abs_err(v, r[0]) for v, r in zip(val, fd_reference)]
    assert max(err) <= 1e-12, (max(err), FD_ETA[int(np.argmax(err))])
    # d ln F / d eta = F_-1/2 / F_1/2, relative (measured max 9e-13)
    rel = [_abs_err(d, r[1]) / float(r[1]) for d, r in zip(der, fd_reference)]
    assert max(rel) <= 1e-10, (max(rel), FD_ETA[int(np.argmax(rel))])


def test_fermi_half_limits():
    # Boltzmann tail, and the degenerate (Sommerfeld) limit
    # F_1/2 = (4/(3 sqrt(pi))) eta^(3/2) (1 + pi^2/(8 eta^2) + 7 pi^4/(640 eta^4) + O(eta^-6))
    eta = jnp.asarray([-1e4, 200.0])
    val, der = map(np.asarray, _evaluate("fermi_dirac")(eta)[:2])
    assert val[0] == -1e4 and der[0] == 1.0
    e, a, b = 200.0, np.pi**2 / 8, 7 * np.pi**4 / 640
    series = 1 + a / e**2 + b / e**4
    assert abs(val[1] - np.log(4.0 / (3.0 * np.sqrt(np.pi)) * e**1.5 * series)) < 1e-12
    assert abs(der[1] - (1.5 / e - (2 * a / e**3 + 4 * b / e**5) / series)) < 1e-13


# ---- Blakemore ----------------------------------------------------------------------------------


def test_blakemore_closed_form():
    eta = np.concatenate([-np.logspace(4, -2, 50), [0.0], np.logspace(-2, np.log10(200.0), 50)])
    val, der = map(np.asarray, _evaluate("blakemore")(jnp.asarray(eta))[:2])
    with mp.workdps(30):
        for e, v, d in zip(eta, val, der):
            em = mp.mpf(e)
            ref = -mp.log(mp.exp(-em) + GAMMA)
            dref = 1 / (1 + GAMMA * mp.exp(em))  # relatively accurate even where ~1e-87
            assert _abs_err(v, ref) <= 2e-16 * max(1.0, abs(e)), e
            assert _abs_err(d, dref) <= 4e-16 * max(4.0, abs(e)) * float(dref), e


def test_blakemore_against_fermi_half():
    # measured: max |F_B / F_1/2 - 1| = 3.18 % for eta <= 1.3 (at eta = 1.3; +2.92 % near
    # eta = -0.09; 3 % is first exceeded at eta = 1.282), -12.6 % at eta = 2
    eta = jnp.linspace(-40.0, 2.0, 4201)
    dev = np.expm1(np.asarray(_evaluate("blakemore")(eta)[0] - _evaluate("fermi_dirac")(eta)[0]))
    e = np.asarray(eta)
    assert np.max(np.abs(dev[e <= 1.3])) < 0.032
    assert np.max(np.abs(dev[e <= 1.28])) < 0.030
    assert dev[-1] < -0.12


# ---- Boltzmann limit, excess chemical potential -------------------------------------------------

LOW = jnp.asarray(np.concatenate([-np.logspace(4, np.log10(25.0), 40), [-25.0]]))


@pytest.mark.parametrize("kind", ["blakemore", "fermi_dirac"])
def test_boltzmann_limit_recovered_at_low_density(kind):
    val, der, rho, d_rho = map(np.asarray, _evaluate(kind)(LOW))
    assert np.max(np.abs(val - np.asarray(LOW))) < 1e-10
    assert np.max(np.abs(rho)) < 1e-10
    assert np.max(np.abs(der - 1.0)) < 1e-10 and np.max(np.abs(d_rho)) < 1e-10


def test_boltzmann_is_exact():
    val, der, rho, d_rho = map(np.asarray, _evaluate("boltzmann", 3.0)(LOW))
    assert np.all(val - np.asarray(LOW) == 0.0) and np.all(rho == 0.0)
    assert np.all(der == 1.0) and np.all(d_rho == 0.0)


@pytest.mark.parametrize("kind, s", [("blakemore", None), ("fermi_dirac", None),
                                     ("gauss_fermi", 3.0)])
def test_excess_chemical_potential_consistent(kind, s):
    eta = jnp.asarray(np.linspace(-60.0, 60.0, 121))
    val, der, rho, d_rho = _evaluate(kind, s)(eta)
    np.testing.assert_allclose(rho, val - eta, rtol=0, atol=1e-13)
    np.testing.assert_allclose(d_rho, der - 1.0, rtol=0, atol=1e-14)


# ---- Gauss–Fermi ---------------------------------------------------------------------------------

GF_S = (0.5, 1.0, 2.0, 4.0, 8.0, 12.0)


def _gf_points():
    pts = []
    for s in GF_S:
        s2 = s * s
        etas = {-300.0, -s2 - 6 * s, -s2 - 1.5 * s, -s2 + 0.7 * s, -0.5 * s2, -2.0, 0.0, 0.8, 3 * s,
                100.0}
        pts += [(float(np.clip(e, -300.0, 100.0)), s) for e in sorted(etas)]
    return pts


@pytest.fixture(scope="module")
def gf_reference():
    pts = _gf_points()
    return pts, [_gf_ref(e, s) for e, s in pts]


def test_gauss_fermi_values_and_derivatives_match_mpmath(gf_reference):
    pts, refs = gf_reference
    val, d_eta, d_s = map(np.asarray, _gauss_fermi_all(jnp.asarray([p[0] for p in pts]),
                                                       jnp.asarray([p[1] for p in pts])))
    for k, ((e, sk), (ref, ref_eta, ref_s)) in enumerate(zip(pts, refs)):
        where = f"eta={e}, s={sk}"
        # relative error of G (measured max 4e-13)
        assert _abs_err(val[k], ref) <= 1e-10, where
        # d ln G/d eta relative (measured max 5e-13)
        assert _abs_err(d_eta[k], ref_eta) <= 1e-9 * float(ref_eta), where
        # d ln G/d s changes sign (G(0, s) = 1/2 for every s): relative to its natural scale,
        # max(|d ln G/d s|, s d ln G/d eta) (measured max 2e-11)
        scale = max(abs(float(ref_s)), sk * float(ref_eta))
        assert _abs_err(d_s[k], ref_s) <= 1e-9 * scale, where


def test_gauss_fermi_ds_matches_central_difference_of_mpmath():
    eta, s, h = -20.0, 4.0, 1e-6
    lo, hi = _gf_ref(eta, s - h)[0], _gf_ref(eta, s + h)[0]
    with mp.workdps(20):
        fd = float((hi - lo) / (2 * h))
    got = float(_gauss_fermi_all(jnp.asarray([eta]), jnp.asarray([s]))[2][0])
    assert abs(got - fd) <= 1e-9 * abs(fd)


def test_gauss_fermi_limits():
    s = np.repeat(np.asarray(GF_S), 21)
    s2 = s * s
    # low density: ln G = eta + s^2/2 + O(e^(eta + 3 s^2/2)) once the Gaussian tail below eta,
    # Phi((eta + s^2)/s), is negligible too: eta <= -(s^2 + max(7 s, s^2/2 + 25)).
    # (-(s^2 + 40) suffices only up to s ~ 5: at s = 12, eta = -184, the shift is off by 5e-4.)
    low = -(s2 + np.maximum(7.0 * s, 0.5 * s2 + 25.0)) - np.tile(np.r_[0.0, np.logspace(0, 4, 20)],
                                                                 len(GF_S))
    val, d_eta, _ = map(np.asarray, _gauss_fermi_all(jnp.asarray(low), jnp.asarray(s)))
    assert np.max(np.abs(val - (low + 0.5 * s2))) < 1e-10
    assert np.max(np.abs(d_eta - 1.0)) < 1e-10
    # filled DOS: 0 <= -ln G = -ln(1 - G(-eta)) <= e^(s^2/2 - eta) (1 + ...) for eta >= s^2/2 + 25
    high = 0.5 * s2 + 25.0 + np.tile(np.r_[0.0, np.logspace(-1, 2.5, 20)], len(GF_S))
    val = np.asarray(_gauss_fermi_all(jnp.asarray(high), jnp.asarray(s))[0])
    assert np.all(val <= 0.0) and np.all(val > -1e-10)
    # symmetry G(eta) + G(-eta) = 1, G(0, s) = 1/2
    mid = s * np.tile(np.linspace(-3.0, 3.0, 21), len(GF_S))
    plus = np.asarray(_gauss_fermi_all(jnp.asarray(mid), jnp.asarray(s))[0])
    minus = np.asarray(_gauss_fermi_all(jnp.asarray(-mid), jnp.asarray(s))[0])
    np.testing.assert_allclose(np.exp(plus) + np.exp(minus), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(plus[mid == 0.0], -np.log(2.0), rtol=0, atol=1e-12)


# ---- NaN-freedom, transformations, dispatch -----------------------------------------------------

ETA_RANGE = np.concatenate([-np.logspace(4, -6, 120), [0.0], np.logspace(-6, np.log10(200.0), 120),
                            [-745.0, -746.0, 32.0, 36.0]])


@pytest.mark.parametrize("kind, s", [("boltzmann", None), ("blakemore", None),
                                     ("fermi_dirac", None), ("gauss_fermi", 0.5),
                                     ("gauss_fermi", 3.0), ("gauss_fermi", 12.0)])
def test_finite_values_and_gradients_over_full_range(kind, s):
    eta = jnp.asarray(ETA_RANGE)
    val, der, rho, d_rho = map(np.asarray, _evaluate(kind, s)(eta))
    for arr in (val, der, rho, d_rho):
        assert np.all(np.isfinite(arr))
    assert np.all(der >= 0.0) and np.all(der <= 1.0 + 1e-15)
    assert np.all(rho <= (0.5 * s * s if s else 0.0) + 1e-12)


def test_gauss_fermi_traced_s_and_shapes():
    eta = np.tile(ETA_RANGE, 4)
    s = np.repeat([0.5, 1.7, 6.0, 12.0], ETA_RANGE.size)
    out = _gauss_fermi_all(jnp.asarray(eta), jnp.asarray(s))
    assert all(np.all(np.isfinite(np.asarray(a))) for a in out)
    # s traced through jit and differentiated through a composite function of both arguments
    fun = jax.jit(jax.grad(lambda e, s: jnp.sum(oc.log_gauss_fermi(e, s) ** 2), (0, 1)))
    grads = fun(jnp.linspace(-50.0, 10.0, 7), 4.0)
    assert all(np.all(np.isfinite(np.asarray(g))) for g in grads)
    # broadcasting of eta against s
    shape = jax.jit(oc.log_gauss_fermi).eval_shape(jnp.zeros((3, 4)), jnp.full((4,), 2.0)).shape
    assert shape == (3, 4)


def test_second_derivatives_finite():
    eta = jnp.asarray([-1e4, -40.0, -1.0, 0.0, 0.5, 32.0, 200.0])
    d2 = jax.jit(jax.vmap(jax.grad(jax.grad(oc.log_fermi_half))))(eta)
    assert np.all(np.isfinite(np.asarray(d2)))
    h = jax.jit(jax.vmap(jax.hessian(oc.log_gauss_fermi, (0, 1))))(eta, jnp.full(eta.shape, 3.0))
    assert all(np.all(np.isfinite(np.asarray(v))) for v in jax.tree_util.tree_leaves(h))


def test_dispatch():
    eta = jnp.linspace(-10.0, 10.0, 11)
    for kind, s in (("boltzmann", None), ("blakemore", 2.0), ("fermi_dirac", 2.0)):
        np.testing.assert_array_equal(_evaluate(kind, s)(eta)[0], _evaluate(kind)(eta)[0])
    with pytest.raises(ValueError, match="unknown statistics"):
        oc.log_occupancy(eta, "fermi")
    with pytest.raises(ValueError, match="sigma"):
        oc.log_occupancy(eta, "gauss_fermi")
    assert jax.eval_shape(oc.log_fermi_half, jnp.arange(3)).dtype == jnp.float64
    assert jnp.asarray(oc.log_boltzmann(jnp.arange(3))).dtype == jnp.float64
