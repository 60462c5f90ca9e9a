"""Scharfetter–Gummel edge fluxes written in quasi-Fermi differences.

For an edge i -> j with scaled band-edge potential difference D (electrons:
D = (psi + chi + ln Nc)_j - (psi + chi + ln Nc)_i, the graded "effective potential" form of
DESIGN.md), the SG electron current density from i to j is (Scharfetter & Gummel, IEEE TED
16, 64 (1969))

    J_n = mu_n [n_j B(D) - n_i B(-D)]                                   (scaled, per unit w)

and, using n_j/n_i = e^{D - (phi_j - phi_i)} and e^{D} B(D) = B(-D), identically

    J_n = mu_n n_i B(-D) expm1(phi_n,i - phi_n,j) = -mu_n n_j B(D) expm1(phi_n,j - phi_n,i).

The form whose Bernoulli factor is >= 1 is used (no underflow of B for large |D|), and the
expm1 of the quasi-Fermi difference keeps small currents accurate: a terminal current is
never the difference of two large densities (DESIGN.md, "Terminal currents").
Holes, with D_p = (psi + chi + Eg - ln Nv)_j - (...)_i:

    J_p = mu_p [p_i B(D_p) - p_j B(-D_p)] = -mu_p p_i B(D_p) expm1(phi_p,j - phi_p,i)
        = mu_p p_j B(-D_p) expm1(phi_p,i - phi_p,j).

Both reduce to J = mu (n_j - n_i) (pure diffusion) at D = 0 and conserve current exactly
on the edge graph (J_ij = -J_ji). For non-Boltzmann statistics the caller passes D plus the
difference of the excess chemical potentials rho = ln F(eta) - eta (see
:func:`pvsim.assembly.semiconductor_edge`): the same formulas then give the generalised
(excess-chemical-potential) SG flux.
"""

from __future__ import annotations

import jax.numpy as jnp

from .bernoulli import bernoulli


def electron_flux(ln_n_i, ln_n_j, d_band, dphi, mu):
    """Electron current density i -> j (scaled).

    ``d_band``: electron band-potential rise from i to j; ``dphi`` = phi_n,i - phi_n,j (passed
    as a difference so that the caller can form it without cancellation).
    """
    up = d_band >= 0
    from_i = jnp.exp(ln_n_i) * bernoulli(-d_band) * jnp.expm1(dphi)
    from_j = -jnp.exp(ln_n_j) * bernoulli(d_band) * jnp.expm1(-dphi)
    return mu * jnp.where(up, from_i, from_j)


def hole_flux(ln_p_i, ln_p_j, d_band, dphi, mu):
    """Hole current density i -> j (scaled); ``dphi`` = phi_p,i - phi_p,j."""
    down = d_band <= 0
    from_i = -jnp.exp(ln_p_i) * bernoulli(d_band) * jnp.expm1(-dphi)
    from_j = jnp.exp(ln_p_j) * bernoulli(-d_band) * jnp.expm1(dphi)
    return mu * jnp.where(down, from_i, from_j)
