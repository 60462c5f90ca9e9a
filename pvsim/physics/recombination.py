"""Bulk recombination, pointwise, in scaled units.

The driving term is written np - n_eq p_eq = np (1 - exp(-(phi_p - phi_n))): zero at equal
quasi-Fermi levels for any statistics, free of cancellation near equilibrium, and equal to
np - ni^2 for Boltzmann statistics (see :func:`excess_product`):

* SRH (Shockley & Read, Phys. Rev. 87, 835 (1952); Hall, Phys. Rev. 87, 387 (1952)):
  R = (np - ni^2) / (tau_p (n + n1) + tau_n (p + p1)), n1 = ni e^{Et}, p1 = ni e^{-Et},
  Et = (E_t - E_i)/kT the trap level relative to the intrinsic level;
* radiative: R = B (np - ni^2);
* Auger: R = (Cn n + Cp p)(np - ni^2).

Returns the three rates separately so that IQE = int R_rad / (I/q) is exact.
"""

from __future__ import annotations

import jax.numpy as jnp

from .statistics import log_intrinsic


def excess_product(ln_n, ln_p, split):
    """np (1 - e^-split), ``split`` = phi_p - phi_n, evaluated without 0 * inf.

    Above equilibrium as written; below it as (np e^-split) expm1(split), the first factor
    in log form (it is ni^2 for Boltzmann statistics), so that a wide gap at low T (ni^2
    underflows) under forward bias (e^split overflows) never meets an infinity.
    """
    pos = split > 0
    ln_np = ln_n + ln_p
    return jnp.where(pos, jnp.exp(ln_np) * -jnp.expm1(-jnp.where(pos, split, 0.0)),
                     jnp.exp(ln_np - split) * jnp.expm1(jnp.where(pos, 0.0, split)))


def recombination_rates(ln_n, ln_p, split, m):
    """(R_srh, R_rad, R_auger) at a site (scaled rates); ``split`` = phi_p - phi_n."""
    ln_ni = log_intrinsic(m)
    n = jnp.exp(ln_n)
    p = jnp.exp(ln_p)
    excess = excess_product(ln_n, ln_p, split)
    n1 = jnp.exp(ln_ni + m.Et)
    p1 = jnp.exp(ln_ni - m.Et)
    # infinite lifetimes switch SRH off (double where: no inf * 0 in the derivative)
    on = jnp.isfinite(m.tau_n) & jnp.isfinite(m.tau_p)
    tau_n = jnp.where(on, m.tau_n, 1.0)
    tau_p = jnp.where(on, m.tau_p, 1.0)
    r_srh = jnp.where(on, excess / (tau_p * (n + n1) + tau_n * (p + p1)), 0.0)
    r_rad = m.B * excess
    r_auger = (m.Cn * n + m.Cp * p) * excess
    return r_srh, r_rad, r_auger
