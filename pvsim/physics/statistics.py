"""Carrier statistics (Boltzmann), in log form.

Potential convention (DESIGN.md): psi is the vacuum-level potential, E_vac = -q psi,
E_c = -q psi - chi, E_v = E_c - E_g; quasi-Fermi levels E_Fn = -q phi_n, E_Fp = -q phi_p.
With all potentials and energies scaled by V_T (energies by k T):

    ln n = ln(Nc/N_ref) + psi - phi_n + chi
    ln p = ln(Nv/N_ref) - psi + phi_p - chi - Eg

Working with logarithms keeps e^(-Eg/kT) representable far below room temperature (the
densities themselves underflow only when they would be below ~1e-300 N_ref).
"""

from __future__ import annotations

import jax.numpy as jnp


def log_densities(psi, phi_n, phi_p, m):
    """(ln n, ln p) at a site; ``m`` has scalar fields chi, Eg, lnNc, lnNv (scaled)."""
    ln_n = m.lnNc + psi - phi_n + m.chi
    ln_p = m.lnNv - psi + phi_p - m.chi - m.Eg
    return ln_n, ln_p


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


def neutral_potential(net_doping, phi, m):
    """psi giving local charge neutrality at quasi-Fermi level phi (both carriers at phi)."""
    ln_n, _ = neutral_log_density(net_doping, m)
    return ln_n - m.lnNc - m.chi + phi
