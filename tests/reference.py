"""Independent high-accuracy 1D reference solutions for pvsim's tests (numpy/scipy/mpmath only).

SI units in and out; constants are CODATA values from :mod:`scipy.constants`.
Sign conventions: psi is the electrostatic potential measured from the intrinsic level,
n = ni exp((psi - phi_n)/V_T), p = ni exp((phi_p - psi)/V_T), E = -dpsi/dx.  pn junction: p side
on [0, Lp], n side on [Lp, Lp + Ln]; the p contact (x = 0) is at bias V, the n contact at 0 V.

References: [Sze] S. M. Sze, K. K. Ng, Physics of Semiconductor Devices, 3rd ed. (Wiley 2007),
Ch. 2; [Gum] H. K. Gummel, Bell Syst. Tech. J. 49, 827 (1970) (Gummel-number current);
[SNS] C. T. Sah, R. N. Noyce, W. Shockley, Proc. IRE 45, 1228 (1957); [LM] M. A. Lampert,
P. Mark, Current Injection in Solids (Academic 1970); [Rohr] J. A. Röhr et al., J. Phys.:
Condens. Matter 30, 105901 (2018), "Exploring the validity and limitations of the Mott-Gurney
law for charge-carrier mobility determination of semiconducting thin-films".
Run ``python tests/reference.py`` for the self-check and the numbers quoted in the docstrings.

Summary for the test case (NA = ND = 1e23 m^-3, ni = 1e16 m^-3, eps_r = 11.1, 1 um + 1 um):
* psi: first-integral solution and solve_bvp agree to 2e-14 V (V = 0 and -1 V).
* W(-1 V): 212.098 nm depletion approx., 209.085 nm with -2V_T = exact (majority deficit or
  charge), i.e. the plain formula is 1.42 % high.
* Diode 0.4-0.6 V (mu 400/200 cm^2/Vs, tau 10 us): use diode_reference_current; Shockley with
  neutral widths from depletion_width_corrected is within 0.16 %; without any neutral-width
  correction it is 3-5 % low.  SRH in the junction: 0.15 %, 0.03 %, 0.005 % (SNS estimate
  1.4 %, 0.18 %, 0.02 %).
* SCLC (eps_r 3, 1e-4 cm^2/Vs, 100 nm): with good contacts J/J_MG = 1.09-1.10 at 20 V; a 2 %
  window exists only from ~180 V (n0 = 1e27 m^-3) or, by cancellation against injection
  limitation, in 19-29 V for n0 = 3e24 m^-3 (0.15 eV below Nc = 1e27 m^-3).
"""

from math import factorial

import mpmath as mp
import numpy as np
from scipy import constants as sc
from scipy.integrate import solve_bvp
from scipy.optimize import brentq

Q, KB, EPS0 = sc.elementary_charge, sc.Boltzmann, sc.epsilon_0
_GL_T, _GL_W = np.polynomial.legendre.leggauss(16)


def _vt(T):
    return KB * T / Q


_G_COEF = [1.0 / factorial(k) for k in range(2, 17)]


def _g_over_t2(t):
    """(exp(t) - 1 - t)/t**2 without cancellation (Taylor series for |t| < 0.5; 1/2 at 0)."""
    t = np.asarray(t, float)
    small = np.abs(t) < 0.5
    ts, tb = np.where(small, t, 0.0), np.where(small, 1.0, t)
    ser = sum(c * ts ** k for k, c in enumerate(_G_COEF))
    return np.where(small, ser, (np.expm1(tb) - tb) / tb ** 2)


def _g(t):
    """exp(t) - 1 - t."""
    return np.asarray(t, float) ** 2 * _g_over_t2(t)


