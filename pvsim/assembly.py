"""Residual and sparse Jacobian of the coupled Poisson–drift-diffusion system.

Discrete equations (scaled, box method; w_ij edge weights, V_s site volumes):

    Poisson, node i:     sum_j lambda2 eps_r w_ij (psi_i - psi_j) - sum_s V_s (p - n + C)_s = 0
    electrons, set c:    sum_j w_ij J_n,ij - sum_s V_s (R - G)_s = 0   (div J_n = q (R - G))
    holes, set c:        sum_j w_ij J_p,ij + sum_s V_s (R - G)_s = 0   (div J_p = -q (R - G))

J_ij are the Scharfetter–Gummel currents of :mod:`pvsim.physics.flux`, R the sum of the
recombination channels, G a given pair generation rate per site (optical generation, or
the source of a manufactured solution). The raw residual at a contact node is the current that enters the
device there (electron and hole parts), which gives the terminal currents; contact rows are
then replaced by their Dirichlet conditions, and a current-controlled contact adds the row
"terminal current - set current" for its voltage unknown (or "voltage - set voltage" while
``params.hold_voltage`` holds it: near zero current dI/dV of a diode is ~1e-14 of the other
Jacobian entries, so current control has to start from a biased state).

Jacobian (DESIGN.md, "Jacobian"): ``vmap(jacfwd(kernel))`` over edges and sites, scattered
into a CSR pattern whose slots are computed once per mesh with numpy. Everything here is a
pure function of (state, params); index arrays travel as pytree leaves, so one compilation
serves every bias point and parameter value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .discretize import Discretization
from .layout import Layout
from .params import Params, gather
from .physics import electron_flux, hole_flux, log_densities, recombination_rates
from .physics.interface import electron_link_current, hole_link_current, mean_transmission, surface_srh
from .physics.statistics import BOLTZMANN, densities_and_excess, neutral_potential, per_statistics
from .physics.thermal import (at_temperature, band_gap, carrier_energies, conductivity, log_mean,
                              mobility_factor, photon_energy, transport_potentials)

# ---------------------------------------------------------------- pointwise kernels
# Each kernel receives the local unknowns as a reference value plus an increment
# (u = ref + du, see Assembler.raw) and forms every *difference* of potentials as
# (ref_i - ref_j) + (du_i - du_j): the reference differences are exact for nearby values
# (Sterbenz), and the increments are small, so a quasi-Fermi drop of 1e-20 V between two
# nodes at 0.6 V is resolved, which a float64 potential (spacing 1e-16 V) cannot do.
# ``stats`` (the statistics of the region, or of each side of a link) is static.
#
# Heat (``hd`` given, DESIGN.md "Heat"): the local unknowns end with the temperatures
# theta = T / T_ref of the thermal sets involved, and each kernel adds its part of the
# heat rows  sum_j kappa w (theta_i - theta_j) - H_i = 0. H is the divergence of the
# carrier energy flux pi_n J_n + pi_p J_p (transport potentials pi, physics.thermal), split
# exactly into local parts with a reference transport potential pi_ref per carrier set (the
# value of one site of the set; at a contact-held set the metal's potential phi = V):
#   edge i -> j, end i:  I (pi_i - pi_j) / 2 - I (pi_i - pi_ref,i)   (end j alike)
#   site:                V_s (R - G) (pi_ref,p - pi_ref,n) - V_s escape R_rad hbar omega
#   link a -> b:         I (pi_ref,a - pi_ref,b) + R_s (pi_ref,p,h - pi_ref,n,e), half a side
#   Schottky contact:    I_out (pi_ref - V)
# Their sum over the device is sum_k V_k I_k minus the light leaving, exactly (the site
# terms cancel against the carrier balance); locally they contain Joule heat (I times the
# quasi-Fermi drop, >= 0 for w >= 0), recombination heat, Peltier heat at heterointerfaces
# and contacts, and Thomson heat. ``mode="heat"`` returns the heat parts per temperature
# unknown instead, rows (total, Joule, recombination, light) for the output fields.

def _diff(ref, du, i, j):
    return (ref[i] - ref[j]) + (du[i] - du[j])


def _ref_split(psi, phi_n, phi_p, theta, m_ref, held):
    """(pi_ref,n - psi, pi_ref,p - psi) of a carrier set."""
    ref_n, ref_p = transport_potentials(0.0, theta, m_ref)
    return jnp.where(held, phi_n - psi, ref_n), jnp.where(held, phi_p - psi, ref_p)


def _offsets(psi, phi_n, phi_p, theta, m, m_ref, held):
    """(pi_n - pi_ref,n, pi_p - pi_ref,p) of a site, psi-free (see the heat note above)."""
    own_n, own_p = transport_potentials(0.0, theta, m)
    ref_n, ref_p = _ref_split(psi, phi_n, phi_p, theta, m_ref, held)
    return own_n - ref_n, own_p - ref_p


def _heat_parts(total, joule=0.0, recombination=0.0, light=0.0):
    """"heat" mode output: (4, k) rows total, Joule, recombination, light per temperature."""
    z = jnp.zeros_like(total)
    return jnp.stack([total, z + joule, z + recombination, z + light])


def _site_densities_at(psi, fn, fp, theta, m, stats):
    """(ln n, ln p, rho_n, rho_p, material at theta) of a site at temperature theta."""
    mt = at_temperature(m, theta)
    return (*densities_and_excess(psi / theta, fn / theta, fp / theta, mt, stats), mt)


def semiconductor_edge(du, ref, m, w, length, lambda2, field_floor, hd=None, stats=BOLTZMANN,
                       mode="residual"):
    """Local residual of one semiconductor edge; unknowns (psi_i, psi_j, fn_i, fn_j, fp_i, fp_j
    [, T_i, T_j]).

    Generalised SG (excess chemical potential form): the band-potential rise seen by
    electrons is d_psi + (rho_n,j - rho_n,i), by holes d_psi - (rho_p,j - rho_p,i), with
    rho = ln F(eta) - eta (identically 0, hence the plain SG flux, for Boltzmann statistics).
    Poole–Frenkel mobility mu0 exp(pf sqrt(F)), F = |d_psi| / length (smoothed below
    ``field_floor``). With heat, the non-isothermal SG flux for a linear temperature along the
    edge (Kelvin-formula thermopower, so no explicit thermal force; Kantner, J. Comput. Phys.
    402, 109091 (2020)): J = mu Lambda [n_j B(D) - n_i B(-D)], D = d_band / Lambda, Lambda the
    logarithmic mean of theta_i and theta_j; the Bernoulli-stable form needs
    x = ln n_j - ln n_i - D (the quasi-Fermi drop / theta at uniform T), formed below from
    differences only.
    """
    u = ref + du
    psi_i, psi_j, fn_i, fn_j, fp_i, fp_j = u[:6]
    d = _diff(ref, du, 1, 0)  # band edges differ by psi only inside a region (at equal T)
    if hd is None:
        ln_n_i, ln_p_i, rn_i, rp_i = densities_and_excess(psi_i, fn_i, fp_i, m, stats)
        ln_n_j, ln_p_j, rn_j, rp_j = densities_and_excess(psi_j, fn_j, fp_j, m, stats)
        d_n, d_p = (d, d) if stats == BOLTZMANN else (d + (rn_j - rn_i), d - (rp_j - rp_i))
        x_n, x_p, scale, mu_t_n, mu_t_p = _diff(ref, du, 2, 3), _diff(ref, du, 4, 5), 1.0, 1.0, 1.0
    else:
        th_i, th_j = u[6], u[7]
        dth = _diff(ref, du, 7, 6)
        lam = log_mean(th_i, th_j)
        ln_n_i, ln_p_i, rn_i, rp_i, _ = _site_densities_at(psi_i, fn_i, fp_i, th_i, m, stats)
        ln_n_j, ln_p_j, rn_j, rp_j, _ = _site_densities_at(psi_j, fn_j, fp_j, th_j, m, stats)
        dv = d + m.dEg * dth  # rise of -E_v (the gap moves the valence band)
        c = 1.0 / th_j - 1.0 / lam  # exactly 0 at equal temperatures
        cross = dth / (th_i * th_j)
        ln_ratio = m.dos_exp * jnp.log1p(dth / th_i)
        # x_n = ln n_j - ln n_i - d/lam, eta_n = (psi - phi_n + chi)/theta
        x_n = _diff(ref, du, 2, 3) / th_j + d * c - (psi_i - fn_i + m.chi) * cross + ln_ratio
        # -(ln p_j - ln p_i + dv/lam), eta_p = (phi_p - psi - chi - Eg(theta))/theta
        x_p = _diff(ref, du, 4, 5) / th_j + dv * c + (fp_i - psi_i - m.chi - band_gap(m, th_i)) * cross \
            - ln_ratio
        d_n, d_p = d / lam + (rn_j - rn_i), dv / lam - (rp_j - rp_i)
        scale = lam
        mu_t_n = mobility_factor(m.mu_exp_n, m.mu_gdm_n, lam)
        mu_t_p = mobility_factor(m.mu_exp_p, m.mu_gdm_p, lam)
    root_field = (d * d + (field_floor * length) ** 2) ** 0.25 / jnp.sqrt(length)
    mu_n = m.mu_n * mu_t_n * jnp.exp(m.pf_n * root_field)
    mu_p = m.mu_p * mu_t_p * jnp.exp(m.pf_p * root_field)
    jn = w * electron_flux(ln_n_i, ln_n_j, d_n, x_n, scale * mu_n)
    jp = w * hole_flux(ln_p_i, ln_p_j, d_p, x_p, scale * mu_p)
    dd = -lambda2 * m.eps_r * w * d
    if hd is None:
        return jnp.stack([dd, -dd, jn, -jn, jp, -jp])
    e_n_i, e_p_i = carrier_energies(m, th_i)
    e_n_j, e_p_j = carrier_energies(m, th_j)
    half = 0.5 * (jn * (-d + (e_n_j - e_n_i)) + jp * (-dv - (e_p_j - e_p_i)))  # I (pi_i - pi_j) / 2
    o_ni, o_pi = _offsets(psi_i, fn_i, fp_i, th_i, m, hd["ref_i"], hd["held_i"])
    o_nj, o_pj = _offsets(psi_j, fn_j, fp_j, th_j, m, hd["ref_j"], hd["held_j"])
    h = jnp.stack([half - (jn * o_ni + jp * o_pi), half + (jn * o_nj + jp * o_pj)])
    if mode == "heat":
        joule = 0.5 * (jn * _diff(ref, du, 2, 3) + jp * _diff(ref, du, 4, 5))
        return _heat_parts(h, joule)
    flow = conductivity(m, 0.5 * (th_i + th_j)) * w * dth  # heat flow j -> i
    return jnp.stack([dd, -dd, jn, -jn, jp, -jp, -flow - h[0], flow - h[1]])


def insulator_edge(du, ref, m, w, lambda2, heat=False):
    """Unknowns (psi_i, psi_j [, T_i, T_j]): Poisson and heat conduction."""
    dd = lambda2 * m.eps_r * w * _diff(ref, du, 0, 1)
    if not heat:
        return jnp.stack([dd, -dd])
    u = ref + du
    flow = conductivity(m, 0.5 * (u[2] + u[3])) * w * _diff(ref, du, 2, 3)
    return jnp.stack([dd, -dd, flow, -flow])


def semiconductor_site(du, ref, m, doping, generation, volume, hd=None, stats=BOLTZMANN,
                       mode="residual"):
    """Local residual of one semiconductor site; unknowns (psi, phi_n, phi_p [, T])."""
    u = ref + du
    psi, fn, fp = u[:3]
    if hd is None:
        ln_n, ln_p = log_densities(psi, fn, fp, m, stats)
        rates = recombination_rates(ln_n, ln_p, _diff(ref, du, 2, 1), m)
    else:
        th = u[3]
        ln_n, ln_p, _, _, mt = _site_densities_at(psi, fn, fp, th, m, stats)
        rates = recombination_rates(ln_n, ln_p, _diff(ref, du, 2, 1) / th, mt)
    r = sum(rates) - generation
    rho = jnp.exp(ln_p) - jnp.exp(ln_n) + doping
    res = [-volume * rho, -volume * r, volume * r]
    if hd is None:
        return jnp.stack(res)
    ref_n, ref_p = _ref_split(psi, fn, fp, th, hd["ref"], hd["held"])
    light = volume * hd["escape"] * rates[1] * photon_energy(m, th)
    own_n, own_p = transport_potentials(0.0, th, m)
    h = volume * r * (ref_p - ref_n) - light
    if mode == "heat":
        return _heat_parts(h[None], 0.0, volume * r * (own_p - own_n) - light, light)
    return jnp.stack(res + [-h])


def _link_parts(du, ref, ma, mb, ip, area, semi_a, semi_b, org_eps, org_mu_n, org_mu_p, tunnel,
                stats):
    """(i_n, i_p, r, high_n, high_p, split) of one link: currents a -> b, surface SRH, and
    phi_p - phi_n of the two recombining carriers. With heat (7 unknowns) the two sides are
    at their own temperatures and the link's exponentials at their mean theta."""
    u = ref + du
    psi, fn_a, fp_a, fn_b, fp_b = u[:5]
    if du.shape[0] > 5:
        th_a, th_b = u[5], u[6]
        th = 0.5 * (th_a + th_b)
        ln_na, ln_pa = _site_densities_at(psi, fn_a, fp_a, th_a, ma, stats[0])[:2]
        ln_nb, ln_pb = _site_densities_at(psi, fn_b, fp_b, th_b, mb, stats[1])[:2]
    else:
        th = 1.0
        ln_na, ln_pa = log_densities(psi, fn_a, fp_a, ma, stats[0])
        ln_nb, ln_pb = log_densities(psi, fn_b, fp_b, mb, stats[1])
    high_n = jnp.where(semi_a & semi_b, ma.chi < mb.chi, semi_b)  # a: higher E_c (insulator: "higher")
    high_p = jnp.where(semi_a & semi_b, ma.chi + ma.Eg > mb.chi + mb.Eg, semi_b)  # a: lower E_v
    root_t = jnp.sqrt(th)  # b ~ sqrt(kT)
    trans_n = mean_transmission(ip.barrier_n / th, tunnel * ip.thickness * jnp.sqrt(ip.mass_n) * root_t)
    trans_p = mean_transmission(ip.barrier_p / th, tunnel * ip.thickness * jnp.sqrt(ip.mass_p) * root_t)
    vt_n = ip.flux * (ip.v_n + ip.sm_n * org_eps * org_mu_n) * trans_n
    vt_p = ip.flux * (ip.v_p + ip.sm_p * org_eps * org_mu_p) * trans_p
    i_n = area * electron_link_current(ln_na, ln_nb, _diff(ref, du, 1, 3) / th, high_n, vt_n)
    i_p = area * hole_link_current(ln_pa, ln_pb, _diff(ref, du, 2, 4) / th, high_p, vt_p)
    # surface recombination: electrons from the low-E_c side, holes from the high-E_v side
    ln_n = jnp.where(high_n, ln_nb, ln_na)
    ln_p = jnp.where(high_p, ln_pb, ln_pa)
    split = jnp.where(high_p, jnp.where(high_n, _diff(ref, du, 4, 3), _diff(ref, du, 4, 1)),
                      jnp.where(high_n, _diff(ref, du, 2, 3), _diff(ref, du, 2, 1)))
    r = area * surface_srh(ln_n, ln_p, split / th, ip.s_n, ip.s_p, ip.trap / th)
    return i_n, i_p, r, high_n, high_p, split


