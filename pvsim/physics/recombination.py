"""Bulk recombination, pointwise, in scaled units.

With np - ni^2 = ni^2 expm1(phi_p - phi_n) = np (1 - exp(-(phi_p - phi_n))) (exact for
Boltzmann statistics, and free of cancellation near equilibrium):

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


def recombination_rates(ln_n, ln_p, split, m):
    """(R_srh, R_rad, R_auger) at a site (scaled rates); ``split`` = phi_p - phi_n."""
    ln_ni = log_intrinsic(m)
    n = jnp.exp(ln_n)
    p = jnp.exp(ln_p)
    # np - ni^2: ni^2 expm1(split) below equilibrium, np (1 - e^-split) above it, so that a
    # wide gap at low T (ni^2 underflows) under forward bias (e^split overflows) gives no 0*inf
    pos = split > 0
    excess = jnp.where(pos, jnp.exp(ln_n + ln_p) * -jnp.expm1(-jnp.where(pos, split, 0.0)),
                       jnp.exp(2.0 * ln_ni) * jnp.expm1(jnp.where(pos, 0.0, split)))
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