# ----------------------------------------------------------------------------------------------
# 1. pn junction electrostatics: first integral of Poisson-Boltzmann + quadrature + root finding
# ----------------------------------------------------------------------------------------------
class _Side:
    """One side of the junction, potential excursion delta = |psi - psi_bulk|/V_T >= 0 from its
    bulk towards the junction.  With maj/mino the bulk carrier densities, the first integral of
    eps psi'' = -rho gives (eps/2) E^2 = kT f(delta), f = maj g(-delta) + mino g(delta),
    g(t) = e^t - 1 - t (as for the MIS surface space-charge region [Sze, Ch. 4]).  Distance from
    the junction d(delta) = int_{ln delta}^{ln delta_j} lam(s) ds, lam = sqrt(eps V_T/(2 q f/delta^2)),
    smooth in s = ln delta and -> Debye length L_D as delta -> 0 (the exponential tail)."""

    S_LO = -45.0  # below this delta < 3e-20: lam == L_D to machine precision

    def __init__(self, maj, mino, eps, VT, psi_b, sign, length):
        self.maj, self.mino, self.eps, self.VT = maj, mino, eps, VT
        self.psi_b, self.sign, self.length = psi_b, sign, length
        self.LD = np.sqrt(eps * VT / (Q * (maj + mino)))

    def f(self, d):
        return self.maj * _g(-d) + self.mino * _g(d)

    def lam(self, s):
        d = np.exp(s)
        return np.sqrt(self.eps * self.VT / (2 * Q * (self.maj * _g_over_t2(-d) + self.mino * _g_over_t2(d))))

    def set_junction(self, dj):
        self.sj = np.log(dj)
        n = max(int(np.ceil((self.sj - self.S_LO) / 0.25)), 1)
        self.s_nodes = np.linspace(self.sj, self.S_LO, n + 1)  # descending
        a, b = self.s_nodes[1:], self.s_nodes[:-1]
        pts = 0.5 * (a + b)[:, None] + 0.5 * (b - a)[:, None] * _GL_T
        seg = 0.5 * (b - a) * (self.lam(pts) @ _GL_W)
        self.D_nodes = np.concatenate([[0.0], np.cumsum(seg)])
        self.s_end = self.s_of_distance(np.array([self.length]))[0]

    def s_of_distance(self, dist):
        """Invert d(s) = dist (vectorised Newton inside the bracketing table panel)."""
        dist = np.asarray(dist, float)
        s = np.empty_like(dist)
        tail = dist >= self.D_nodes[-1]
        s[tail] = self.S_LO - (dist[tail] - self.D_nodes[-1]) / self.LD
        k = np.clip(np.searchsorted(self.D_nodes, dist[~tail], side="right") - 1, 0, len(self.D_nodes) - 2)
        s0, s1, D0, D1 = self.s_nodes[k], self.s_nodes[k + 1], self.D_nodes[k], self.D_nodes[k + 1]
        si = s0 + (s1 - s0) * (dist[~tail] - D0) / (D1 - D0)
        for _ in range(12):
            pts = 0.5 * (si + s0)[:, None] + 0.5 * (s0 - si)[:, None] * _GL_T
            Dsi = D0 + 0.5 * (s0 - si) * (self.lam(pts) @ _GL_W)
            si = np.clip(si + (Dsi - dist[~tail]) / self.lam(si), s1, s0)
        s[~tail] = si
        return s

    def integral(self, h):
        """int over this side of h(delta) dx, for h(0) = 0 (h vanishes in the neutral bulk)."""
        lo = max(self.s_end, self.S_LO)
        n = max(int(np.ceil((self.sj - lo) / 0.25)), 1)
        e = np.linspace(lo, self.sj, n + 1)
        pts = 0.5 * (e[:-1] + e[1:])[:, None] + 0.5 * np.diff(e)[:, None] * _GL_T
        return float(np.sum(0.5 * np.diff(e) * ((h(np.exp(pts)) * self.lam(pts)) @ _GL_W)))


def _bulk(N, ni, VT, V):
    """Neutral bulk with both quasi-Fermi levels of the model fixed (pn = ni^2 exp(V/V_T))."""
    maj = 0.5 * (N + np.sqrt(N * N + 4 * ni * ni * np.exp(V / VT)))
    return maj, ni * ni * np.exp(V / VT) / maj


class PNJunction:
    """Abrupt pn junction electrostatics, exact to round-off for the model
    eps psi'' = -q (p - n + ND(x) - NA(x)),  p = ni exp((V - psi)/V_T),  n = ni exp(psi/V_T)
    (phi_p = V, phi_n = 0 everywhere), Dirichlet psi = neutral bulk values at both ends.

    V = 0 is the exact equilibrium Poisson-Boltzmann problem.  For V < 0 this is the reverse-bias
    reference: the majority quasi-Fermi levels are flat (no majority current) and the error made
    in the minority densities (at most ~ni^2/N = 1e9 m^-3 against 1e23 m^-3 dopants) changes psi
    by < 1e-12 V.  (Taking the QFLs as steps at x = Lp instead would be wrong: it floods the
    depletion region with electrons at the p-side QFL.)  For V > 0 it is the textbook 'flat QFLs
    across the depletion region' model, valid in low injection.
    Each side is solved by the first integral (class _Side); the junction excursions satisfy
    delta_p + delta_n = (psi_bn - psi_bp)/V_T and f_p(delta_p) = f_n(delta_n) (continuous D).
    The semi-infinite first integral ignores the O(exp(-L_neutral/L_D)) field at the outer ends;
    by the maximum principle the resulting error in psi is bounded by ``self.trunc_err`` [V].
    During development an independent Scharfetter-Gummel drift-diffusion solver (uniform mesh h)
    converged to this solution as O(h^2) at V = 0 and -1 V: 9e-7 V at h = 0.5 nm, 5.7e-8 V at
    0.125 nm (max over x; the largest error sits near the depletion edges).
    """

    def __init__(self, NA, ND, ni, eps_r, T, Lp, Ln, V=0.0):
        self.VT, self.eps, self.Lp, self.Ln, self.NA, self.ND = _vt(T), eps_r * EPS0, Lp, Ln, NA, ND
        pp, npb = _bulk(NA, ni, self.VT, V)
        nn, pnb = _bulk(ND, ni, self.VT, V)
        self.psi_bp, self.psi_bn = V - self.VT * np.log(pp / ni), self.VT * np.log(nn / ni)
        self.p = _Side(pp, npb, self.eps, self.VT, self.psi_bp, +1.0, Lp)
        self.n = _Side(nn, pnb, self.eps, self.VT, self.psi_bn, -1.0, Ln)
        Dt = (self.psi_bn - self.psi_bp) / self.VT
        if Dt <= 0:
            raise ValueError("V must be below the built-in voltage")
        # f_p(delta_p) = f_n(Dt - delta_p), solved in s = ln(delta) of the smaller excursion
        lnf = lambda sd, s: 2 * s + np.log(sd.maj * _g_over_t2(-np.exp(s)) + sd.mino * _g_over_t2(np.exp(s)))
        a, b = (self.p, self.n) if lnf(self.p, np.log(Dt / 2)) > lnf(self.n, np.log(Dt / 2)) else (self.n, self.p)
        s = brentq(lambda s: lnf(a, s) - lnf(b, np.log(Dt - np.exp(s))), -700.0, np.log(Dt / 2),
                   xtol=1e-15, rtol=4 * np.finfo(float).eps)
        a.set_junction(np.exp(s))
        b.set_junction(Dt - np.exp(s))
        dp = np.exp(self.p.sj)
        self.psi_j = self.psi_bp + self.VT * dp
        self.E_j = np.sqrt(2 * KB * T * self.p.f(dp) / self.eps)  # field magnitude at x = Lp
        self.Q_dep = self.eps * self.E_j  # depletion charge per side [C/m^2] (Gauss)
        self.trunc_err = self.VT * max(np.exp(self.p.s_end), np.exp(self.n.s_end))
        if self.trunc_err > 1e-10:
            raise ValueError(f"sides too short for the semi-infinite first integral ({self.trunc_err:.1e} V)")

    def psi(self, x):
        """psi [V] at positions x [m] in [0, Lp + Ln]."""
        x = np.asarray(x, float)
        xf = x.ravel()
        if np.any(xf < -1e-15 * self.Lp) or np.any(xf > (self.Lp + self.Ln) * (1 + 1e-15)):
            raise ValueError("x outside [0, Lp + Ln]")
        out = np.empty_like(xf)
        m = xf <= self.Lp
        for side, sel, dist in ((self.p, m, self.Lp - xf[m]), (self.n, ~m, xf[~m] - self.Lp)):
            out[sel] = side.psi_b + side.sign * self.VT * np.exp(side.s_of_distance(np.clip(dist, 0, None)))
        return out.reshape(x.shape)


