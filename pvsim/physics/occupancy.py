"""Carrier occupancy integrals in log form: Boltzmann, Blakemore, Fermi–Dirac F_1/2, Gauss–Fermi.

All energies are in units of kT. ``eta`` is the reduced Fermi level measured from the band edge
(from the centre of the Gaussian density of states for ``gauss_fermi``); the density is
n = N * F(eta) and every function here returns ln F(eta), elementwise, as pure float64 JAX
(jit, vmap, grad, jvp; any broadcastable shapes). Each F behaves as e^eta for eta -> -inf
(Gauss–Fermi: e^(eta + s^2/2)), so the excess chemical potential rho = ln F(eta) - eta used by
the generalised Scharfetter–Gummel flux tends to 0 (Boltzmann: exactly 0.0). The exponential
scale of every integral is factored out analytically, so values and first derivatives are
finite and relatively accurate for eta in [-1e4, 200]; ``excess_chemical_potential`` returns
rho itself, without the rounding of ln F at the scale of |eta|.

Definitions
-----------
* Boltzmann: F = e^eta.
* Blakemore: F = 1 / (e^-eta + gamma), gamma = 0.27 (J. S. Blakemore, Solid-State Electron.
  25, 1067 (1982)); ln F = -logaddexp(-eta, ln gamma). Measured against F_1/2: within 3 % for
  eta <= 1.28 (largest +2.92 % near eta = -0.09), -3.18 % at eta = 1.3, -12.6 % at eta = 2.
* Fermi–Dirac: the normalised complete Fermi–Dirac integral of order 1/2 (parabolic band),

      F_1/2(eta) = (2 / sqrt(pi)) int_0^inf sqrt(x) / (1 + e^(x - eta)) dx,

  so that F_1/2 -> e^eta for eta -> -inf and F_1/2 -> (4 / (3 sqrt(pi))) eta^(3/2) for
  eta -> +inf (J. S. Blakemore, "Semiconductor Statistics", Pergamon 1962, ch. 3; R. Kim and
  M. Lundstrom, "Notes on Fermi–Dirac Integrals", arXiv:0811.0116). F_1/2 = -Li_3/2(-e^eta),
  and d ln F_1/2 / d eta = F_-1/2 / F_1/2.
* Gauss–Fermi: occupancy of a Gaussian density of states of width s = sigma/kT centred at 0,

      G(eta, s) = (1 / (sqrt(2 pi) s)) int exp(-x^2 / (2 s^2)) / (1 + e^(x - eta)) dx

  (G. Paasch and S. Scheinert, J. Appl. Phys. 107, 104501 (2010)). Limits: for eta -> -inf,
  ln G = eta + s^2/2 + O(e^(eta + 3 s^2/2)) (the sigma^2/2kT shift; to 1e-10 once
  eta <= -(s^2 + max(7 s, s^2/2 + 25)), not merely eta << -s^2); 0 <= -ln G <~ e^(s^2/2 - eta)
  for eta -> +inf. Exact symmetry: G(eta, s) + G(-eta, s) = 1, so G(0, s) = 1/2.

Quadrature design (Gauss–Legendre nodes from numpy.polynomial.legendre.leggauss, at import)
-------------------------------------------------------------------------------------------
The Fermi factor 1/(1 + e^(x - eta)) has poles at x = eta +- i pi (2k + 1): all on the vertical
line through the Fermi edge, at distance pi from the real axis. A sinh map centred there,
x = c + pi sinh(v), sends every one of them to Im v = +-pi/2 and grades the nodes
geometrically away from the edge, so a few uniform Gauss–Legendre panels in v converge like
a fixed strip of analyticity while covering ~70 kT (uniform panels in x need ~300 nodes for
the same accuracy: measured 32 x 10 -> 4e-14, 24 x 10 -> 1.3e-12). Summands are products of factors scaled to
O(1) (the exponential scale is taken out analytically and added back to the log of the sum),
which is as safe as a logsumexp here and needs 2 to 4 exponentials per node instead of ~9.

* F_1/2, 60 nodes (5 panels x 12): c = max(eta, 0); x is integrated over
  [L, U] = [max(eta - 32, 0), max(eta, 0) + 36]. The degenerate part [0, L] (occupation 1 to
  e^-32) is analytic, (2/3) L^(3/2); beyond U the integrand is below e^-36 of its peak. The
  sqrt(x) end point singularity is removed on the first panel by v = v0 + t^2, v0 =
  asinh(-c/pi) the image of x = 0 (regular both when L = 0 and when L > 0 is small: the
  suggested x = L + w t^2 is not, its branch point sits at t = +-i sqrt(L/w)), and
  x = 2 pi cosh((v + v0)/2) sinh((v - v0)/2) has no cancellation near x = 0. The summand is
  sqrt(x) e^(c - x) sigmoid(x - eta) times weights (c - x in [-36, 32]); rho = ln(2/sqrt(pi))
  - c + ln(sum + (2/3) L^(3/2)). Measured against mpmath (-polylog(3/2, -e^eta), 40 digits)
  on 2806 points in [-1e4, 220]: max |error of ln F| (= relative error of F) 4.3e-14, of
  d ln F / d eta (relative) 9.1e-13. 55 nodes give 3.8e-13, 48 nodes 1.4e-12.
* Gauss–Fermi, 84 nodes (7 panels x 12): the integrand is log-concave with its maximum at x*,
  the root of x + s^2 sigmoid(x - eta) = 0 in [-s^2, 0] (from clip(eta, -s^2, 0), two Newton
  steps: within 0.07 s); strong concavity (modulus 1/s^2) bounds it by
  e^(-(x - x*)^2 / (2 s^2)) times its peak, so [x* - 8.5 s, x* + 8.5 s] holds all but ~1e-16
  of the mass. The map is the sinh map with its growth capped: dx/dv = pi B cosh v /
  (B + pi cosh v), B = pi + 2 s, i.e. x = c + B v - (2 B^2 / sqrt(B^2 - pi^2))
  atanh(sqrt((B - pi)/(B + pi)) tanh(v/2)), c the Fermi edge clipped into the window: node
  spacing ~pi h_v at the edge (the Fermi poles), <= B h_v far from it (the Gaussian). The
  window ends are mapped back by Newton from a lower bound (the map is convex, so the result
  never under-covers). The integral is evaluated only for eta <= 0, as rho = s^2/2 +
  ln int N(x + s^2; s) sigmoid(x - eta) dx with the Gaussian scaled by its value at x* (exact
  s^2/2 shift, no cancellation); eta > 0 uses the symmetry, ln G(eta) = log1p(-G(-eta)),
  which keeps the tiny 1 - G and d ln G / d eta of a filled Gaussian relatively accurate.
  Measured against mpmath (20 digits, Gauss–Legendre on 0.5 s and 1 kT subintervals) on
  1447 points with 0.5 <= s <= 12 (a grid s in {0.5, 0.7, 1, 1.5, 2, 3, 4, 6, 8, 10, 12},
  eta in [-1000, 100], and 400 random (eta, s)): max |error of ln G| 4.0e-13, of
  d ln G / d eta (relative) 4.9e-13, of d ln G / d s 1.9e-11 relative to
  max(|d ln G / d s|, s d ln G / d eta) (it changes sign: G(0, s) = 1/2 for all s). Also
  <= 1.3e-14 for 0.05 <= s <= 0.3, <= 1e-11 (ds: 5e-11) for 14 <= s <= 20, 6e-10 at s = 30;
  finite up to s ~ 80. 72 nodes give 1.2e-11 (ds 1.8e-10), 96 nodes 4e-14 (ds 9e-13).

Derivatives are custom JVPs from the same nodes (no differentiation through the node
construction): d ln F_1/2 / d eta = <sigmoid(x - eta)> under the normalised integrand (the
exact F_-1/2 / F_1/2 up to the e^-32 truncation), a sum of positive terms;
d ln G / d eta = <sigmoid(x - eta)>, and d ln G / d s = s <sigmoid(x - eta) tanh((x - eta)/2)>
(the heat equation d phi_s / d s = s phi_s'' and two integrations by parts move the
s-derivative onto the Fermi factor, free of the cancellation in <x^2 - s^2> / s^3).
Second derivatives differentiate the JVP rule itself: finite, but not held to these
tolerances.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

KINDS = ("boltzmann", "blakemore", "fermi_dirac", "gauss_fermi")
BLAKEMORE_GAMMA = 0.27

# ---- F_1/2 quadrature layout -----------------------------------------------------------------
FD_PANELS = 5
FD_ORDER = 12
FD_NODES = FD_PANELS * FD_ORDER
_FD_SCALE = math.pi  # sinh map scale: Fermi poles at Im v = +-pi/2
_FD_CUT = 32.0  # [0, eta - _FD_CUT] treated as fully occupied
_FD_TOP = 36.0  # integrand below e^-_FD_TOP beyond max(eta, 0) + _FD_TOP
_LOG_FD_NORM = math.log(2.0 / math.sqrt(math.pi))

# ---- Gauss–Fermi quadrature layout -----------------------------------------------------------
GF_PANELS = 7
GF_ORDER = 12
GF_NODES = GF_PANELS * GF_ORDER
_GF_SCALE = math.pi  # node spacing scale at the Fermi edge
_GF_GAUSS = 2.0  # far spacing scale B = pi + _GF_GAUSS * s
_GF_HALF_WIDTH = 8.5  # window x* -+ _GF_HALF_WIDTH * s
_GF_PEAK_STEPS = 2
_GF_INVERSE_STEPS = 3
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _panel_layout(panels: int, order: int):
    """GL nodes of ``panels`` equal panels of [0, 1]: (positions, weights)."""
    t, w = np.polynomial.legendre.leggauss(order)
    u = 0.5 * (t + 1.0)
    pos = np.concatenate([(k + u) / panels for k in range(panels)])
    return pos, np.tile(0.5 * w / panels, panels)


def _first_panel(order: int):
    t, w = np.polynomial.legendre.leggauss(order)
    return 0.5 * (t + 1.0), 0.5 * w


_FD_U0, _FD_W0 = _first_panel(FD_ORDER)
# node arrays: first panel (mask 1, positions u in [0, 1]), then panels 2..P in units of the
# panel width h (positions k + u in [1, P]); weights w/2 of the [0, 1] rule
_FD_MASK = np.concatenate([np.ones(FD_ORDER), np.zeros((FD_PANELS - 1) * FD_ORDER)])
_FD_U = np.concatenate([_FD_U0, np.zeros((FD_PANELS - 1) * FD_ORDER)])
_FD_POS = np.concatenate([np.zeros(FD_ORDER)] + [k + _FD_U0 for k in range(1, FD_PANELS)])
_FD_W = np.tile(_FD_W0, FD_PANELS)
_FD_VTOP = math.asinh(_FD_TOP / _FD_SCALE)

_GF_POS, _GF_W = _panel_layout(GF_PANELS, GF_ORDER)


def _as_float(x):
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


def _per_node(z):
    """Per-element array -> broadcastable against the node axis (last)."""
    return z[..., None]


def _safe_sqrt(z):
    """sqrt(z) for z >= 0 whose derivative is finite (0) where z == 0."""
    pos = z > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, z, 1.0)), 0.0)


# ---- Boltzmann, Blakemore ----------------------------------------------------------------------


def log_boltzmann(eta):
    """ln F = eta (so rho = ln F - eta is exactly 0.0)."""
    return _as_float(eta)


def log_blakemore(eta, gamma=BLAKEMORE_GAMMA):
    """ln[1 / (e^-eta + gamma)] = -logaddexp(-eta, ln gamma) = eta - softplus(eta + ln gamma).

    Stable for all eta; the logaddexp form also keeps the derivative 1/(1 + gamma e^eta)
    relatively accurate when it is tiny (eta >> 1), where 1 - sigmoid would cancel.
    """
    return -jnp.logaddexp(-_as_float(eta), jnp.log(gamma))


# ---- Fermi–Dirac F_1/2 -------------------------------------------------------------------------


def _fd_parts(eta):
    """(rho, d ln F / d eta) of F_1/2 at ``eta`` (any shape), rho = ln F_1/2 - eta."""
    a = _FD_SCALE
    c = jnp.maximum(eta, 0.0)  # centre of the sinh map (the Fermi edge, or x = 0)
    lo = jnp.maximum(eta - _FD_CUT, 0.0)  # [0, lo]: analytic
    v0 = jnp.arcsinh(-c / a)  # image of x = 0
    gap = jnp.arcsinh((lo - c) / a) - v0  # image of lo, relative to v0 (0 when lo == 0)
    h = (_FD_VTOP - v0 - gap) / FD_PANELS  # panel width in v
    ta = _safe_sqrt(gap)
    tb = jnp.sqrt(gap + h)
    p0 = jnp.exp(v0)
    boltz0 = jnp.exp(eta - c)
    # materialise the per-element set-up (else XLA may fuse it into the per-node loop)
    eta, c, lo, gap, h, ta, tb, p0, boltz0 = jax.lax.optimization_barrier(
        (eta, c, lo, gap, h, ta, tb, p0, boltz0))
    ex = _per_node
    # First panel (mask 1): v - v0 = t^2, t in [sqrt(gap), sqrt(gap + h)], which removes the
    # sqrt(x) branch point; panels 2..P (mask 0): plain Gauss–Legendre in v. One node array,
    # selected arithmetically (no concatenate or where at node level: both defeat XLA's
    # CPU fusion of the reduction).
    t = ex(ta) + ex(tb - ta) * _FD_U
    d = _FD_MASK * (t * t) + (1.0 - _FD_MASK) * (ex(gap) + ex(h) * _FD_POS)  # v - v0 >= 0
    w = _FD_W * (_FD_MASK * (2.0 * ex(tb - ta)) * t + (1.0 - _FD_MASK) * ex(h))
    # x = c + a sinh(v) = a (2 cosh((v + v0)/2)) (2 sinh(d/2)) / 2, without cancellation
    em = jnp.expm1(0.5 * d)
    q = 1.0 + em  # e^(d/2)
    pq = ex(p0) * q  # e^((v + v0)/2)
    x = 0.5 * a * (pq + 1.0 / pq) * (em * (em + 2.0) / q)
    dx_dv = 0.5 * a * (pq * q + 1.0 / (pq * q))  # a cosh(v)
    # sqrt(x) / (1 + e^(x - eta)) = e^(eta - c) sqrt(x) e^(c - x) sigmoid(x - eta), and
    # e^(eta - x) = e^(eta - c) e^(c - x) (0 for eta < -745: sigmoid = 1); c - x <= 32.
    boltz = jnp.exp(ex(c) - x)
    sig = 1.0 / (1.0 + ex(boltz0) * boltz)  # sigmoid(x - eta)
    g = w * dx_dv * jnp.sqrt(x) * boltz * sig
    # lo > 0 implies c == eta: the analytic part (2/3) lo^(3/2) in the same units
    total = jnp.sum(g, axis=-1) + jnp.where(lo > 0, (2.0 / 3.0) * lo * _safe_sqrt(lo), 0.0)
    rho = _LOG_FD_NORM - c + jnp.log(total)
    return rho, jnp.sum(g * sig, axis=-1) / total


@jax.custom_jvp
def _fd_log(eta):
    return eta + _fd_parts(eta)[0]


@_fd_log.defjvp
def _fd_log_jvp(primals, tangents):
    (eta,), (deta,) = primals, tangents
    rho, dlog = _fd_parts(eta)
    return eta + rho, dlog * deta


@jax.custom_jvp
def _fd_rho(eta):
    return _fd_parts(eta)[0]


@_fd_rho.defjvp
def _fd_rho_jvp(primals, tangents):
    (eta,), (deta,) = primals, tangents
    rho, dlog = _fd_parts(eta)
    return rho, (dlog - 1.0) * deta


def log_fermi_half(eta):
    """ln F_1/2(eta), F_1/2 = (2/sqrt(pi)) int_0^inf sqrt(x) / (1 + e^(x - eta)) dx.

    Relative accuracy 4e-14 (value) and 1e-12 (derivative, F_-1/2 / F_1/2) for eta in
    [-1e4, 220]; 60 quadrature nodes per evaluation.
    """
    return _fd_log(_as_float(eta))


# ---- Gauss–Fermi -------------------------------------------------------------------------------


def _capped_sinh(v, b):
    """x(v) with x(0) = 0 and dx/dv = pi b cosh v / (b + pi cosh v) (b > pi): (x, dx/dv).

    x = b v - (2 b^2 / sqrt(b^2 - pi^2)) atanh(k tanh(v/2)), k = sqrt((b - pi)/(b + pi)),
    from expm1 and log1p only (arctanh, tanh and where are slow inside XLA CPU fusions).
    """
    a = _GF_SCALE
    em = jnp.expm1(v)
    kt = jnp.sqrt((b - a) / (b + a)) * (em / (em + 2.0))  # k tanh(v/2)
    x = b * v - (b * b / jnp.sqrt((b - a) * (b + a))) * jnp.log1p(2.0 * kt / (1.0 - kt))
    ev = 1.0 + em
    ch = 0.5 * (ev + 1.0 / ev)
    return x, a * b * ch / (b + a * ch)


def _capped_sinh_inverse(y, b):
    """v >= 0 with x(v) >= y (y >= 0), by Newton from the lower bound max(asinh(y/pi), y/b)."""
    v = jnp.maximum(jnp.arcsinh(y / _GF_SCALE), y / b)
    for _ in range(_GF_INVERSE_STEPS):
        x, dx = _capped_sinh(v, b)
        v = v - (x - y) / dx
    return v


def _gf_lower(eta, s):
    """(rho, d ln G/d eta, d ln G/d s) for eta <= 0 (any broadcast shape)."""
    s2 = s * s
    # peak of the log-concave integrand: x + s^2 sigmoid(x - eta) = 0, x in [-s^2, 0]
    xp = jnp.clip(eta, -s2, 0.0)
    for _ in range(_GF_PEAK_STEPS):
        sg = jax.nn.sigmoid(xp - eta)
        xp = jnp.clip(xp - (xp + s2 * sg) / (1.0 + s2 * sg * (1.0 - sg)), -s2, 0.0)
    half = _GF_HALF_WIDTH * s
    lo, hi = xp - half, xp + half
    centre = jnp.clip(eta, lo, hi)
    b = _GF_SCALE + _GF_GAUSS * s
    v_lo = -_capped_sinh_inverse(centre - lo, b)
    v_hi = _capped_sinh_inverse(hi - centre, b)
    # materialise the per-element set-up (else XLA may fuse it into the per-node loop)
    eta, s, s2, xp, centre, b, v_lo, v_hi = jax.lax.optimization_barrier(
        (eta, s, s2, xp, centre, b, v_lo, v_hi))
    ex = _per_node
    dx, dx_dv = _capped_sinh(ex(v_lo) + ex(v_hi - v_lo) * _GF_POS, ex(b))
    x = ex(centre) + dx
    # In units of phi_s(xp + s^2): phi_s(x + s^2) = exp(-(x - xp)(x + xp + 2 s^2) / (2 s^2)),
    # sigmoid(x - eta) = 1/(1 + u), u = e^(eta - x) <~ e^(8.5 s + 2 ln s): no overflow for
    # s < ~80, and the summands are O(1) near the peak, so no max-subtraction is needed.
    gauss = jnp.exp(-(x - ex(xp)) * (x + ex(xp + 2.0 * s2)) / ex(2.0 * s2))
    u = jnp.exp(ex(eta) - x)
    sig = 1.0 / (1.0 + u)
    g = _GF_W * ex(v_hi - v_lo) * dx_dv * gauss * sig
    total = jnp.sum(g, axis=-1)
    g_sig = g * sig
    d_eta = jnp.sum(g_sig, axis=-1) / total
    # sigmoid(x - eta) tanh((x - eta)/2) = sigmoid^2 (1 - u)
    d_s = s * jnp.sum(g_sig * sig * (1.0 - u), axis=-1) / total
    rho = 0.5 * s2 - 0.5 * jnp.square(xp + s2) / s2 - _LOG_SQRT_2PI - jnp.log(s) + jnp.log(total)
    return rho, d_eta, d_s


def _gf_parts(eta, s):
    """(ln G, rho, d ln G/d eta, d ln G/d s); eta > 0 through G(eta) = 1 - G(-eta)."""
    neg = -jnp.abs(eta)
    rho_n, de_n, ds_n = _gf_lower(neg, s)
    log_n = neg + rho_n  # ln G(-|eta|) <= ln(1/2)
    log_p = jnp.log1p(-jnp.exp(log_n))  # ln G(|eta|)
    ratio = jnp.exp(log_n - log_p)  # G(-|eta|) / G(|eta|)
    up = eta > 0
    log_g = jnp.where(up, log_p, log_n)
    rho = jnp.where(up, log_p - eta, rho_n)
    return log_g, rho, jnp.where(up, de_n * ratio, de_n), jnp.where(up, -ds_n * ratio, ds_n)


@jax.custom_jvp
def _gf_log(eta, s):
    return _gf_parts(eta, s)[0]


@_gf_log.defjvp
def _gf_log_jvp(primals, tangents):
    (eta, s), (deta, ds) = primals, tangents
    log_g, _, g_eta, g_s = _gf_parts(eta, s)
    return log_g, g_eta * deta + g_s * ds


@jax.custom_jvp
def _gf_rho(eta, s):
    return _gf_parts(eta, s)[1]


@_gf_rho.defjvp
def _gf_rho_jvp(primals, tangents):
    (eta, s), (deta, ds) = primals, tangents
    _, rho, g_eta, g_s = _gf_parts(eta, s)
    return rho, (g_eta - 1.0) * deta + g_s * ds


def _gf_args(eta, s):
    return tuple(jnp.broadcast_arrays(_as_float(eta), _as_float(s)))


def log_gauss_fermi(eta, s):
    """ln G(eta, s): occupancy of a Gaussian DOS of width s = sigma/kT (s > 0, traced).

    G = (1/(sqrt(2 pi) s)) int exp(-x^2/(2 s^2)) / (1 + e^(x - eta)) dx; ln G -> eta + s^2/2
    for eta -> -inf, G -> 1 for eta -> +inf. Relative accuracy 4e-13 (value and d/d eta),
    2e-11 (d/d s, relative to its scale) for 0.5 <= s <= 12; 84 quadrature nodes.
    """
    return _gf_log(*_gf_args(eta, s))


# ---- dispatch ----------------------------------------------------------------------------------


def _check(kind, s):
    if kind not in KINDS:
        raise ValueError(f"unknown statistics {kind!r}; expected one of {KINDS}")
    if kind == "gauss_fermi" and s is None:
        raise ValueError("gauss_fermi statistics needs the disorder s = sigma/kT")


def log_occupancy(eta, kind: str, s=None):
    """ln F(eta) for the static statistics ``kind`` in KINDS (``s`` used by gauss_fermi only)."""
    _check(kind, s)
    if kind == "boltzmann":
        return log_boltzmann(eta)
    if kind == "blakemore":
        return log_blakemore(eta)
    if kind == "fermi_dirac":
        return log_fermi_half(eta)
    return log_gauss_fermi(eta, s)


def excess_chemical_potential(eta, kind: str, s=None):
    """rho = ln F(eta) - eta, evaluated without rounding ln F at the scale of |eta| first.

    Exactly 0.0 for Boltzmann; equals ``log_occupancy(eta, kind, s) - eta`` up to that rounding
    (|eta| * 1.1e-16), with the derivative d rho / d eta = d ln F / d eta - 1.
    """
    _check(kind, s)
    if kind == "boltzmann":
        return jnp.zeros_like(_as_float(eta))
    if kind == "blakemore":
        return -jax.nn.softplus(_as_float(eta) + math.log(BLAKEMORE_GAMMA))
    if kind == "fermi_dirac":
        return _fd_rho(_as_float(eta))
    return _gf_rho(*_gf_args(eta, s))