def interface_link(du, ref, ma, mb, ip, area, semi_a, semi_b, org_eps, org_mu_n, org_mu_p,
                   tunnel, hd=None, stats=(BOLTZMANN, BOLTZMANN), mode="residual"):
    """Local residual of one interface link; unknowns (psi, fn_a, fp_a, fn_b, fp_b [, T_a, T_b]).

    Thermionic/tunnelling currents between the two carrier sets, surface SRH (electrons of
    the side of lower conduction band, holes of the side of higher valence band) and the
    fixed sheet charge (see :mod:`pvsim.physics.interface`). At an insulator side both
    carrier sets are the semiconductor's.
    """
    i_n, i_p, r, high_n, high_p, split = _link_parts(du, ref, ma, mb, ip, area, semi_a, semi_b,
                                                     org_eps, org_mu_n, org_mu_p, tunnel, stats)
    zero = jnp.zeros(())
    res = [-area * ip.sheet,
           i_n - jnp.where(high_n, zero, r), i_p + jnp.where(high_p, zero, r),
           -i_n - jnp.where(high_n, r, zero), -i_p + jnp.where(high_p, r, zero)]
    if hd is None:
        return jnp.stack(res)
    u = ref + du
    psi, fn_a, fp_a, fn_b, fp_b, th_a, th_b = u
    ra_n, ra_p = _ref_split(psi, fn_a, fp_a, th_a, hd["ref_a"], hd["held_a"])
    rb_n, rb_p = _ref_split(psi, fn_b, fp_b, th_b, hd["ref_b"], hd["held_b"])
    q = i_n * (ra_n - rb_n) + i_p * (ra_p - rb_p) + r * (jnp.where(high_p, rb_p, ra_p)
                                                         - jnp.where(high_n, rb_n, ra_n))
    h = 0.5 * jnp.stack([q, q])
    if mode == "heat":
        joule = 0.5 * (i_n * _diff(ref, du, 1, 3) + i_p * _diff(ref, du, 2, 4) + r * split)
        return _heat_parts(h, joule)
    return jnp.stack(res + [-h[0], -h[1]])