def pn_equilibrium_potential(NA_m3, ND_m3, ni_m3, eps_r, T_K, Lp_m, Ln_m, x_eval_m):
    """Equilibrium psi(x) [V] of the abrupt pn junction (Boltzmann statistics, Fermi level 0,
    psi(0) = -V_T asinh(NA/2ni), psi(L) = V_T asinh(ND/2ni)); abs. error ~1e-15 V (see
    PNJunction; cross-checked against solve_bvp in _selfcheck)."""
    return PNJunction(NA_m3, ND_m3, ni_m3, eps_r, T_K, Lp_m, Ln_m, 0.0).psi(x_eval_m)


def _pn_bvp(NA, ND, ni, eps_r, T, Lp, Ln, V=0.0, tol=1e-9):
    """Independent check: solve_bvp with both sides folded onto t in [0, 1] (junction at t = 1,
    u = psi/V_T, u1(t) = u(Lp t), u2(t) = u(L - Ln t)), so the doping step is a node exactly."""
    VT, eps = _vt(T), eps_r * EPS0
    k, vb = Q / (eps * VT), V / VT
    pp, _ = _bulk(NA, ni, VT, V)
    nn, _ = _bulk(ND, ni, VT, V)
    ua, ub = vb - np.log(pp / ni), np.log(nn / ni)
    rhs = lambda u, N: -k * (ni * np.exp(vb - u) - ni * np.exp(u) + N)
    f = lambda t, y: np.vstack([y[1], Lp ** 2 * rhs(y[0], -NA), y[3], Ln ** 2 * rhs(y[2], ND)])
    bc = lambda a, b: np.array([a[0] - ua, a[2] - ub, b[0] - b[2], b[1] / Lp + b[3] / Ln])
    W = np.sqrt(2 * eps * VT * (ub - ua) / Q * (1 / NA + 1 / ND))
    xp, xn = W * ND / (NA + ND), W * NA / (NA + ND)
    t = np.linspace(0, 1, 4001)
    d1, d2 = np.clip(xp - Lp * (1 - t), 0, None), np.clip(xn - Ln * (1 - t), 0, None)
    y0 = np.vstack([ua + Q * NA * d1 ** 2 / (2 * eps * VT), -Q * NA * d1 * Lp / (eps * VT),
                    ub - Q * ND * d2 ** 2 / (2 * eps * VT), Q * ND * d2 * Ln / (eps * VT)])
    sol = solve_bvp(f, bc, t, y0, tol=tol, max_nodes=2_000_000, bc_tol=1e-10)
    assert sol.success, sol.message
    x = np.concatenate([Lp * sol.x, Lp + Ln * (1 - sol.x)])
    return x, VT * np.concatenate([sol.y[0], sol.y[2]])


# ----------------------------------------------------------------------------------------------
# 2. Depletion width
# ----------------------------------------------------------------------------------------------
def built_in_voltage(NA_m3, ND_m3, ni_m3, T_K):
    """Vbi = V_T ln(NA ND / ni^2) [V]."""
    return _vt(T_K) * np.log(NA_m3 * ND_m3 / ni_m3 ** 2)


def depletion_width(NA_m3, ND_m3, ni_m3, eps_r, T_K, V_applied):
    """Depletion approximation [Sze, Sec. 2.2, abrupt junction]:
    W = sqrt(2 eps (Vbi - V)/q (1/NA + 1/ND)) [m]."""
    Vbi = built_in_voltage(NA_m3, ND_m3, ni_m3, T_K)
    return np.sqrt(2 * eps_r * EPS0 * (Vbi - V_applied) / Q * (1 / NA_m3 + 1 / ND_m3))


def depletion_width_corrected(NA_m3, ND_m3, ni_m3, eps_r, T_K, V_applied):
    """Same with the majority-carrier-tail correction Vbi - V - 2 V_T [Sze, Sec. 2.2: 'the 2kT/q
    arises from the majority-carrier distribution tails'].  This is what a W extracted from a
    numerical solution should be compared with: for W defined by the majority-carrier deficit,
    W = int_p (1 - p/NA) dx + int_n (1 - n/ND) dx (depletion_width_from_carriers), or for a
    junction with both sides strongly depleted by the charge, W = Q_dep/q (1/NA + 1/ND), the first
    integral gives exactly this formula up to terms in exp(-(Vbi - V)/(2 V_T)) and (ni/N)^2
    (agreement 1e-15 for the symmetric 1e23 m^-3 case; 0.2 % for NA/ND = 100)."""
    VT = _vt(T_K)
    Vbi = built_in_voltage(NA_m3, ND_m3, ni_m3, T_K)
    return np.sqrt(2 * eps_r * EPS0 * (Vbi - V_applied - 2 * VT) / Q * (1 / NA_m3 + 1 / ND_m3))


