"""Interface and contact fluxes: thermionic emission, tunnelling, surface recombination.

All in scaled units (energies by kT, velocities by ``Scales.velocity``, densities by N_ref).

**Thermionic emission written for detailed balance** (DESIGN.md, "Heterojunctions"). At an
abrupt heterointerface each side keeps its own quasi-Fermi potential; with side 1 the side
of the higher band edge for the carrier (for electrons the smaller electron affinity, for
holes the larger ionisation energy), the particle flux from 1 to 2 is

    F_n = v n_1 (1 - exp(phi_n1 - phi_n2)),       F_p = v p_1 (1 - exp(phi_p2 - phi_p1)),

zero whenever the quasi-Fermi levels agree, whatever the densities of states on the two
sides (Horio & Yanai, IEEE TED 37, 1093 (1990); Schroeder, "Modelling of interface carrier
transport for device simulation" (Springer 1994)). With Boltzmann statistics this is
v (n_1 - n_2 (Nc_1/Nc_2) exp(-dEc/kT)), the textbook Richardson form.

The velocity is the Richardson velocity v_R = sqrt(kT / (2 pi m*)) for band transport
(A* T^2 = q Nc v_R with A* = 4 pi q m* k^2 / h^3 = 120.17 (m*/m0) A cm^-2 K^-2; Sze & Ng,
*Physics of Semiconductor Devices*, 3rd ed., sec. 3.2.4) or the Scott–Malliaras velocity
v = 16 pi eps (kT)^2 mu / q^3 for injection into a hopping organic (Scott & Malliaras,
Chem. Phys. Lett. 299, 115 (1999)), a few cm/s at mu = 1e-4 cm^2/Vs.

**Tunnelling through a thin barrier** (a ligand or inorganic shell that is not meshed): a
rectangular barrier of height Phi above the higher band edge and thickness d multiplies the
thermionic flux by its thermally averaged WKB transmission

    <T> = int_0^inf T(E) exp(-E/kT) dE/kT,    T(E) = exp(-2 d sqrt(2 m_b (Phi - E)) / hbar)
                                                    for E < Phi, 1 above,

E measured from the higher band edge. With b = 2 d sqrt(2 m_b kT)/hbar and phi = Phi/kT the
integral has the closed form (substitute s = sqrt(phi - e), complete the square)

    <T> = exp(-b sqrt(phi)) (1 + b D(sqrt(phi) - b/2)) + exp(-phi) b D(b/2),

D the Dawson function. <T> = 1 for b = 0 or phi = 0; for kappa d >> 1 it falls as
exp(-2 kappa d) / (1 - b / (2 sqrt(phi))) (tunnelling at the band edge, kappa = sqrt(2 m_b Phi)
/ hbar), and tends to exp(-phi) (emission over the top) for very thick barriers. Because
the transmission multiplies the detailed-balance form above, the link still carries no
current at equal quasi-Fermi levels. Not included: image-force and field lowering of the
barrier (the barrier is not meshed), resonances, the WKB prefactor 16 E (Phi - E) / Phi^2.

**Surface (interface) SRH recombination** per unit area (Shockley–Read–Hall with surface
recombination velocities s_n, s_p; e.g. Sze & Ng sec. 1.5.5):

    R_s = (n p - n_i,eff^2) / ((n + n_1) / s_p + (p + p_1) / s_n),

with n from the side of the lower conduction band and p from the side of the higher
valence band (the same side for a type-I core/shell interface; across the interface for
a staggered, type-II one), n_i,eff^2 = n p exp(-(phi_p - phi_n)) and n_1, p_1 = n_i,eff
exp(+-E_t/kT).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.special import dawsn

from .recombination import excess_product


def mean_transmission(phi, b):
    """Thermally averaged WKB transmission <T>(phi, b) of a rectangular barrier (see module).

    phi: barrier height / kT (>= 0); b = 2 d sqrt(2 m_b kT) / hbar (>= 0).
    """
    pos = phi > 0  # double where: a finite derivative at phi = 0 (no barrier)
    root = jnp.where(pos, jnp.sqrt(jnp.where(pos, phi, 1.0)), 0.0)
    return jnp.exp(-b * root) * (1.0 + b * dawsn(root - 0.5 * b)) + jnp.exp(-phi) * b * dawsn(0.5 * b)


def wkb_transmission(energy, phi, b):
    """T(E) = exp(-b sqrt(phi - e)) below the top, 1 above (e = E/kT)."""
    return jnp.exp(-b * jnp.sqrt(jnp.maximum(phi - energy, 0.0)))


def electron_link_current(ln_n_a, ln_n_b, dphi, a_high, vt):
    """Electric current a -> b per area carried by electrons across a link (scaled).

    ``dphi`` = phi_n,a - phi_n,b; ``a_high``: side a has the higher conduction band edge;
    ``vt``: velocity times transmission. Same sign convention as the SG edge current.
    """
    from_a = jnp.exp(ln_n_a) * jnp.expm1(dphi)
    from_b = -jnp.exp(ln_n_b) * jnp.expm1(-dphi)
    return vt * jnp.where(a_high, from_a, from_b)


def hole_link_current(ln_p_a, ln_p_b, dphi, a_high, vt):
    """Electric current a -> b per area carried by holes; ``dphi`` = phi_p,a - phi_p,b;
    ``a_high``: side a has the lower valence band edge (the higher barrier for holes)."""
    from_a = -jnp.exp(ln_p_a) * jnp.expm1(-dphi)
    from_b = jnp.exp(ln_p_b) * jnp.expm1(dphi)
    return vt * jnp.where(a_high, from_a, from_b)


def surface_srh(ln_n, ln_p, split, s_n, s_p, et):
    """Surface SRH rate per area (scaled); ``split`` = phi_p - phi_n of the two carriers."""
    excess = excess_product(ln_n, ln_p, split)
    ln_ni = 0.5 * (ln_n + ln_p - split)
    on = (s_n > 0) & (s_p > 0)
    sn = jnp.where(on, s_n, 1.0)
    sp = jnp.where(on, s_p, 1.0)
    denom = (jnp.exp(ln_n) + jnp.exp(ln_ni + et)) / sp + (jnp.exp(ln_p) + jnp.exp(ln_ni - et)) / sn
    return jnp.where(on, excess / denom, 0.0)
