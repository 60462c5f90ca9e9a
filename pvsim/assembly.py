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

# ---------------------------------------------------------------- pointwise kernels
# Each kernel receives the local unknowns as a reference value plus an increment
# (u = ref + du, see Assembler.raw) and forms every *difference* of potentials as
# (ref_i - ref_j) + (du_i - du_j): the reference differences are exact for nearby values
# (Sterbenz), and the increments are small, so a quasi-Fermi drop of 1e-20 V between two
# nodes at 0.6 V is resolved, which a float64 potential (spacing 1e-16 V) cannot do.
# ``stats`` (the statistics of the region, or of each side of a link) is static.

def _diff(ref, du, i, j):
    return (ref[i] - ref[j]) + (du[i] - du[j])


def semiconductor_edge(du, ref, m, w, length, lambda2, field_floor, stats=BOLTZMANN):
    """Local residual of one semiconductor edge; unknowns (psi_i, psi_j, fn_i, fn_j, fp_i, fp_j).

    Generalised SG (excess chemical potential form): the band-potential rise seen by
    electrons is d_psi + (rho_n,j - rho_n,i), by holes d_psi - (rho_p,j - rho_p,i), with
    rho = ln F(eta) - eta (identically 0, hence the plain SG flux, for Boltzmann statistics).
    Poole–Frenkel mobility mu0 exp(pf sqrt(F)), F = |d_psi| / length (smoothed below
    ``field_floor``).
    """
    psi_i, psi_j, fn_i, fn_j, fp_i, fp_j = ref + du
    ln_n_i, ln_p_i, rn_i, rp_i = densities_and_excess(psi_i, fn_i, fp_i, m, stats)
    ln_n_j, ln_p_j, rn_j, rp_j = densities_and_excess(psi_j, fn_j, fp_j, m, stats)
    d = _diff(ref, du, 1, 0)  # band edges differ by psi only inside a region
    d_n, d_p = (d, d) if stats == BOLTZMANN else (d + (rn_j - rn_i), d - (rp_j - rp_i))
    root_field = (d * d + (field_floor * length) ** 2) ** 0.25 / jnp.sqrt(length)
    mu_n = m.mu_n * jnp.exp(m.pf_n * root_field)
    mu_p = m.mu_p * jnp.exp(m.pf_p * root_field)
    jn = w * electron_flux(ln_n_i, ln_n_j, d_n, _diff(ref, du, 2, 3), mu_n)
    jp = w * hole_flux(ln_p_i, ln_p_j, d_p, _diff(ref, du, 4, 5), mu_p)
    dd = -lambda2 * m.eps_r * w * d
    return jnp.stack([dd, -dd, jn, -jn, jp, -jp])


def insulator_edge(du, ref, eps_r, w, lambda2):
    dd = lambda2 * eps_r * w * _diff(ref, du, 0, 1)
    return jnp.stack([dd, -dd])


def semiconductor_site(du, ref, m, doping, generation, volume, stats=BOLTZMANN):
    """Local residual of one semiconductor site; unknowns (psi, phi_n, phi_p)."""
    psi, fn, fp = ref + du
    ln_n, ln_p = log_densities(psi, fn, fp, m, stats)
    r = sum(recombination_rates(ln_n, ln_p, _diff(ref, du, 2, 1), m)) - generation
    rho = jnp.exp(ln_p) - jnp.exp(ln_n) + doping
    return jnp.stack([-volume * rho, -volume * r, volume * r])