def depletion_width_from_carriers(x_m, n_m3, p_m3, NA_m3, ND_m3, x_junction_m):
    """Recommended extraction of W [m] from a numerical solution (nodal x, n, p; a node at the
    junction): W = int_{x < xj} (1 - p/NA) dx + int_{x > xj} (1 - n/ND) dx, trapezoid per side.
    No edge threshold, no dependence on the (discontinuous) doping at the junction node, valid
    for one-sided junctions; compare with depletion_width_corrected."""
    x, n, p = (np.asarray(a, float) for a in (x_m, n_m3, p_m3))
    L, R = x <= x_junction_m, x >= x_junction_m
    return np.trapezoid(1 - p[L] / NA_m3, x[L]) + np.trapezoid(1 - n[R] / ND_m3, x[R])


def depletion_width_from_charge(x_m, net_charge_C_m3, NA_m3, ND_m3):
    """W [m] from a numerical space charge rho = q (p - n + ND - NA) at nodes x:
    W = Q_dep/q (1/NA + 1/ND), Q_dep = 1/2 int |rho| dx = eps E_max (rho < 0 on the whole p side,
    > 0 on the whole n side, so this is either side's charge).  Same as depletion_width_from_carriers
    when both sides are strongly depleted; NOT for one-sided junctions (inversion holes from a p+
    side on the n side count as charge: +38 % for NA/ND = 100).  rho jumps at the junction: give
    the junction node twice (left then right limit), else the trapezoid error is ~h/(2 W) (1 % at
    h = 2 nm for the -1 V case)."""
    Qdep = 0.5 * np.trapezoid(np.abs(net_charge_C_m3), x_m)
    return Qdep / Q * (1 / NA_m3 + 1 / ND_m3)


def depletion_width_reference(NA_m3, ND_m3, ni_m3, eps_r, T_K, Lp_m, Ln_m, V_applied):
    """(W_carriers, W_charge) [m] of the exact PNJunction(V) solution (exact for V <= 0)."""
    j = PNJunction(NA_m3, ND_m3, ni_m3, eps_r, T_K, Lp_m, Ln_m, V_applied)
    deficit = lambda d: -np.expm1(-d)  # 1 - (majority density)/(bulk value)
    return j.p.integral(deficit) + j.n.integral(deficit), float(j.Q_dep / Q * (1 / NA_m3 + 1 / ND_m3))


# ----------------------------------------------------------------------------------------------
# 3. Diode currents
# ----------------------------------------------------------------------------------------------
def _neutral_widths(NA, ND, ni, eps_r, T, Wp, Wn, V, tail_correction):
    if eps_r is None:
        return Wp, Wn
    W = (depletion_width_corrected if tail_correction else depletion_width)(NA, ND, ni, eps_r, T, V)
    return Wp - W * ND / (NA + ND), Wn - W * NA / (NA + ND)


def shockley_short_base_current(NA_m3, ND_m3, ni_m3, mu_n, mu_p, T_K, Wp_m, Wn_m, V, eps_r=None,
                                tail_correction=True):
    """Ideal short-base diode current density [A/m^2] (mu in m^2/Vs):
    J = q ni^2 (Dn/(NA Wp') + Dp/(ND Wn')) (exp(V/V_T) - 1),  D = mu V_T.
    Assumptions: low injection, no recombination in the neutral regions (W' << diffusion length),
    ohmic (infinite recombination velocity) contacts, QFLs flat across the depletion region,
    no SRH in the depletion region, no series resistance.  Wp', Wn' are neutral widths: the side
    widths minus the depletion parts x_p = W ND/(NA+ND), x_n = W NA/(NA+ND) at bias V, from
    depletion_width_corrected (tail_correction=True, the Gummel-number-exact choice, see
    gummel_diode_current) or depletion_width; eps_r=None uses the full side widths."""
    VT = _vt(T_K)
    wp, wn = _neutral_widths(NA_m3, ND_m3, ni_m3, eps_r, T_K, Wp_m, Wn_m, V, tail_correction)
    return Q * ni_m3 ** 2 * VT * (mu_n / (NA_m3 * wp) + mu_p / (ND_m3 * wn)) * np.expm1(V / VT)


def finite_base_current(NA_m3, ND_m3, ni_m3, mu_n, mu_p, tau_n, tau_p, T_K, Wp_m, Wn_m, V,
                        eps_r=None, tail_correction=True):
    """Finite-base diode with ohmic contacts [Sze, Sec. 2.3]: J = q ni^2 (Dn/(NA Ln) coth(Wp'/Ln)
    + Dp/(ND Lp) coth(Wn'/Lp)) (exp(V/V_T) - 1), L = sqrt(D tau).  -> short base for W' << L
    (coth(w) ~ 1/w + w/3), -> long base for W' >> L."""
    VT = _vt(T_K)
    wp, wn = _neutral_widths(NA_m3, ND_m3, ni_m3, eps_r, T_K, Wp_m, Wn_m, V, tail_correction)
    Dn, Dp = mu_n * VT, mu_p * VT
    Ldn, Ldp = np.sqrt(Dn * tau_n), np.sqrt(Dp * tau_p)
    return (Q * ni_m3 ** 2 * np.expm1(V / VT)
            * (Dn / (NA_m3 * Ldn * np.tanh(wp / Ldn)) + Dp / (ND_m3 * Ldp * np.tanh(wn / Ldp))))