def schottky_contact(du, ref, m, voltage, v_n, v_p, area, hd=None, stats=BOLTZMANN, mode="residual"):
    """Carrier exchange with the metal at one Schottky-contact node (unknowns psi, fn, fp [, T]).

    Electric current leaving the device: electrons v_n (n - n_eq) with n - n_eq =
    -n expm1(phi_n - V), holes v_p (p - p_eq) with p - p_eq = -p expm1(V - phi_p).
    """
    u = ref + du
    psi, fn, fp = u[:3]
    if hd is None:
        th = 1.0
        ln_n, ln_p = log_densities(psi, fn, fp, m, stats)
    else:
        th = u[3]
        ln_n, ln_p = _site_densities_at(psi, fn, fp, th, m, stats)[:2]
    i_n = area * v_n * jnp.exp(ln_n) * jnp.expm1((fn - voltage) / th)
    i_p = -area * v_p * jnp.exp(ln_p) * jnp.expm1((voltage - fp) / th)
    res = [jnp.zeros(()), i_n, i_p]
    if hd is None:
        return jnp.stack(res)
    ref_n, ref_p = _ref_split(psi, fn, fp, th, hd["ref"], False)
    h = i_n * (ref_n + psi - voltage) + i_p * (ref_p + psi - voltage)
    if mode == "heat":
        return _heat_parts(h[None], i_n * (fn - voltage) + i_p * (fp - voltage))
    return jnp.stack(res + [-h])


def robin_boundary(du, ref, h, t_amb, area):
    """Heat leaving through a Robin face at one node: area h (theta - theta_amb)."""
    return area * h * (ref + du - t_amb)


def heat_source(du, ref, source, volume):
    """A given heat source density in a site's control volume (heat row: -V_s q)."""
    return jnp.full_like(du, -volume * source)


def thermal_link(du, ref, conductance, area):
    """Heat through an interface thermal conductance (temperature jump), a -> b."""
    flow = area * conductance * _diff(ref, du, 0, 1)
    return jnp.stack([flow, -flow])


#: items per batch of a term's kernel evaluation. Larger groups run as a scan over batches, so
#: the kernels' temporaries stay bounded whatever the mesh size. Measured (XLA's buffer
#: assignment, ``scripts/bench_scale.py --memory``): the residual and Jacobian of the 1e4 cell
#: needed 0.63 GB of temporaries, 0.54 GB of them in one group of 47k organic-layer edges (the
#: Gauss-Fermi quadrature under forward-mode differentiation, ~11 KB per edge), and the Newton
#: solve grew linearly to 6.6 GB at 1e5: ~60 GB at 1e6, more than one GPU holds.
ITEM_CHUNK = 1 << 16


def _batch(in_axes, args, start, chunk):
    """Items start .. start + chunk of the mapped arguments (axis from ``in_axes``; None: whole)."""
    def cut(ax, a):
        if ax is None:
            return a
        return jax.tree.map(lambda x: jax.lax.dynamic_slice_in_dim(x, start, chunk, axis=ax), a)

    return jax.tree.map(cut, tuple(in_axes), tuple(args), is_leaf=lambda x: x is None)