def _link_parts(du, ref, ma, mb, ip, area, semi_a, semi_b, org_eps, org_mu_n, org_mu_p, tunnel,
                stats):
    """(i_n, i_p, r, high_n, high_p) of one link: currents a -> b and surface SRH, per link."""
    psi, fn_a, fp_a, fn_b, fp_b = ref + du
    ln_na, ln_pa = log_densities(psi, fn_a, fp_a, ma, stats[0])
    ln_nb, ln_pb = log_densities(psi, fn_b, fp_b, mb, stats[1])
    high_n = jnp.where(semi_a & semi_b, ma.chi < mb.chi, semi_b)  # a: higher E_c (insulator: "higher")
    high_p = jnp.where(semi_a & semi_b, ma.chi + ma.Eg > mb.chi + mb.Eg, semi_b)  # a: lower E_v
    trans_n = mean_transmission(ip.barrier_n, tunnel * ip.thickness * jnp.sqrt(ip.mass_n))
    trans_p = mean_transmission(ip.barrier_p, tunnel * ip.thickness * jnp.sqrt(ip.mass_p))
    vt_n = ip.flux * (ip.v_n + ip.sm_n * org_eps * org_mu_n) * trans_n
    vt_p = ip.flux * (ip.v_p + ip.sm_p * org_eps * org_mu_p) * trans_p
    i_n = area * electron_link_current(ln_na, ln_nb, _diff(ref, du, 1, 3), high_n, vt_n)
    i_p = area * hole_link_current(ln_pa, ln_pb, _diff(ref, du, 2, 4), high_p, vt_p)
    # surface recombination: electrons from the low-E_c side, holes from the high-E_v side
    ln_n = jnp.where(high_n, ln_nb, ln_na)
    ln_p = jnp.where(high_p, ln_pb, ln_pa)
    split = jnp.where(high_p, jnp.where(high_n, _diff(ref, du, 4, 3), _diff(ref, du, 4, 1)),
                      jnp.where(high_n, _diff(ref, du, 2, 3), _diff(ref, du, 2, 1)))
    r = area * surface_srh(ln_n, ln_p, split, ip.s_n, ip.s_p, ip.trap)
    return i_n, i_p, r, high_n, high_p


def interface_link(du, ref, ma, mb, ip, area, semi_a, semi_b, org_eps, org_mu_n, org_mu_p,
                   tunnel, stats=(BOLTZMANN, BOLTZMANN)):
    """Local residual of one interface link; unknowns (psi, fn_a, fp_a, fn_b, fp_b).

    Thermionic/tunnelling currents between the two carrier sets, surface SRH (electrons of
    the side of lower conduction band, holes of the side of higher valence band) and the
    fixed sheet charge (see :mod:`pvsim.physics.interface`). At an insulator side both
    carrier sets are the semiconductor's.
    """
    i_n, i_p, r, high_n, high_p = _link_parts(du, ref, ma, mb, ip, area, semi_a, semi_b, org_eps,
                                              org_mu_n, org_mu_p, tunnel, stats)
    zero = jnp.zeros(())
    return jnp.stack([-area * ip.sheet,
                      i_n - jnp.where(high_n, zero, r), i_p + jnp.where(high_p, zero, r),
                      -i_n - jnp.where(high_n, r, zero), -i_p + jnp.where(high_p, r, zero)])


def schottky_contact(du, ref, m, voltage, v_n, v_p, area, stats=BOLTZMANN):
    """Carrier exchange with the metal at one Schottky-contact node (unknowns psi, fn, fp).

    Electric current leaving the device: electrons v_n (n - n_eq) with n - n_eq =
    -n expm1(phi_n - V), holes v_p (p - p_eq) with p - p_eq = -p expm1(V - phi_p).
    """
    psi, fn, fp = ref + du
    ln_n, ln_p = log_densities(psi, fn, fp, m, stats)
    i_n = area * v_n * jnp.exp(ln_n) * jnp.expm1(fn - voltage)
    i_p = -area * v_p * jnp.exp(ln_p) * jnp.expm1(voltage - fp)
    return jnp.stack([jnp.zeros(()), i_n, i_p])


def _with_jacobian(kernel, in_axes):
    """vmap over items of (jacobian, value) of a local kernel."""
    def both(u, *args):
        r = kernel(u, *args)
        return r, r
    return jax.vmap(jax.jacfwd(both, has_aux=True), in_axes=in_axes)