def gummel_diode_current(NA_m3, ND_m3, ni_m3, eps_r, mu_n, mu_p, T_K, Wp_m, Wn_m, V):
    """Recombination-free diode current [A/m^2] from the Gummel numbers [Gum]: with
    Phi = exp(-phi_n/V_T), J_n = q Dn ni e^{psi/V_T} dPhi/dx integrates exactly to
    J_n = q Dn ni (1 - e^{-V/V_T}) / int_0^L e^{-psi/V_T} dx = q Dn ni^2 (e^{V/V_T} - 1) / int p dx
    (flat hole QFL), psi and p from PNJunction(V); the hole term likewise.  Since
    int_{p side} p dx = NA (Wp - x_p) with x_p the majority-deficit width, this is the Shockley
    short-base formula with neutral widths from depletion_width_corrected, plus minority charge
    in the junction (+2.7e-4 at 0.6 V for the test case).  Neglects recombination (see
    diode_reference_current), majority ohmic drop (~1e-5 here) and high injection."""
    VT = _vt(T_K)
    j = PNJunction(NA_m3, ND_m3, ni_m3, eps_r, T_K, Wp_m, Wn_m, V)
    # int p dx: p side p = maj e^-delta, n side p = mino e^delta (n symmetric)
    int_p = j.p.maj * (Wp_m - j.p.integral(lambda d: -np.expm1(-d))) + j.n.mino * (Wn_m + j.n.integral(np.expm1))
    int_n = j.n.maj * (Wn_m - j.n.integral(lambda d: -np.expm1(-d))) + j.p.mino * (Wp_m + j.p.integral(np.expm1))
    return Q * ni_m3 ** 2 * VT * (mu_n / int_p + mu_p / int_n) * np.expm1(V / VT)


def diode_reference_current(NA_m3, ND_m3, ni_m3, eps_r, mu_n, mu_p, tau, T_K, Wp_m, Wn_m, V):
    """Best estimate of the exact drift-diffusion current [A/m^2] of the ohmic-contact diode with
    SRH (midgap, tau_n = tau_p = tau): gummel_diode_current x (coth/short-base factor for neutral
    recombination) + srh_junction_current.  During development this matched an independent
    Scharfetter-Gummel solver to ~1e-5 at 0.4-0.6 V for the test case."""
    f = (finite_base_current(NA_m3, ND_m3, ni_m3, mu_n, mu_p, tau, tau, T_K, Wp_m, Wn_m, V, eps_r)
         / shockley_short_base_current(NA_m3, ND_m3, ni_m3, mu_n, mu_p, T_K, Wp_m, Wn_m, V, eps_r))
    return (gummel_diode_current(NA_m3, ND_m3, ni_m3, eps_r, mu_n, mu_p, T_K, Wp_m, Wn_m, V) * f
            + srh_junction_current(NA_m3, ND_m3, ni_m3, eps_r, T_K, tau, Wp_m, Wn_m, V))


def srh_depletion_current(NA_m3, ND_m3, ni_m3, eps_r, T_K, tau, V):
    """Depletion-region SRH recombination current, Sah-Noyce-Shockley estimate [SNS; Sze Sec.
    2.3]: J_rec = q ni W/(2 tau) exp(V/(2 V_T)) [A/m^2], tau = tau_n = tau_p, midgap trap,
    W = depletion_width(V).  It assumes the maximum rate over all of W; the rate actually peaks
    only over ~pi V_T/E_max around the n = p point, so for the test case it overestimates the
    exact integral (srh_junction_current) by 9x at 0.4 V, 6.6x at 0.5 V, 4.3x at 0.6 V."""
    W = depletion_width(NA_m3, ND_m3, ni_m3, eps_r, T_K, V)
    return Q * ni_m3 * W / (2 * tau) * np.exp(V / (2 * _vt(T_K)))


def srh_junction_current(NA_m3, ND_m3, ni_m3, eps_r, T_K, tau, Lp_m, Ln_m, V):
    """Sharper depletion-region SRH current [A/m^2]: q int (R - R_bulk) dx over both sides with
    R = ni^2 (e^{V/V_T} - 1)/(tau (n + p + 2 ni)) (midgap trap, tau_n = tau_p = tau) evaluated on
    the flat-QFL PNJunction(V) solution; this is the SNS integral done exactly.  The bulk value
    R_bulk is subtracted because neutral-region recombination belongs to finite_base_current."""
    j = PNJunction(NA_m3, ND_m3, ni_m3, eps_r, T_K, Lp_m, Ln_m, V)
    R = lambda n, p: ni_m3 ** 2 * np.expm1(V / _vt(T_K)) / (tau * (n + p + 2 * ni_m3))
    tot = 0.0
    for sd in (j.p, j.n):  # maj, mino: majority and minority bulk densities of that side
        tot += sd.integral(lambda d, sd=sd: R(sd.maj * np.exp(-d), sd.mino * np.exp(d)) - R(sd.maj, sd.mino))
    return Q * tot


# ----------------------------------------------------------------------------------------------
# 4. Single-carrier space-charge-limited current
# ----------------------------------------------------------------------------------------------
def mott_gurney_current(eps_r, mu, L, V):
    """J_MG = 9/8 eps mu V^2 / L^3 [A/m^2] (trap-free, drift only, [LM])."""
    return 9.0 / 8.0 * eps_r * EPS0 * mu * V ** 2 / L ** 3