def _map_items(fn, in_axes, n, chunk=None):
    """``jax.vmap(fn, in_axes)`` over ``n`` items, in batches of ``chunk`` (default
    :data:`ITEM_CHUNK`) items when there are more. The last batch ends at item n and overlaps
    the one before it (static shapes, no padding); its repeated items are dropped."""
    chunk = ITEM_CHUNK if chunk is None else chunk
    batched = jax.vmap(fn, in_axes=in_axes)
    if n <= chunk:
        return batched
    n_chunks = -(-n // chunk)
    covered = (n_chunks - 1) * chunk - (n - chunk)  # leading items of the last batch already done

    def run(*args):
        def body(_, k):
            return None, batched(*_batch(in_axes, args, jnp.minimum(k * chunk, n - chunk), chunk))

        _, out = jax.lax.scan(body, None, jnp.arange(n_chunks))
        return jax.tree.map(lambda o: jnp.concatenate([o[:-1].reshape((-1,) + o.shape[2:]), o[-1, covered:]]), out)

    return run


def _add_items(fn, in_axes, n, chunk=None):
    """``run(accs, targets, *args)``: each output k of ``jax.vmap(fn, in_axes)`` over ``n``
    items added into ``accs[k]`` at ``targets[k]`` (n, ...), batch by batch as
    :func:`_map_items` (in the overlapping last batch the repeated items add zero). Only one
    batch's outputs exist at a time: on the 1e5 cell the local Jacobians of all items before
    their scatter were ~0.5 GB."""
    chunk = ITEM_CHUNK if chunk is None else chunk
    batched = jax.vmap(fn, in_axes=in_axes)

    def add(accs, targets, outs, weight=None):
        return tuple(a.at[t].add((o if weight is None else o * weight.reshape((-1,) + (1,) * (o.ndim - 1)))
                                 .reshape(t.shape)) for a, t, o in zip(accs, targets, outs))

    def run(accs, targets, *args):
        if n <= chunk:
            return add(accs, targets, batched(*args))

        def body(accs, k):
            start = jnp.minimum(k * chunk, n - chunk)
            outs = batched(*_batch(in_axes, args, start, chunk))
            fresh = (start + jnp.arange(chunk) >= k * chunk).astype(outs[0].dtype)  # not done by the batch before
            return add(accs, _batch((0,) * len(targets), targets, start, chunk), outs, fresh), None

        return jax.lax.scan(body, tuple(accs), jnp.arange(-(-n // chunk)))[0]

    return run


KERNELS = {"semi_edge": semiconductor_edge, "ins_edge": insulator_edge,
           "semi_site": semiconductor_site, "link": interface_link, "schottky": schottky_contact,
           "robin": robin_boundary, "thermal_link": thermal_link, "heat_source": heat_source}
_STATS_KINDS = ("semi_edge", "semi_site", "link", "schottky")
_HEAT_KINDS = _STATS_KINDS  # kernels with heat sources


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class Term:
    """A group of local kernels of one kind (and one statistics): unknowns, CSR slots, data."""

    dofs: jax.Array  # (n, k) unknowns of each item
    slots: jax.Array  # (n, k*k) CSR slots of the local Jacobians
    data: dict  # per-item arrays (regions, weights, volumes, ...)
    kind: str = field(metadata=dict(static=True))
    stats: object = field(default=BOLTZMANN, metadata=dict(static=True))
    heat: bool = field(default=False, metadata=dict(static=True))

    def _heat_data(self, params: Params):
        """(per-item reference materials and contact-held flags of the carrier sets, in_axes)."""
        d, mat = self.data, params.material
        if self.kind == "semi_site":
            hd = dict(ref=gather(mat, d["ref"]), held=d["held"], escape=params.thermal.escape)
            return hd, dict(ref=0, held=0, escape=None)
        if self.kind == "schottky":
            return dict(ref=gather(mat, d["ref"])), 0
        ends = ("_i", "_j") if self.kind == "semi_edge" else ("_a", "_b")
        hd = {}
        for e in ends:
            hd["ref" + e] = gather(mat, d["ref" + e])
            hd["held" + e] = d["held" + e]
        return hd, 0

    def area(self, geo, asm: "Assembler"):
        """Lumped area of each item: the mesh's, or recomputed from ``geo.points`` (morphed
        node coordinates, for shape gradients)."""
        d = self.data
        if geo is None or geo.points is None:
            return d["area"]
        from .discretize import recipe_areas

        return recipe_areas(geo.points, d["area_facets"], d["area_slot"], d["area"].shape[0],
                            asm.axisymmetric)

    def arguments(self, params: Params, asm: "Assembler"):
        """(args, in_axes) of the kernel for this group, after the state."""
        d, mat, geo = self.data, params.material, params.geometry
        hd, hd_axes = self._heat_data(params) if self.heat and self.kind in _HEAT_KINDS else (None, None)
        if self.kind in ("semi_edge", "ins_edge"):
            weight = d["weight"] if geo is None else geo.edge_weight[d["edge"]]
        if self.kind == "semi_edge":
            length = d["length"] if geo is None else geo.edge_length[d["edge"]]
            return ((gather(mat, d["region"]), weight, length, asm.lambda2,
                     asm.field_floor, hd), (0, 0, 0, 0, 0, None, None, hd_axes))
        if self.kind == "ins_edge":
            return (gather(mat, d["region"]), weight, asm.lambda2), (0, 0, 0, 0, None)
        if self.kind == "semi_site":
            volume = d["volume"] if geo is None else geo.site_volume[d["site"]]
            return ((gather(mat, d["region"]), params.doping[d["site"]],
                     params.generation[d["site"]], volume, hd), (0, 0, 0, 0, 0, 0, hd_axes))
        if self.kind == "link":
            org = d["org_region"]
            return ((gather(mat, d["region_a"]), gather(mat, d["region_b"]),
                     gather(params.interface, d["interface"]), self.area(geo, asm), d["semi_a"], d["semi_b"],
                     mat.eps_r[org], mat.mu_n[org], mat.mu_p[org], asm.tunnel, hd),
                    (0,) * 11 + (None, hd_axes))
        if self.kind == "schottky":
            c = d["contact"]
            return ((gather(mat, d["region"]), params.voltage[c], params.contact_v_n[c],
                     params.contact_v_p[c], self.area(geo, asm), hd), (0,) * 7 + (hd_axes,))
        th = params.thermal
        if self.kind == "robin":
            b = d["boundary"]
            return (th.robin_h[b], th.robin_T[b], self.area(geo, asm)), (0,) * 5
        if self.kind == "thermal_link":
            return (th.conductance[d["interface"]], self.area(geo, asm)), (0,) * 4
        if self.kind == "heat_source":
            volume = d["volume"] if geo is None else geo.site_volume[d["site"]]
            return (th.source[d["region"]], volume), (0,) * 4
        raise ValueError(self.kind)

    def kernel(self, mode: str = "residual"):
        """The local kernel with its static options."""
        if self.kind in _STATS_KINDS:
            return partial(KERNELS[self.kind], stats=self.stats, mode=mode)
        if self.kind == "ins_edge":
            return partial(insulator_edge, heat=self.heat)
        return KERNELS[self.kind]

    def add_into(self, u, ref, params, asm, f, vals=None):
        """f with the local residuals added at their unknowns, and ``vals`` (unless None) with
        the local Jacobians at their entries."""
        args, axes = self.arguments(params, asm)
        kernel = self.kernel()
        n = self.dofs.shape[0]
        if vals is None:
            return _add_items(lambda *a: (kernel(*a),), axes, n)((f,), (self.dofs,), u[self.dofs], ref[self.dofs],
                                                                  *args)[0], None

        def both(u, *args):  # (local Jacobian, local residual)
            r = kernel(u, *args)
            return r, r

        vals, f = _add_items(jax.jacfwd(both, has_aux=True), axes, n)(
            (vals, f), (self.slots, self.dofs), u[self.dofs], ref[self.dofs], *args)
        return f, vals

    def heat_parts(self, u, ref, params, asm):
        """(n, 4, kT) heat parts (total, Joule, recombination, light) per temperature unknown."""
        args, axes = self.arguments(params, asm)
        return _map_items(self.kernel("heat"), axes, self.dofs.shape[0])(u[self.dofs], ref[self.dofs], *args)


# ---------------------------------------------------------------- the assembler
@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class Assembler:
    """Index arrays (pytree leaves) and sizes (static) for one mesh and layout."""

    # data (arrays)
    terms: tuple  # of Term: semiconductor/insulator edges, sites, links, Schottky contacts
    rows: jax.Array  # (nnz,) CSR row of each slot
    cols: jax.Array
    dirichlet_entry: jax.Array  # (nnz,) bool: slot lies in a Dirichlet row
    dirichlet_diag: jax.Array  # slots of the Dirichlet diagonals
    psi_bc_dof: jax.Array  # (Bp,) psi unknowns fixed by contacts
    psi_bc_contact: jax.Array
    psi_bc_site: jax.Array
    psi_bc_ohmic: jax.Array  # bool
    psi_bc_stats: jax.Array  # index into ``stat_kinds`` of each psi_bc site
    car_bc_dofs: jax.Array  # (Bc,) phi unknowns fixed by contacts
    car_bc_contact: jax.Array
    cc_src: jax.Array  # raw slots summed into current-control rows
    cc_dst: jax.Array
    cc_dst_contact: jax.Array  # contact of each cc_dst slot
    vdof_diag: jax.Array  # (K,) diagonal slot of each contact's voltage unknown (0 if none)
    vcol_slots: jax.Array  # slots (Dirichlet row, voltage column)
    contact_in: jax.Array  # (K, Nmax) carrier sets at each contact (padded with -1)
    phin_dof: jax.Array
    phip_dof: jax.Array
    voltage_dof: jax.Array  # (K,)
    site_volume: jax.Array
    psi_dof: jax.Array
    site_node: jax.Array
    site_region: jax.Array
    # heat (empty arrays when off)
    T_dof: jax.Array  # (H,) temperature unknown of each thermal set
    site_thermal: jax.Array  # (S,) thermal set of each site (0 when off)
    T_bc_dof: jax.Array  # (Bt,) temperatures fixed by a boundary
    T_bc_index: jax.Array  # (Bt,) index into params.thermal.fixed_T
    psi_bc_T: jax.Array  # (Bp,) temperature unknown at each psi_bc node
    psi_bc_T_slots: jax.Array  # (Bp,) slots (psi_bc row, its temperature column)
    # static
    n_dof: int = field(metadata=dict(static=True))
    nnz: int = field(metadata=dict(static=True))
    lambda2: float = field(metadata=dict(static=True))
    controls: tuple = field(metadata=dict(static=True))  # per contact "voltage"/"current"
    stat_kinds: tuple = field(metadata=dict(static=True))  # statistics used by contact sites
    tunnel: float = field(default=0.0, metadata=dict(static=True))  # Scales.tunnel_constant
    field_floor: float = field(default=1e-4, metadata=dict(static=True))  # scaled, PF smoothing
    heat: bool = field(default=False, metadata=dict(static=True))
    axisymmetric: bool = field(default=False, metadata=dict(static=True))  # facet areas of revolution

    # ------------------------------------------------------------ evaluation
    def voltages(self, u, params: Params, ref=None):
        """Contact voltages (scaled): set values, or unknowns for current-controlled ones."""
        v = params.voltage
        for k, ctl in enumerate(self.controls):
            if ctl == "current":
                vd = self.voltage_dof[k]
                v = v.at[k].set(u[vd] + (0.0 if ref is None else ref[vd]))
        return v

    def raw(self, u, params: Params, jacobian: bool = True, ref=None, contact_flux: bool = True):
        """Raw residual (n_dof,) and raw Jacobian values (nnz,) before boundary conditions.

        The state is ``ref + u`` (``ref`` defaults to 0); differences of potentials are
        formed from the two parts separately (see the kernels). With ``jacobian=False``
        only the residual is evaluated (values returned as None). ``contact_flux=False``
        leaves out the carrier exchange at Schottky contacts: the contact rows then hold the
        current entering the device there (see :meth:`terminal_currents`).
        """
        ref = jnp.zeros_like(u) if ref is None else ref
        f = jnp.zeros(self.n_dof)
        vals = jnp.zeros(self.nnz + 1) if jacobian else None
        for term in self.terms:
            if term.dofs.shape[0] == 0 or (term.kind == "schottky" and not contact_flux):
                continue
            f, vals = term.add_into(u, ref, params, self, f, vals)
        return f, (vals[:-1] if jacobian else None)

    def interface_recombination(self, u, params: Params, ref=None):
        """Total surface SRH over all interface links (scaled, like a volume-integrated R)."""
        ref = jnp.zeros_like(u) if ref is None else ref
        total = jnp.zeros(())
        for term in self.terms:
            if term.kind != "link" or term.dofs.shape[0] == 0:
                continue
            args, axes = term.arguments(params, self)
            parts = _map_items(partial(_link_parts, stats=term.stats), axes[:-1], term.dofs.shape[0])(
                u[term.dofs], ref[term.dofs], *args[:-1])
            total = total + jnp.sum(parts[2])
        return total

    def heat_sources(self, u, params: Params, ref=None):
        """(H, 4) heat per thermal set, integrated over its control volume (scaled power):
        columns total, Joule, recombination (R (pi_p - pi_n) of the site's own region, less
        the light), light leaving; total - Joule - recombination + ... is the Peltier and
        Thomson heat (see the kernel notes)."""
        ref = jnp.zeros_like(u) if ref is None else ref
        out = jnp.zeros((self.T_dof.shape[0], 4))
        for term in self.terms:
            if not term.heat or term.kind not in _HEAT_KINDS or term.dofs.shape[0] == 0:
                continue
            parts = term.heat_parts(u, ref, params, self)  # (n, 4, kT)
            sets = term.data["tset"]  # (n, kT)
            out = out.at[sets.ravel()].add(jnp.moveaxis(parts, 1, 2).reshape(-1, 4))
        return out

    def temperatures(self, u, ref=None):
        """theta at each thermal set (1.0 when heat is off: no sets)."""
        full = u if ref is None else ref + u
        return full[self.T_dof]

    def contact_psi(self, v, params: Params, theta=None):
        """Dirichlet value of psi at each psi_bc entry; ``theta``: temperature there (heat)."""
        m = gather(params.material, self.site_region[self.psi_bc_site])
        doping = params.doping[self.psi_bc_site]
        if theta is not None:
            m = at_temperature(m, theta)
        neutral = per_statistics(lambda mm, kind: neutral_potential(doping, 0.0, mm, kind),
                                 self.stat_kinds, self.psi_bc_stats, m)
        if theta is not None:
            neutral = theta * neutral
        wf = -params.work_function[self.psi_bc_contact]
        return v[self.psi_bc_contact] + jnp.where(self.psi_bc_ohmic, neutral, wf)

    def terminal_currents(self, u, params: Params, ref=None):
        """(electron, hole) current entering the device at each contact (scaled), (K,) each."""
        return self._contact_sums(self.raw(u, params, False, ref, contact_flux=False)[0])

    def _contact_sums(self, f_raw):
        if self.phin_dof.shape[0] == 0:  # no semiconductor: no carriers, no current
            zero = jnp.zeros(self.contact_in.shape[0])
            return zero, zero
        mask = self.contact_in >= 0
        idx = jnp.where(mask, self.contact_in, 0)
        i_n = jnp.sum(jnp.where(mask, f_raw[self.phin_dof[idx]], 0.0), axis=1)
        i_p = jnp.sum(jnp.where(mask, f_raw[self.phip_dof[idx]], 0.0), axis=1)
        return i_n, i_p

    def near_null_log(self, u):
        """log of a near-null vector of the Jacobian at the state ``u`` (for :mod:`pvsim.amg`).

        At fixed psi the SG electron flux is linear in the Slotboom variable exp(-phi_n) with
        zero row sums (a constant Slotboom shift carries no current), so J_{phi_n phi_n} v = 0
        up to recombination for v = exp(+phi_n); for holes v = exp(-phi_p). Far from
        equilibrium phi_n varies by many V_T and a constant is not near-null there, which
        stalled the AMG coarse correction (docs/physics.md, "Krylov back ends"). Other
        unknowns: log v = 0 (a constant shift of psi or T). Exact for Boltzmann statistics at
        the reference temperature; approximate otherwise (it only shapes a preconditioner).
        """
        s = jnp.zeros(self.n_dof).at[self.phin_dof].set(1.0).at[self.phip_dof].set(-1.0)
        return s * u

    def residual_and_jacobian(self, u, params: Params, jacobian: bool = True, ref=None):
        """Residual with boundary conditions (n_dof,) and Jacobian values (nnz,) at ref + u."""
        f_raw, raw_vals = self.raw(u, params, jacobian, ref)
        v = self.voltages(u, params, ref)
        full = u if ref is None else ref + u
        if self.heat:  # the neutral contact potential depends on the temperature there
            theta = full[self.psi_bc_T]
            psi_bc, dpsi_dt = jax.jvp(lambda t: self.contact_psi(v, params, t), (theta,),
                                      (jnp.ones_like(theta),))
            f = f_raw.at[self.T_bc_dof].set(full[self.T_bc_dof] - params.thermal.fixed_T[self.T_bc_index])
        else:
            psi_bc, f = self.contact_psi(v, params), f_raw
        f = f.at[self.psi_bc_dof].set(full[self.psi_bc_dof] - psi_bc)
        f = f.at[self.car_bc_dofs].set(full[self.car_bc_dofs] - v[self.car_bc_contact])
        current_control = any(c == "current" for c in self.controls)
        if current_control:
            i_n, i_p = self._contact_sums(f_raw)
            for k, ctl in enumerate(self.controls):
                if ctl == "current":
                    f = f.at[self.voltage_dof[k]].set(jnp.where(
                        params.hold_voltage[k] > 0.5, full[self.voltage_dof[k]] - params.voltage[k],
                        i_n[k] + i_p[k] - params.current[k]))
        if not jacobian:
            return f, None
        vals = jnp.where(self.dirichlet_entry, 0.0, raw_vals)
        vals = vals.at[self.dirichlet_diag].set(1.0)
        if self.heat:
            vals = vals.at[self.psi_bc_T_slots].add(-dpsi_dt)
        if current_control:
            hold = params.hold_voltage[self.cc_dst_contact] > 0.5
            vals = vals.at[self.cc_dst].add(jnp.where(hold, 0.0, raw_vals[self.cc_src]))
            vals = vals.at[self.vcol_slots].set(-1.0)
            for k, ctl in enumerate(self.controls):
                if ctl == "current":
                    vals = vals.at[self.vdof_diag[k]].add(jnp.where(params.hold_voltage[k] > 0.5, 1.0, 0.0))
        return f, vals

    def residual(self, u, params: Params, ref=None):
        return self.residual_and_jacobian(u, params, jacobian=False, ref=ref)[0]


def build_assembler(disc: Discretization, layout: Layout, lambda2: float, statistics=None,
                    interface_org=None, tunnel: float = 0.0, field_floor: float = 1e-4,
                    thermal_bc=(), thermal_links=()) -> Assembler:
    """Pattern, scatter slots and boundary maps (numpy, once per mesh).

    Heat (``layout.heat``): ``thermal_bc`` lists (kind "fixed" or "robin", boundary name,
    index into params.thermal.fixed_T or robin_h/robin_T); ``thermal_links`` lists
    (interface index, region a, region b) of interfaces with a temperature jump.

    ``statistics``: per-region statistics name (default Boltzmann everywhere);
    ``interface_org``: per interface, the region whose eps_r and mobility set a
    Scott–Malliaras velocity (any region when unused); ``tunnel``: Scales.tunnel_constant;
    ``field_floor``: scaled field below which the Poole–Frenkel |F| is smoothed.
    """
    from .discretize import node_areas, shared_facets

    reg = disc.site_region
    n_reg = len(disc.region_names)
    stats = np.array(statistics if statistics is not None else [BOLTZMANN] * n_reg, dtype=object)
    semi_edge = layout.semiconductor[disc.edge_region]
    s_i, s_j = disc.edge_sites[:, 0], disc.edge_sites[:, 1]
    psi = layout.psi_dof[disc.site_node]
    car = layout.site_carrier
    pn, pp = layout.phin_dof, layout.phip_dof
    pts = disc.mesh.points / disc.L_ref
    groups = []  # (kind, stats, dofs, data)

    for kind in sorted(set(stats[layout.semiconductor])):
        e = np.nonzero(semi_edge & (stats[disc.edge_region] == kind))[0]
        a, b = s_i[e], s_j[e]
        length = disc.edge_lengths(pts, xp=np)[e]
        groups.append(("semi_edge", kind, np.stack(
            [psi[a], psi[b], pn[car[a]], pn[car[b]], pp[car[a]], pp[car[b]]], axis=1),
            dict(region=disc.edge_region[e], weight=disc.edge_weight[e], length=length, edge=e,
                 sites=np.stack([a, b], axis=1))))
        ss = np.nonzero((car >= 0) & (stats[reg] == kind))[0]
        groups.append(("semi_site", kind, np.stack([psi[ss], pn[car[ss]], pp[car[ss]]], axis=1),
                       dict(region=reg[ss], site=ss, volume=disc.site_volume[ss], sites=ss[:, None])))
    ie = np.nonzero(~semi_edge)[0]
    groups.append(("ins_edge", BOLTZMANN, np.stack([psi[s_i[ie]], psi[s_j[ie]]], axis=1),
                   dict(region=disc.edge_region[ie], weight=disc.edge_weight[ie], edge=ie,
                        sites=np.stack([s_i[ie], s_j[ie]], axis=1))))

    lk = layout.links

    def link_facets(k):
        i = np.nonzero(lk.interface == k)[0][0]
        names = disc.region_names
        return shared_facets(disc.mesh, names[reg[lk.site_a[i]]], names[reg[lk.site_b[i]]])

    if len(lk.area):
        org = np.asarray(interface_org if interface_org is not None else
                         np.zeros(lk.interface.max() + 1, int))
        ra, rb = reg[lk.site_a], reg[lk.site_b]
        pair = np.array([f"{x}|{y}" for x, y in zip(stats[ra], stats[rb])])
        for key in sorted(set(pair)):
            sel = pair == key
            ca, cb = lk.carrier_a[sel], lk.carrier_b[sel]
            groups.append(("link", tuple(key.split("|")), np.stack(
                [psi[lk.site_a[sel]], pn[ca], pp[ca], pn[cb], pp[cb]], axis=1),
                dict(interface=lk.interface[sel], region_a=ra[sel], region_b=rb[sel],
                     area=lk.area[sel],
                     **_recipe({k: link_facets(k) for k in np.unique(lk.interface[sel])},
                               lk.interface[sel], disc.site_node[lk.site_a[sel]]),
                     semi_a=layout.semiconductor[ra[sel]],
                     semi_b=layout.semiconductor[rb[sel]], org_region=org[lk.interface[sel]],
                     sites=np.stack([lk.site_a[sel], lk.site_b[sel]], axis=1),
                     sets=np.stack([ca, cb], axis=1))))

    # boundary conditions
    carrier_site = np.zeros(layout.n_carriers, dtype=np.int64)
    carrier_site[car[car >= 0]] = np.nonzero(car >= 0)[0]
    psi_bc_dof, psi_bc_contact, psi_bc_site, psi_bc_ohmic = [], [], [], []
    car_bc, car_bc_contact, sch = [], [], []
    for k, (c, nodes, sites, cars) in enumerate(zip(layout.contacts, layout.contact_nodes,
                                                    layout.contact_site, layout.contact_carriers)):
        psi_bc_dof.append(layout.psi_dof[nodes])
        psi_bc_contact.append(np.full(len(nodes), k))
        psi_bc_site.append(sites)
        ohmic = c.kind == "ohmic"
        if ohmic and np.any(~layout.semiconductor[reg[sites]]):
            raise ValueError(f"contact '{c.name}' is ohmic but touches no semiconductor at some "
                             "nodes; use a work_function contact on insulators")
        psi_bc_ohmic.append(np.full(len(nodes), ohmic))
        if c.kind == "schottky":
            if c.control == "current":
                raise ValueError(f"contact '{c.name}': current control of a Schottky contact is "
                                 "not supported; control the current at the other contact")
            an, area = node_areas(disc.mesh, disc.mesh.boundaries[c.name], disc.L_ref)
            node_area = dict(zip(an.tolist(), area.tolist()))
            sch.append((k, cars, np.array([node_area[int(n)] for n in layout.carrier_node[cars]])))
            continue
        car_bc += [pn[cars], pp[cars]]
        car_bc_contact += [np.full(len(cars), k)] * 2
    cat = lambda xs, dt=np.int64: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)  # noqa: E731
    psi_bc_dof, psi_bc_contact, psi_bc_site = cat(psi_bc_dof), cat(psi_bc_contact), cat(psi_bc_site)
    psi_bc_ohmic = cat(psi_bc_ohmic, bool)
    car_bc, car_bc_contact = cat(car_bc), cat(car_bc_contact)
    stat_kinds = tuple(sorted(set(stats[reg[psi_bc_site]]))) or (BOLTZMANN,)
    psi_bc_stats = np.array([stat_kinds.index(x) for x in stats[reg[psi_bc_site]]], dtype=np.int64)
    if sch:
        k_s = np.concatenate([np.full(len(c), k) for k, c, _ in sch])
        c_s = np.concatenate([c for _, c, _ in sch])
        a_s = np.concatenate([a for _, _, a in sch])
        r_s = reg[carrier_site[c_s]]
        for kind in sorted(set(stats[r_s])):
            sel = stats[r_s] == kind
            cs = c_s[sel]
            groups.append(("schottky", kind, np.stack([layout.psi_dof[layout.carrier_node[cs]],
                                                       pn[cs], pp[cs]], axis=1),
                           dict(contact=k_s[sel], region=r_s[sel], area=a_s[sel],
                                **_recipe({k: disc.mesh.boundaries[layout.contacts[k].name]
                                           for k in np.unique(k_s[sel])}, k_s[sel],
                                          layout.carrier_node[cs]),
                                sites=carrier_site[cs][:, None])))
    T_bc_dof, T_bc_index = np.zeros(0, np.int64), np.zeros(0, np.int64)
    psi_bc_T = np.zeros(len(psi_bc_dof), np.int64)
    if layout.heat:
        held = np.zeros(layout.n_carriers, bool)  # carrier sets fixed by a contact (phi = V)
        for c, cars in zip(layout.contacts, layout.contact_carriers):
            held[cars] = held[cars] | (c.kind != "schottky")
        groups = [_with_temperatures(g, layout, reg[carrier_site], held) for g in groups]
        groups += _thermal_boundary_groups(disc, layout, thermal_bc, thermal_links)
        fixed = [(layout.T_dof[np.unique(layout.site_thermal[np.isin(disc.site_node,
                                                                     disc.mesh.boundary_nodes(name))])], i)
                 for kind, name, i in thermal_bc if kind == "fixed"]
        T_bc_dof = cat([f for f, _ in fixed])
        T_bc_index = cat([np.full(len(f), i) for f, i in fixed])
        psi_bc_T = layout.T_dof[layout.site_thermal[psi_bc_site]]
    for g in groups:
        g[3].pop("sites", None)
        g[3].pop("sets", None)
    dirichlet = np.concatenate([psi_bc_dof, car_bc, T_bc_dof])
    is_dir = np.zeros(layout.n_dof, dtype=bool)
    is_dir[dirichlet] = True

    # sparsity pattern
    def pairs(dofs):
        k = dofs.shape[1]
        return (np.repeat(dofs, k, axis=1).ravel(), np.tile(dofs, (1, k)).ravel())

    term_coo = [pairs(g[2]) for g in groups]
    coo = term_coo + [(np.arange(layout.n_dof), np.arange(layout.n_dof))]
    if layout.heat:
        coo.append((psi_bc_dof, psi_bc_T))
    # current-controlled contacts: row = sum of contact carrier rows; column in contact rows
    n_cont = len(layout.contacts)
    maxc = max([len(c) for c in layout.contact_carriers] + [1])
    contact_in = -np.ones((n_cont, maxc), dtype=np.int64)
    for k, cars in enumerate(layout.contact_carriers):
        contact_in[k, : len(cars)] = cars
    raw_coo = np.concatenate([c[0] for c in term_coo]), np.concatenate([c[1] for c in term_coo])
    cc_rows_src, cc_cols, cc_row_dst, cc_contact, vcol_rows, vcol_cols = [], [], [], [], [], []
    for k, c in enumerate(layout.contacts):
        if c.control != "current":
            continue
        vd = layout.voltage_dof[k]
        cars = layout.contact_carriers[k]
        sel = np.isin(raw_coo[0], np.concatenate([pn[cars], pp[cars]]))
        cc_rows_src.append(sel)
        cc_cols.append(raw_coo[1][sel])
        cc_row_dst.append(np.full(sel.sum(), vd))
        cc_contact.append(np.full(sel.sum(), k))
        rows_k = np.concatenate([layout.psi_dof[layout.contact_nodes[k]], pn[cars], pp[cars]])
        vcol_rows.append(rows_k)
        vcol_cols.append(np.full(len(rows_k), vd))
    if cc_cols:
        coo += [(np.concatenate(cc_row_dst), np.concatenate(cc_cols)),
                (np.concatenate(vcol_rows), np.concatenate(vcol_cols))]
    all_r = np.concatenate([c[0] for c in coo])
    all_c = np.concatenate([c[1] for c in coo])
    n = layout.n_dof
    keys = np.unique(all_r * n + all_c)
    rows, cols = keys // n, keys % n
    nnz = len(keys)

    def slots(r, c):
        return np.searchsorted(keys, r * n + c)

    j = jnp.asarray
    terms, raw_slots = [], []
    for kind, st, dofs, data in groups:
        k = dofs.shape[1]
        sl = slots(*pairs(dofs)).reshape(len(dofs), k * k)
        raw_slots.append(sl.ravel())
        terms.append(Term(dofs=j(dofs.astype(np.int64)), slots=j(sl), kind=kind, stats=st,
                          data={key: j(v) for key, v in data.items()}, heat=layout.heat))
    raw_slots = np.concatenate(raw_slots)
    if cc_cols:
        cc_src = np.concatenate([raw_slots[sel] for sel in cc_rows_src])
        cc_dst = slots(np.concatenate(cc_row_dst), np.concatenate(cc_cols))
        # several local entries share a slot (its value is already their sum): add it once
        cc_src, cc_dst, cc_k = np.unique(np.stack([cc_src, cc_dst, np.concatenate(cc_contact)]), axis=1)
        vcol_slots = slots(np.concatenate(vcol_rows), np.concatenate(vcol_cols))
    else:
        cc_src = cc_dst = cc_k = vcol_slots = np.zeros(0, np.int64)
    vd = layout.voltage_dof
    vdof_diag = np.where(vd >= 0, slots(np.maximum(vd, 0), np.maximum(vd, 0)), 0)

    return Assembler(
        terms=tuple(terms), rows=j(rows), cols=j(cols),
        dirichlet_entry=j(is_dir[rows]), dirichlet_diag=j(slots(dirichlet, dirichlet)),
        psi_bc_dof=j(psi_bc_dof), psi_bc_contact=j(psi_bc_contact), psi_bc_site=j(psi_bc_site),
        psi_bc_ohmic=j(psi_bc_ohmic), psi_bc_stats=j(psi_bc_stats), car_bc_dofs=j(car_bc),
        car_bc_contact=j(car_bc_contact),
        cc_src=j(cc_src), cc_dst=j(cc_dst), cc_dst_contact=j(cc_k), vdof_diag=j(vdof_diag),
        vcol_slots=j(vcol_slots),
        contact_in=j(contact_in), phin_dof=j(pn), phip_dof=j(pp),
        voltage_dof=j(layout.voltage_dof), site_volume=j(disc.site_volume),
        psi_dof=j(layout.psi_dof), site_node=j(disc.site_node), site_region=j(reg),
        n_dof=n, nnz=nnz, lambda2=float(lambda2),
        controls=tuple(c.control for c in layout.contacts), stat_kinds=stat_kinds,
        tunnel=float(tunnel), field_floor=float(field_floor),
        T_dof=j(layout.T_dof), site_thermal=j(np.maximum(layout.site_thermal, 0)),
        T_bc_dof=j(T_bc_dof), T_bc_index=j(T_bc_index), psi_bc_T=j(psi_bc_T),
        psi_bc_T_slots=j(slots(psi_bc_dof, psi_bc_T) if layout.heat else np.zeros(0, np.int64)),
        heat=layout.heat, axisymmetric=bool(disc.mesh.axisymmetric),
    )


def _thermal_boundary_groups(disc: Discretization, layout: Layout, thermal_bc, thermal_links):
    """Kernel groups of Robin faces (per node) and of interface thermal conductances."""
    from .discretize import node_areas, shared_facets

    first_set = np.full(disc.mesh.n_nodes, -1)
    first_set[disc.site_node[::-1]] = layout.site_thermal[::-1]
    all_sites = np.arange(disc.n_sites)
    groups = [("heat_source", BOLTZMANN, layout.T_dof[layout.site_thermal][:, None],
               dict(region=disc.site_region, site=all_sites, volume=disc.site_volume))]
    for kind, name, i in thermal_bc:
        if kind != "robin":
            continue
        nodes, area = node_areas(disc.mesh, disc.mesh.boundaries[name], disc.L_ref)
        groups.append(("robin", BOLTZMANN, layout.T_dof[first_set[nodes]][:, None],
                       dict(boundary=np.full(len(nodes), i), area=area,
                            **_recipe({i: disc.mesh.boundaries[name]}, np.full(len(nodes), i), nodes))))
    for i, a, b in thermal_links:
        facets = shared_facets(disc.mesh, disc.region_names[a], disc.region_names[b])
        nodes, area = node_areas(disc.mesh, facets, disc.L_ref)
        ta = layout.site_thermal[disc.site_at(a, nodes)]
        tb = layout.site_thermal[disc.site_at(b, nodes)]
        groups.append(("thermal_link", BOLTZMANN, np.stack([layout.T_dof[ta], layout.T_dof[tb]], axis=1),
                       dict(interface=np.full(len(nodes), i), area=area,
                            **_recipe({i: facets}, np.full(len(nodes), i), nodes))))
    return groups


def _recipe(facets_by_key, item_key, item_node) -> dict:
    """Data entries that let :meth:`Term.area` recompute the items' areas (shape gradients)."""
    from .discretize import area_recipe

    facets, slot = area_recipe(facets_by_key, np.asarray(item_key), np.asarray(item_node))
    return dict(area_facets=facets, area_slot=slot)


def _with_temperatures(group, layout: Layout, set_region: np.ndarray, held: np.ndarray):
    """A kernel group with the temperature unknowns of its sites appended, and for kernels
    with heat sources the reference region and contact-held flag of each carrier set
    (see the kernel notes) and the thermal set of each temperature unknown (``tset``)."""
    kind, st, dofs, data = group
    sites = data["sites"]
    tset = layout.site_thermal[sites]
    data = dict(data)
    if kind in _HEAT_KINDS:
        data["tset"] = tset
        sets = data.pop("sets") if "sets" in data else layout.site_carrier[sites]
        names = {"semi_edge": ("_i", "_j"), "link": ("_a", "_b")}.get(kind, ("",))
        for k, e in enumerate(names):
            data["ref" + e] = set_region[sets[:, k]]
            if kind != "schottky":
                data["held" + e] = held[sets[:, k]]
    return kind, st, np.concatenate([dofs, layout.T_dof[tset]], axis=1), data