KERNELS = {"semi_edge": semiconductor_edge, "ins_edge": insulator_edge,
           "semi_site": semiconductor_site, "link": interface_link, "schottky": schottky_contact}


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class Term:
    """A group of local kernels of one kind (and one statistics): unknowns, CSR slots, data."""

    dofs: jax.Array  # (n, k) unknowns of each item
    slots: jax.Array  # (n, k*k) CSR slots of the local Jacobians
    data: dict  # per-item arrays (regions, weights, volumes, ...)
    kind: str = field(metadata=dict(static=True))
    stats: object = field(default=BOLTZMANN, metadata=dict(static=True))

    def arguments(self, params: Params, asm: "Assembler"):
        """(args, in_axes) of the kernel for this group, after the state."""
        d, mat, geo = self.data, params.material, params.geometry
        if self.kind in ("semi_edge", "ins_edge"):
            weight = d["weight"] if geo is None else geo.edge_weight[d["edge"]]
        if self.kind == "semi_edge":
            length = d["length"] if geo is None else geo.edge_length[d["edge"]]
            return ((gather(mat, d["region"]), weight, length, asm.lambda2,
                     asm.field_floor), (0, 0, 0, 0, 0, None, None))
        if self.kind == "ins_edge":
            return (mat.eps_r[d["region"]], weight, asm.lambda2), (0, 0, 0, 0, None)
        if self.kind == "semi_site":
            volume = d["volume"] if geo is None else geo.site_volume[d["site"]]
            return ((gather(mat, d["region"]), params.doping[d["site"]],
                     params.generation[d["site"]], volume), (0, 0, 0, 0, 0, 0))
        if self.kind == "link":
            org = d["org_region"]
            return ((gather(mat, d["region_a"]), gather(mat, d["region_b"]),
                     gather(params.interface, d["interface"]), d["area"], d["semi_a"], d["semi_b"],
                     mat.eps_r[org], mat.mu_n[org], mat.mu_p[org], asm.tunnel),
                    (0,) * 11 + (None,))
        if self.kind == "schottky":
            c = d["contact"]
            return ((gather(mat, d["region"]), params.voltage[c], params.contact_v_n[c],
                     params.contact_v_p[c], d["area"]), (0,) * 7)
        raise ValueError(self.kind)

    def evaluate(self, u, ref, params, asm, jacobian: bool):
        """(local residuals (n, k), local Jacobians (n, k, k) or None)."""
        args, axes = self.arguments(params, asm)
        kernel = partial(KERNELS[self.kind], stats=self.stats) if self.kind in _STATS_KINDS \
            else KERNELS[self.kind]
        if jacobian:
            jac, res = _with_jacobian(kernel, axes)(u[self.dofs], ref[self.dofs], *args)
            return res, jac
        return jax.vmap(kernel, in_axes=axes)(u[self.dofs], ref[self.dofs], *args), None