def _sclc_scales(eps_r, mu, L, n0_m3, T_K):
    """Scales: Ns = eps V_T/(q L^2) [m^-3], J per unit scaled j [A/m^2], nu0 = n0/Ns."""
    VT, eps = _vt(T_K), eps_r * EPS0
    Ns = eps * VT / (Q * L ** 2)
    return VT, Q * mu * Ns * VT / L, n0_m3 / Ns


def _sclc_bvp(eps_r, mu, L, V_list, n0_m3, T_K, tol=1e-6):
    """solve_bvp route, continuation in V from the exact V = 0 profile (fine up to ~50 V).
    Scaled: xi = x/L, u = psi/V_T, e = du/dxi, nu = n/Ns, j = J/J_unit:
    u' = e, e' = nu, nu' = nu e - j (i.e. j = nu e - nu');  u(0) = 0, u(1) = V/V_T,
    nu(0) = nu(1) = nu0; j is an unknown parameter; solved for (u, e, ln nu).
    V = 0: e = 2k tan(k(xi - 1/2)), nu = 2k^2/cos^2(k(xi - 1/2)), 2k^2/cos^2(k/2) = nu0.
    Returns [(J [A/m^2], sol)]."""
    VT, J_unit, nu0 = _sclc_scales(eps_r, mu, L, n0_m3, T_K)
    k = brentq(lambda k: 2 * k * k / np.cos(k / 2) ** 2 - nu0, 1e-12, np.pi * (1 - 1e-15))
    xi = np.unique(np.concatenate([np.linspace(0, 1, 2001), np.geomspace(1e-6, 0.5, 400),
                                   1 - np.geomspace(1e-6, 0.5, 400)]))
    y = np.vstack([2 * np.log(np.cos(k / 2) / np.cos(k * (xi - 0.5))), 2 * k * np.tan(k * (xi - 0.5)),
                   np.log(2 * k * k) - 2 * np.log(np.cos(k * (xi - 0.5)))])
    p, out, v_prev = np.array([0.0]), [], 0.0
    f = lambda x, y, p: np.vstack([y[1], np.exp(y[2]), y[1] - p[0] * np.exp(-y[2])])
    for V in V_list:
        steps = max(1, int(np.ceil(abs(V - v_prev) / max(0.5 * VT, 0.2 * abs(v_prev)))))
        for v in np.linspace(v_prev, V, steps + 1)[1:]:
            bc = lambda a, b, p, v=v: np.array([a[0], b[0] - v / VT, a[2] - np.log(nu0), b[2] - np.log(nu0)])
            sol = solve_bvp(f, bc, xi, y, p=p, tol=tol, max_nodes=500_000, bc_tol=1e-12)
            if not sol.success:
                raise RuntimeError(f"solve_bvp failed at V = {v}: {sol.message}")
            xi, y, p = sol.x, sol.y, sol.p
        v_prev = V
        out.append((p[0] * J_unit, sol))
    return out


