"""Carrier statistics in log form: Boltzmann, Blakemore, Fermi–Dirac (F_1/2), Gauss–Fermi.

Potential convention (DESIGN.md): psi is the vacuum-level potential, E_vac = -q psi,
E_c = -q psi - chi, E_v = E_c - E_g; quasi-Fermi levels E_Fn = -q phi_n, E_Fp = -q phi_p.
With all potentials and energies scaled by V_T (energies by k T):

    ln n = ln(Nc/N_ref) + psi - phi_n + chi
    ln p = ln(Nv/N_ref) - psi + phi_p - chi - Eg

Working with logarithms keeps e^(-Eg/kT) representable far below room temperature (the
densities themselves underflow only when they would be below ~1e-300 N_ref).

Other statistics (per region, a static choice): with the reduced Fermi levels
eta_n = psi - phi_n + chi and eta_p = -psi + phi_p - chi - Eg,

    ln n = ln Nc + ln F(eta_n),    ln p = ln Nv + ln F(eta_p),

F one of the occupancy integrals of :mod:`pvsim.physics.occupancy` (Blakemore, F_1/2 for
band semiconductors and NC cores; Gauss–Fermi for disordered organics, where Nc is the site
density N0, the band edge is the centre of the Gaussian DOS and ``sigma_n``/``sigma_p`` its
width / kT). The excess chemical potential rho = ln F(eta) - eta (exactly 0 for Boltzmann)
enters the generalised Scharfetter–Gummel flux (see :mod:`pvsim.physics.flux`).
"""

from __future__ import annotations

from dataclasses import replace

import jax
import jax.numpy as jnp

BOLTZMANN = "boltzmann"


def reduced_levels(psi, phi_n, phi_p, m):
    """(eta_n, eta_p): Fermi levels relative to the band edges (Gaussian centres), / kT."""
    return psi - phi_n + m.chi, -psi + phi_p - m.chi - m.Eg


def densities_and_excess(psi, phi_n, phi_p, m, stats: str = BOLTZMANN):
    """(ln n, ln p, rho_n, rho_p) at a site, rho = ln F(eta) - eta (0.0 for Boltzmann)."""
    eta_n, eta_p = reduced_levels(psi, phi_n, phi_p, m)
    if stats == BOLTZMANN:
        return m.lnNc + eta_n, m.lnNv + eta_p, 0.0, 0.0
    from .occupancy import log_occupancy  # the quadratures load only when used

    lf_n = log_occupancy(eta_n, stats, m.sigma_n)
    lf_p = log_occupancy(eta_p, stats, m.sigma_p)
    return m.lnNc + lf_n, m.lnNv + lf_p, lf_n - eta_n, lf_p - eta_p


def masked_material(m, mask):
    """``m`` with valid Gauss–Fermi widths (1.0) outside ``mask``: for evaluating one
    statistics on sites of several regions and selecting with ``mask`` afterwards, without
    a NaN (sigma = 0) in the unselected branch that would leak into gradients."""
    return replace(m, sigma_n=jnp.where(mask, m.sigma_n, 1.0), sigma_p=jnp.where(mask, m.sigma_p, 1.0))


def per_statistics(evaluate, kinds, which, m):
    """``evaluate(m, kind)`` for items of several statistics: ``which`` (items,) indexes the
    static tuple ``kinds`` (sorted, so Gauss–Fermi comes first only when it is alone); each
    kind is evaluated on every item with masked widths and selected, leaves of any pytree."""
    out = evaluate(m, kinds[0])
    for k, kind in enumerate(kinds[1:], start=1):
        mask = which == k
        new = evaluate(masked_material(m, mask), kind)
        out = jax.tree_util.tree_map(lambda a, b, mask=mask: jnp.where(mask, a, b), new, out)
    return out


def log_densities(psi, phi_n, phi_p, m, stats: str = BOLTZMANN):
    """(ln n, ln p) at a site; ``m`` has scalar fields chi, Eg, lnNc, lnNv (scaled)."""
    return densities_and_excess(psi, phi_n, phi_p, m, stats)[:2]


def log_intrinsic(m):
    """ln(ni / N_ref) = (ln Nc + ln Nv - Eg) / 2."""
    return 0.5 * (m.lnNc + m.lnNv - m.Eg)


def neutral_log_density(net_doping, m):
    """(ln n, ln p) of the charge-neutral equilibrium n - p = C (Boltzmann), stably.

    n p = ni^2 and n - p = C give the majority density
    n_maj = |C| (1 + sqrt(1 + 4 ni^2/C^2)) / 2, evaluated in logs with t = ln(ni/|C|):
    for t < 0, ln n_maj = ln|C| + ln((1 + sqrt(1 + 4 e^{2t}))/2), otherwise
    ln n_maj = ln ni + ln((e^{-t} + sqrt(e^{-2t} + 4))/2) (finite for C = 0).
    """
    ln_ni = log_intrinsic(m)
    abs_c = jnp.abs(net_doping)
    safe_c = jnp.where(abs_c > 0, abs_c, 1.0)
    t = jnp.where(abs_c > 0, ln_ni - jnp.log(safe_c), 800.0)
    t_neg = jnp.minimum(t, 0.0)
    t_pos = jnp.maximum(t, 0.0)
    ln_maj = jnp.where(
        t < 0,
        jnp.log(safe_c) + jnp.log(0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * jnp.exp(2.0 * t_neg)))),
        ln_ni + jnp.log(0.5 * (jnp.exp(-t_pos) + jnp.sqrt(jnp.exp(-2.0 * t_pos) + 4.0))),
    )
    ln_min = 2.0 * ln_ni - ln_maj
    n_type = net_doping >= 0
    return jnp.where(n_type, ln_maj, ln_min), jnp.where(n_type, ln_min, ln_maj)


def neutral_potential(net_doping, phi, m, stats: str = BOLTZMANN, iterations: int = 12):
    """psi giving local charge neutrality at quasi-Fermi level phi (both carriers at phi).

    Boltzmann: closed form. Other statistics: Newton on the log-form neutrality condition
    (ln n = ln(p + C) for C >= 0, ln p = ln(n - C) otherwise, monotone in psi) from the
    Boltzmann value, a fixed number of steps (quadratic convergence; differentiable).
    """
    ln_n, _ = neutral_log_density(net_doping, m)
    psi0 = ln_n - m.lnNc - m.chi + phi
    if stats == BOLTZMANN:
        return psi0
    n_type = net_doping >= 0

    def g(psi):
        ln_n, ln_p = log_densities(psi, phi, phi, m, stats)
        c = jnp.abs(net_doping)
        return jnp.where(n_type, ln_n - jnp.log(jnp.exp(ln_p) + c), jnp.log(jnp.exp(ln_n) + c) - ln_p)

    def step(_, psi):
        val, slope = jax.jvp(g, (psi,), (jnp.ones_like(psi),))
        return psi - val / slope

    return jax.lax.fori_loop(0, iterations, step, psi0)