_STATS_KINDS = ("semi_edge", "semi_site", "link", "schottky")


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
    # static
    n_dof: int = field(metadata=dict(static=True))
    nnz: int = field(metadata=dict(static=True))
    lambda2: float = field(metadata=dict(static=True))
    controls: tuple = field(metadata=dict(static=True))  # per contact "voltage"/"current"
    stat_kinds: tuple = field(metadata=dict(static=True))  # statistics used by contact sites
    tunnel: float = field(default=0.0, metadata=dict(static=True))  # Scales.tunnel_constant
    field_floor: float = field(default=1e-4, metadata=dict(static=True))  # scaled, PF smoothing

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
            res, jac = term.evaluate(u, ref, params, self, jacobian)
            if jacobian:
                vals = vals.at[term.slots].add(jac.reshape(jac.shape[0], -1))
            f = f.at[term.dofs].add(res)
        return f, (vals[:-1] if jacobian else None)

    def interface_recombination(self, u, params: Params, ref=None):
        """Total surface SRH over all interface links (scaled, like a volume-integrated R)."""
        ref = jnp.zeros_like(u) if ref is None else ref
        total = jnp.zeros(())
        for term in self.terms:
            if term.kind != "link" or term.dofs.shape[0] == 0:
                continue
            args, axes = term.arguments(params, self)
            parts = jax.vmap(partial(_link_parts, stats=term.stats), in_axes=axes)(
                u[term.dofs], ref[term.dofs], *args)
            total = total + jnp.sum(parts[2])
        return total

    def contact_psi(self, v, params: Params):
        """Dirichlet value of psi at each psi_bc entry."""
        m = gather(params.material, self.site_region[self.psi_bc_site])
        doping = params.doping[self.psi_bc_site]
        neutral = per_statistics(lambda mm, kind: neutral_potential(doping, 0.0, mm, kind),
                                 self.stat_kinds, self.psi_bc_stats, m)
        wf = -params.work_function[self.psi_bc_contact]
        return v[self.psi_bc_contact] + jnp.where(self.psi_bc_ohmic, neutral, wf)

    def terminal_currents(self, u, params: Params, ref=None):
        """(electron, hole) current entering the device at each contact (scaled), (K,) each."""
        return self._contact_sums(self.raw(u, params, False, ref, contact_flux=False)[0])

    def _contact_sums(self, f_raw):
        mask = self.contact_in >= 0
        idx = jnp.where(mask, self.contact_in, 0)
        i_n = jnp.sum(jnp.where(mask, f_raw[self.phin_dof[idx]], 0.0), axis=1)
        i_p = jnp.sum(jnp.where(mask, f_raw[self.phip_dof[idx]], 0.0), axis=1)
        return i_n, i_p

    def residual_and_jacobian(self, u, params: Params, jacobian: bool = True, ref=None):
        """Residual with boundary conditions (n_dof,) and Jacobian values (nnz,) at ref + u."""
        f_raw, raw_vals = self.raw(u, params, jacobian, ref)
        v = self.voltages(u, params, ref)
        full = u if ref is None else ref + u
        f = f_raw.at[self.psi_bc_dof].set(full[self.psi_bc_dof] - self.contact_psi(v, params))
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
                    interface_org=None, tunnel: float = 0.0, field_floor: float = 1e-4) -> Assembler:
    """Pattern, scatter slots and boundary maps (numpy, once per mesh).

    ``statistics``: per-region statistics name (default Boltzmann everywhere);
    ``interface_org``: per interface, the region whose eps_r and mobility set a
    Scott–Malliaras velocity (any region when unused); ``tunnel``: Scales.tunnel_constant;
    ``field_floor``: scaled field below which the Poole–Frenkel |F| is smoothed.
    """
    from .discretize import node_areas

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
            dict(region=disc.edge_region[e], weight=disc.edge_weight[e], length=length, edge=e)))
        ss = np.nonzero((car >= 0) & (stats[reg] == kind))[0]
        groups.append(("semi_site", kind, np.stack([psi[ss], pn[car[ss]], pp[car[ss]]], axis=1),
                       dict(region=reg[ss], site=ss, volume=disc.site_volume[ss])))
    ie = np.nonzero(~semi_edge)[0]
    groups.append(("ins_edge", BOLTZMANN, np.stack([psi[s_i[ie]], psi[s_j[ie]]], axis=1),
                   dict(region=disc.edge_region[ie], weight=disc.edge_weight[ie], edge=ie)))

    lk = layout.links
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
                     area=lk.area[sel], semi_a=layout.semiconductor[ra[sel]],
                     semi_b=layout.semiconductor[rb[sel]], org_region=org[lk.interface[sel]])))

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
                           dict(contact=k_s[sel], region=r_s[sel], area=a_s[sel])))
    dirichlet = np.concatenate([psi_bc_dof, car_bc])
    is_dir = np.zeros(layout.n_dof, dtype=bool)
    is_dir[dirichlet] = True

    # sparsity pattern
    def pairs(dofs):
        k = dofs.shape[1]
        return (np.repeat(dofs, k, axis=1).ravel(), np.tile(dofs, (1, k)).ravel())

    term_coo = [pairs(g[2]) for g in groups]
    coo = term_coo + [(np.arange(layout.n_dof), np.arange(layout.n_dof))]
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
                          data={key: j(v) for key, v in data.items()}))
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
    )
