"""Lattice temperature: temperature-dependent material laws and transport energies, pointwise.

The lattice temperature enters as theta = T / T_ref (T_ref: the simulation temperature, at
which V_T and the scaled material arrays are taken). Potentials stay scaled by V_T(T_ref);
a local temperature divides them by theta. The laws (material values are given at 300 K
and carried to T_ref by :func:`pvsim.materials.scaled_material`):

* effective densities of states Nc, Nv ~ T^(3/2) for band statistics (parabolic bands);
  the site density N0 of a Gauss–Fermi organic does not depend on T (``dos_exp`` = 0);
* band gap E_g(T) = E_g(T_ref) + alpha (T - T_ref), alpha > 0 for lead-halide perovskites
  (the gap *opens* with T), < 0 for most inorganic semiconductors; the change moves the
  valence band (the electron affinity is held);
* Gaussian widths sigma / kT and trap levels E_t / kT scale as 1 / theta;
* mobility mu(T) = mu(T_ref) theta^-gamma exp(-c (1/theta^2 - 1)): a power law for band
  transport (gamma ~ 1.5 for phonon-limited perovskites), the Gaussian-disorder law
  mu ~ exp(-(2 sigma / 3 kT)^2) for hopping (Bässler, phys. stat. sol. (b) 175, 15 (1993)),
  c = (2 sigma_hop / 3 k T_ref)^2;
* thermal conductivity kappa(T) = kappa(T_ref) theta^-kappa_exp.

**Transport potentials.** The energy carried by a unit (positive) charge of the electron and
hole currents is pi_n = -(E_c + e_n)/q and pi_p = -(E_v - e_p)/q, e the mean energy of the
carriers beyond their band edge: 3/2 kT for a parabolic band with Boltzmann statistics (the
Kelvin-formula Peltier coefficient, Kantner, J. Comput. Phys. 402, 109091 (2020)), and
-sigma^2 / kT for a Gaussian density of states (carriers sit sigma^2/kT below its centre,
Bässler 1993). The heat source of :mod:`pvsim.assembly` is the divergence of the carrier
energy flux pi_n J_n + pi_p J_p (Wachutka, IEEE TCAD 9, 1141 (1990)), which contains Joule
heat (J times the quasi-Fermi drop), recombination heat (R (pi_p - pi_n)), Peltier heat at
heterointerfaces and contacts, and Thomson heat.
"""

from __future__ import annotations

from dataclasses import replace

import jax.numpy as jnp


def log_mean(a, b):
    """Logarithmic mean (b - a) / ln(b / a) of two positive numbers, exact at a = b.

    The effective temperature of an edge with a linear temperature profile: int dx / T over
    the edge is h / log_mean(T_i, T_j) (used by the non-isothermal SG flux).
    """
    t = (b - a) / a
    small = jnp.abs(t) < 1e-4
    safe = jnp.where(small, 1.0, t)
    series = a * (1.0 + t * (0.5 - t * (1.0 / 12.0 - t / 24.0)))
    return jnp.where(small, series, a * safe / jnp.log1p(safe))


def band_gap(m, theta):
    """E_g(T) / kT_ref."""
    return m.Eg + m.dEg * (theta - 1.0)


def at_temperature(m, theta):
    """The scaled material ``m`` re-expressed at local temperature ``theta`` for the
    statistics functions, which take potentials divided by theta: energies / theta,
    ln Nc + dos_exp ln theta, Gaussian widths / theta, mobility law applied."""
    ln_t = jnp.log(theta)
    inv = 1.0 / theta
    return replace(
        m, chi=m.chi * inv, Eg=band_gap(m, theta) * inv, Et=m.Et * inv,
        lnNc=m.lnNc + m.dos_exp * ln_t, lnNv=m.lnNv + m.dos_exp * ln_t,
        sigma_n=m.sigma_n * inv, sigma_p=m.sigma_p * inv,
        mu_n=m.mu_n * mobility_factor(m.mu_exp_n, m.mu_gdm_n, theta),
        mu_p=m.mu_p * mobility_factor(m.mu_exp_p, m.mu_gdm_p, theta))


def mobility_factor(gamma, c, theta):
    """mu(T) / mu(T_ref) = theta^-gamma exp(-c (theta^-2 - 1))."""
    return jnp.exp(-gamma * jnp.log(theta) - c * (1.0 / (theta * theta) - 1.0))


def carrier_energies(m, theta):
    """(e_n, e_p): mean energy of electrons above E_c and of holes below E_v, / kT_ref."""
    band = m.dos_exp > 0  # parabolic band: 3/2 kT; Gaussian DOS: -sigma^2 / kT
    e_n = jnp.where(band, 1.5 * theta, -m.sigma_n ** 2 / theta)
    e_p = jnp.where(band, 1.5 * theta, -m.sigma_p ** 2 / theta)
    return e_n, e_p


def transport_potentials(psi, theta, m):
    """(pi_n, pi_p) / V_T: energy per unit charge carried by electron and hole currents."""
    e_n, e_p = carrier_energies(m, theta)
    return psi + m.chi - e_n, psi + m.chi + band_gap(m, theta) + e_p


def photon_energy(m, theta):
    """hbar omega / kT_ref of radiative recombination: given, or E_g(T) + kT."""
    return jnp.where(m.photon > 0, m.photon, band_gap(m, theta) + theta)


def conductivity(m, theta):
    """kappa(T), scaled."""
    return m.kappa * jnp.exp(-m.kappa_exp * jnp.log(theta))