def _sclc_airy(nu0, Vhat, j0, e0, dps=30):
    """Exact solution in Airy functions.  First integral: e' = e^2/2 - j xi - c; e = -2 w'/w
    linearises it to w'' = (j xi + c)/2 w, so w = A Ai(z) + B Bi(z), z = a (xi + c/j), a^3 = j/2;
    nu = 2 a^2 (r^2 - z), e = -2 a r, r = w_z/w, V/V_T = 2 ln(w(z0)/w(z1)).  nu(1) = nu0 fixes
    A:B (shooting from the anode is the well-conditioned direction: w is Ai-like); the unknowns
    j and e(0) (c = e(0)^2/2 - nu0, i.e. nu(0) = nu0) solve r(z0) = -e(0)/(2a) and the voltage
    condition by Newton (mpmath.findroot, 30 digits) from the guess (j0, e0).  Returns (j, e0)."""
    def real(f):  # findroot sets trap_complex, which breaks mpmath's own Airy asymptotics
        def g(z, d=0):
            trap, mp.mp.trap_complex = mp.mp.trap_complex, False
            try:
                return mp.re(f(z, d))
            finally:
                mp.mp.trap_complex = trap
        return g

    ai, bi = real(mp.airyai), real(mp.airybi)

    def resid(j, e0):
        a = mp.cbrt(j / 2)
        z0, z1 = a * (e0 ** 2 / 2 - nu0) / j, a * (1 + (e0 ** 2 / 2 - nu0) / j)
        r1 = -mp.sqrt(nu0 / (2 * a * a) + z1)  # nu(1) = nu0, field > 0 at the anode
        A, B = bi(z1, 1) - r1 * bi(z1), -(ai(z1, 1) - r1 * ai(z1))  # then w(z1) = 1/pi (Wronskian)
        w0, dw0 = A * ai(z0) + B * bi(z0), A * ai(z0, 1) + B * bi(z0, 1)
        return [dw0 / w0 + e0 / (2 * a), 2 * mp.log(mp.pi * w0) - Vhat]

    with mp.workdps(dps):
        j, e0 = mp.findroot(resid, (mp.mpf(j0), mp.mpf(e0)), tol=mp.mpf(10) ** (-2 * dps // 3))
    return float(j), float(e0)


def _sclc_curve(eps_r, mu, L, V_list, n0_m3, T_K, max_ratio=1.25):
    """Exact J(V) [A/m^2] for increasing V_list: solve_bvp at V_start = min(V_list[0], 1 V), then
    Airy Newton with continuation in V (adaptive steps <= max_ratio, quadratic predictor in
    log V).  The first-integral constant is read from the smooth interior of the bvp solution."""
    VT, J_unit, nu0 = _sclc_scales(eps_r, mu, L, n0_m3, T_K)
    if V_list[0] <= 0 or np.any(np.diff(V_list) < 0):
        raise ValueError("V_list must be positive and increasing")
    V0 = min(V_list[0], 1.0)
    (_, sol), = _sclc_bvp(eps_r, mu, L, [V0], n0_m3, T_K)
    xi, (_, e, w), jb = sol.x, sol.y, sol.p[0]
    mid = (xi > 0.25) & (xi < 0.75)
    c0 = np.median(e[mid] ** 2 / 2 - jb * xi[mid] - np.exp(w[mid]))
    hist = [(np.log(V0),) + _sclc_airy(nu0, V0 / VT, jb, np.sign(e[0]) * np.sqrt(2 * (c0 + nu0)))]
    out, step = [], np.log(1.02)
    for V in V_list:
        while hist[-1][0] < np.log(V) - 1e-14:
            lv = min(np.log(V), hist[-1][0] + step)
            h = np.array(hist[-3:])  # polynomial predictor in log V for (ln j, e0)
            deg = len(h) - 1
            guess = [np.exp(np.polyval(np.polyfit(h[:, 0], np.log(h[:, 1]), deg), lv)),
                     np.polyval(np.polyfit(h[:, 0], h[:, 2], deg), lv)]
            try:
                hist.append((lv,) + _sclc_airy(nu0, np.exp(lv) / VT, *guess))
                step = min(1.5 * step, np.log(max_ratio))
            except (ValueError, ZeroDivisionError, ArithmeticError):
                step *= 0.3
                if step < 1e-6:
                    raise RuntimeError(f"SCLC continuation failed near V = {np.exp(lv):.4g} V")
        out.append(hist[-1][1] * J_unit)
    return np.array(out)


def sclc_exact_current(eps_r, mu, L, V, n0_m3, T_K):
    """Exact trap-free electron-only SCLC current density [A/m^2], symmetric injecting contacts.
    Problem (reproducible in pvsim with two work-function contacts of equal W, holes negligible,
    no doping, no traps, no recombination), electrons flowing from x = 0 to x = L:
        J = q mu n dpsi/dx - q D dn/dx = const (> 0),   d2psi/dx2 = q n/eps,   D = mu V_T,
        n(0) = n(L) = n0 = Nc exp(-(W - chi)/kT),   psi(L) - psi(0) = V > 0 (anode at +V).
    Computed by the closed-form Airy solution (_sclc_airy) reached by continuation from a
    solve_bvp solution; relative accuracy ~1e-12 (solve_bvp alone agrees to ~1e-10, _selfcheck).
    J/J_MG depends only on V/V_T and nu0 = q n0 L^2/(eps V_T)."""
    return float(_sclc_curve(eps_r, mu, L, [V], n0_m3, T_K)[0])


def mott_gurney_window(eps_r, mu, L, n0_m3, T_K, tol=0.02, V_range=(0.1, 20.0), n_points=121):
    """(V_low, V_high) [V]: the voltage interval in V_range where |J_exact/J_MG - 1| < tol
    (the contiguous interval around the best point, linear interpolation in log V on a log grid
    of n_points), or None if the ratio never gets that close.  Low V: diffusion makes J_exact >
    J_MG (carriers diffused in from the contacts: J -> 4 pi^2 eps mu V_T V/L^3 for n0 -> inf,
    i.e. J/J_MG -> (32 pi^2/9) V_T/V); high V:
    the finite n0 makes J drop below J_MG (injection saturation) [Rohr].  With good contacts the
    diffusion excess decays slowly (~9 % at V = 770 V_T = 20 V), so in 0.1-20 V a 2 % window
    appears only where injection limitation happens to cancel it (n0 ~ 3e24 m^-3 for 100 nm)."""
    Vs = np.geomspace(*V_range, n_points)
    dev = np.abs(_sclc_curve(eps_r, mu, L, Vs, n0_m3, T_K) / mott_gurney_current(eps_r, mu, L, Vs) - 1)
    i = int(np.argmin(dev))
    if dev[i] >= tol:
        return None
    lo, hi = i, i
    while lo > 0 and dev[lo - 1] < tol:
        lo -= 1
    while hi < len(Vs) - 1 and dev[hi + 1] < tol:
        hi += 1

    def cross(a, b):  # a inside, b outside: interpolate dev = tol in log V
        t = (tol - dev[a]) / (dev[b] - dev[a])
        return float(np.exp(np.log(Vs[a]) + t * (np.log(Vs[b]) - np.log(Vs[a]))))

    return (float(Vs[0]) if lo == 0 else cross(lo, lo - 1),
            float(Vs[-1]) if hi == len(Vs) - 1 else cross(hi, hi + 1))


# ----------------------------------------------------------------------------------------------
def _selfcheck():
    T, VT = 300.0, _vt(300.0)
    NA = ND = 1e23
    ni, er, Lp, Ln = 1e16, 11.1, 1e-6, 1e-6
    print("1. pn junction, NA = ND = 1e23 m^-3, ni = 1e16 m^-3, eps_r = 11.1, 1 um + 1 um")
    for V in (0.0, -1.0):
        j = PNJunction(NA, ND, ni, er, T, Lp, Ln, V)
        x, psi_bvp = _pn_bvp(NA, ND, ni, er, T, Lp, Ln, V)
        print(f"   V = {V:+.1f} V: psi(0) = {j.psi_bp:.12f} V, psi(Lp) = {j.psi_j:.3e} V, E_max = {j.E_j:.6e} V/m,"
              f" end-field truncation bound {j.trunc_err:.1e} V")
        err = np.max(np.abs(j.psi(x) - psi_bvp))
        print(f"      max |first integral - solve_bvp| on {len(x)} nodes = {err:.1e} V")
    print("2. depletion width at V = -1 V")
    Wd, Wc = depletion_width(NA, ND, ni, er, T, -1.0), depletion_width_corrected(NA, ND, ni, er, T, -1.0)
    Wr, Wq = depletion_width_reference(NA, ND, ni, er, T, Lp, Ln, -1.0)
    print(f"   Vbi = {built_in_voltage(NA, ND, ni, T):.6f} V; W: depletion approx. {Wd * 1e9:.4f} nm,"
          f" with -2V_T {Wc * 1e9:.4f} nm, exact reference {Wr * 1e9:.4f} nm (carriers) /"
          f" {Wq * 1e9:.4f} nm (charge)")
    print(f"   reference/corrected - 1 = {Wr / Wc - 1:.1e}, {Wq / Wc - 1:.1e};"
          f" reference/depletion approx. - 1 = {Wr / Wd - 1:+.4f}")
    j = PNJunction(NA, ND, ni, er, T, Lp, Ln, -1.0)
    for h in (2e-9, 1e-9):  # the extraction helpers on sampled reference solutions
        x = np.linspace(0, Lp + Ln, int(round((Lp + Ln) / h)) + 1)
        psi = j.psi(x)
        n, p = ni * np.exp(psi / VT), ni * np.exp((-1.0 - psi) / VT)
        Wn = depletion_width_from_carriers(x, n, p, NA, ND, Lp)
        W1 = depletion_width_from_charge(x, Q * (p - n + np.where(x < Lp, -NA, np.where(x > Lp, ND, 0.0))), NA, ND)
        xd = np.concatenate([x[x <= Lp], x[x >= Lp]])
        Nd = np.concatenate([np.full(np.sum(x <= Lp), -NA), np.full(np.sum(x >= Lp), ND)])
        nd, pd = ni * np.exp(j.psi(xd) / VT), ni * np.exp((-1.0 - j.psi(xd)) / VT)
        W2 = depletion_width_from_charge(xd, Q * (pd - nd + Nd), NA, ND)
        print(f"   h = {h * 1e9:.0f} nm: from_carriers {Wn / Wr - 1:+.1e}; from_charge: doubled junction node"
              f" {W2 / Wr - 1:+.1e}, single node {W1 / Wr - 1:+.1e}")
    print("3. diode, mu_n = 400, mu_p = 200 cm^2/Vs, tau = 10 us, J_ref = diode_reference_current")
    mun, mup, tau = 400e-4, 200e-4, 1e-5
    Ln_diff = np.sqrt(mun * VT * tau)
    print(f"   electron diffusion length {Ln_diff * 1e6:.1f} um >> 1 um: short base")
    for V in (0.4, 0.5, 0.6):
        Jr = diode_reference_current(NA, ND, ni, er, mun, mup, tau, T, Lp, Ln, V)
        Jg = gummel_diode_current(NA, ND, ni, er, mun, mup, T, Lp, Ln, V)
        Js = shockley_short_base_current(NA, ND, ni, mun, mup, T, Lp, Ln, V, eps_r=er)
        Ju = shockley_short_base_current(NA, ND, ni, mun, mup, T, Lp, Ln, V, eps_r=er, tail_correction=False)
        J0 = shockley_short_base_current(NA, ND, ni, mun, mup, T, Lp, Ln, V)
        Jf = finite_base_current(NA, ND, ni, mun, mup, tau, tau, T, Lp, Ln, V, eps_r=er)
        Jsns = srh_depletion_current(NA, ND, ni, er, T, tau, V)
        Jsrh = srh_junction_current(NA, ND, ni, er, T, tau, Lp, Ln, V)
        print(f"   V = {V} V: J_ref = {Jr:.5e} A/m^2; X/J_ref - 1: Shockley with widths from W(V - 2V_T)"
              f" {Js / Jr - 1:+.1e},"
              f" from W(V) {Ju / Jr - 1:+.1e}, full widths {J0 / Jr - 1:+.1e}; gummel {Jg / Jr - 1:+.1e};"
              f" coth/short - 1 = {Jf / Js - 1:.1e}; SRH/J_ref: SNS estimate {Jsns / Jr:.2e},"
              f" exact {Jsrh / Jr:.2e}")
    print("4. SCLC, eps_r = 3, mu = 1e-4 cm^2/Vs, L = 100 nm, symmetric contacts")
    er4, mu4, L4 = 3.0, 1e-8, 1e-7
    Vs = np.array([0.1, 1.0, 5.0, 20.0])
    for n0 in (3e24, 1e26, 1e27):
        Ja = _sclc_curve(er4, mu4, L4, Vs, n0, T)
        Jb = np.array([J for J, _ in _sclc_bvp(er4, mu4, L4, Vs, n0, T)])
        r = Ja / mott_gurney_current(er4, mu4, L4, Vs)
        print(f"   n0 = {n0:.0e} m^-3: J/J_MG at {Vs} V = {np.round(r, 4)};"
              f" |Airy/solve_bvp - 1| <= {np.max(np.abs(Ja / Jb - 1)):.1e}")
        print(f"      2% window in 0.1-20 V: {mott_gurney_window(er4, mu4, L4, n0, T)}")
    for n0, Vmax in ((1e27, 2000.0), (3e24, 200.0)):
        w = mott_gurney_window(er4, mu4, L4, n0, T, V_range=(0.1, Vmax))
        print(f"   n0 = {n0:.0e} m^-3, 2% window in 0.1-{Vmax:g} V: {w}")


if __name__ == "__main__":
    _selfcheck()
