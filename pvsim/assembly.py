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

import jax
import jax.numpy as jnp
import numpy as np

from .discretize import Discretization
from .layout import Layout
from .params import Params, gather
from .physics import electron_flux, hole_flux, log_densities, recombination_rates
from .physics.statistics import neutral_potential


# ---------------------------------------------------------------- pointwise kernels
# Each kernel receives the local unknowns as a reference value plus an increment
# (u = ref + du, see Assembler.raw) and forms every *difference* of potentials as
# (ref_i - ref_j) + (du_i - du_j): the reference differences are exact for nearby values
# (Sterbenz), and the increments are small, so a quasi-Fermi drop of 1e-20 V between two
# nodes at 0.6 V is resolved, which a float64 potential (spacing 1e-16 V) cannot do.

def _diff(ref, du, i, j):
    return (ref[i] - ref[j]) + (du[i] - du[j])


def semiconductor_edge(du, ref, m, w, lambda2):
    """Local residual of one semiconductor edge; unknowns (psi_i, psi_j, fn_i, fn_j, fp_i, fp_j)."""
    psi_i, psi_j, fn_i, fn_j, fp_i, fp_j = ref + du
    ln_n_i, ln_p_i = log_densities(psi_i, fn_i, fp_i, m)
    ln_n_j, ln_p_j = log_densities(psi_j, fn_j, fp_j, m)
    d = _diff(ref, du, 1, 0)  # band edges differ by psi only inside a region
    jn = w * electron_flux(ln_n_i, ln_n_j, d, _diff(ref, du, 2, 3), m.mu_n)
    jp = w * hole_flux(ln_p_i, ln_p_j, d, _diff(ref, du, 4, 5), m.mu_p)
    dd = -lambda2 * m.eps_r * w * d
    return jnp.stack([dd, -dd, jn, -jn, jp, -jp])


def insulator_edge(du, ref, eps_r, w, lambda2):
    dd = lambda2 * eps_r * w * _diff(ref, du, 0, 1)
    return jnp.stack([dd, -dd])


def semiconductor_site(du, ref, m, doping, generation, volume):
    """Local residual of one semiconductor site; unknowns (psi, phi_n, phi_p)."""
    psi, fn, fp = ref + du
    ln_n, ln_p = log_densities(psi, fn, fp, m)
    r = sum(recombination_rates(ln_n, ln_p, _diff(ref, du, 2, 1), m)) - generation
    rho = jnp.exp(ln_p) - jnp.exp(ln_n) + doping
    return jnp.stack([-volume * rho, -volume * r, volume * r])


def _with_jacobian(kernel, in_axes):
    """vmap over items of (jacobian, value) of a local kernel."""
    def both(u, *args):
        r = kernel(u, *args)
        return r, r
    return jax.vmap(jax.jacfwd(both, has_aux=True), in_axes=in_axes)


_semi_edge_jac = _with_jacobian(semiconductor_edge, (0, 0, 0, 0, None))
_ins_edge_jac = _with_jacobian(insulator_edge, (0, 0, 0, 0, None))
_semi_site_jac = _with_jacobian(semiconductor_site, (0, 0, 0, 0, 0, 0))


# ---------------------------------------------------------------- the assembler
@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class Assembler:
    """Index arrays (pytree leaves) and sizes (static) for one mesh and layout."""

    # data (arrays)
    se_dofs: jax.Array  # (Es, 6) unknowns of semiconductor edges
    se_region: jax.Array
    se_weight: jax.Array
    ie_dofs: jax.Array  # (Ei, 2)
    ie_region: jax.Array
    ie_weight: jax.Array
    ss_dofs: jax.Array  # (Ss, 3) unknowns of semiconductor sites
    ss_site: jax.Array
    ss_region: jax.Array
    ss_volume: jax.Array
    se_slots: jax.Array  # (Es, 36) CSR slots
    ie_slots: jax.Array
    ss_slots: jax.Array
    rows: jax.Array  # (nnz,) CSR row of each slot
    cols: jax.Array
    dirichlet_entry: jax.Array  # (nnz,) bool: slot lies in a Dirichlet row
    dirichlet_diag: jax.Array  # slots of the Dirichlet diagonals
    psi_bc_dof: jax.Array  # (Bp,) psi unknowns fixed by contacts
    psi_bc_contact: jax.Array
    psi_bc_site: jax.Array
    psi_bc_ohmic: jax.Array  # bool
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

    # ------------------------------------------------------------ evaluation
    def voltages(self, u, params: Params, ref=None):
        """Contact voltages (scaled): set values, or unknowns for current-controlled ones."""
        v = params.voltage
        for k, ctl in enumerate(self.controls):
            if ctl == "current":
                vd = self.voltage_dof[k]
                v = v.at[k].set(u[vd] + (0.0 if ref is None else ref[vd]))
        return v

    def raw(self, u, params: Params, jacobian: bool = True, ref=None):
        """Raw residual (n_dof,) and raw Jacobian values (nnz,) before boundary conditions.

        The state is ``ref + u`` (``ref`` defaults to 0); differences of potentials are
        formed from the two parts separately (see the kernels). With ``jacobian=False``
        only the residual is evaluated (values returned as None).
        """
        ref = jnp.zeros_like(u) if ref is None else ref
        mat = params.material
        f = jnp.zeros(self.n_dof)
        vals = jnp.zeros(self.nnz + 1) if jacobian else None
        terms = []
        if self.se_dofs.shape[0]:
            terms.append((semiconductor_edge, _semi_edge_jac, self.se_dofs, self.se_slots,
                          (gather(mat, self.se_region), self.se_weight, self.lambda2), (0, 0, 0, 0, None)))
        if self.ie_dofs.shape[0]:
            terms.append((insulator_edge, _ins_edge_jac, self.ie_dofs, self.ie_slots,
                          (mat.eps_r[self.ie_region], self.ie_weight, self.lambda2), (0, 0, 0, 0, None)))
        if self.ss_dofs.shape[0]:
            terms.append((semiconductor_site, _semi_site_jac, self.ss_dofs, self.ss_slots,
                          (gather(mat, self.ss_region), params.doping[self.ss_site],
                           params.generation[self.ss_site], self.ss_volume), (0, 0, 0, 0, 0, 0)))
        for kernel, kernel_jac, dofs, slots, args, axes in terms:
            if jacobian:
                jac, res = kernel_jac(u[dofs], ref[dofs], *args)
                vals = vals.at[slots].add(jac.reshape(jac.shape[0], -1))
            else:
                res = jax.vmap(kernel, in_axes=axes)(u[dofs], ref[dofs], *args)
            f = f.at[dofs].add(res)
        return f, (vals[:-1] if jacobian else None)

    def contact_psi(self, v, params: Params):
        """Dirichlet value of psi at each psi_bc entry."""
        m = gather(params.material, self.site_region[self.psi_bc_site])
        neutral = neutral_potential(params.doping[self.psi_bc_site], 0.0, m)
        wf = -params.work_function[self.psi_bc_contact]
        return v[self.psi_bc_contact] + jnp.where(self.psi_bc_ohmic, neutral, wf)

    def terminal_currents(self, f_raw):
        """(electron, hole) current entering the device at each contact (scaled), (K,) each."""
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
            i_n, i_p = self.terminal_currents(f_raw)
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


def build_assembler(disc: Discretization, layout: Layout, lambda2: float) -> Assembler:
    """Pattern, scatter slots and boundary maps (numpy, once per mesh)."""
    reg = disc.site_region
    semi_edge = layout.semiconductor[disc.edge_region]
    s_i, s_j = disc.edge_sites[:, 0], disc.edge_sites[:, 1]
    psi = layout.psi_dof[disc.site_node]
    car = layout.site_carrier
    pn, pp = layout.phin_dof, layout.phip_dof

    se = np.nonzero(semi_edge)[0]
    se_dofs = np.stack([psi[s_i[se]], psi[s_j[se]], pn[car[s_i[se]]], pn[car[s_j[se]]],
                        pp[car[s_i[se]]], pp[car[s_j[se]]]], axis=1)
    ie = np.nonzero(~semi_edge)[0]
    ie_dofs = np.stack([psi[s_i[ie]], psi[s_j[ie]]], axis=1)
    ss = np.nonzero(car >= 0)[0]
    ss_dofs = np.stack([psi[ss], pn[car[ss]], pp[car[ss]]], axis=1)

    # boundary conditions
    psi_bc_dof, psi_bc_contact, psi_bc_site, psi_bc_ohmic = [], [], [], []
    car_bc, car_bc_contact = [], []
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
        car_bc += [pn[cars], pp[cars]]
        car_bc_contact += [np.full(len(cars), k)] * 2
    cat = lambda xs, dt=np.int64: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)  # noqa: E731
    psi_bc_dof, psi_bc_contact, psi_bc_site = cat(psi_bc_dof), cat(psi_bc_contact), cat(psi_bc_site)
    psi_bc_ohmic = cat(psi_bc_ohmic, bool)
    car_bc, car_bc_contact = cat(car_bc), cat(car_bc_contact)
    dirichlet = np.concatenate([psi_bc_dof, car_bc])
    is_dir = np.zeros(layout.n_dof, dtype=bool)
    is_dir[dirichlet] = True

    # sparsity pattern
    def pairs(dofs):
        k = dofs.shape[1]
        return (np.repeat(dofs, k, axis=1).ravel(), np.tile(dofs, (1, k)).ravel())

    coo = [pairs(se_dofs), pairs(ie_dofs), pairs(ss_dofs),
           (np.arange(layout.n_dof), np.arange(layout.n_dof))]
    # current-controlled contacts: row = sum of contact carrier rows; column in contact rows
    n_cont = len(layout.contacts)
    maxc = max([len(c) for c in layout.contact_carriers] + [1])
    contact_in = -np.ones((n_cont, maxc), dtype=np.int64)
    for k, cars in enumerate(layout.contact_carriers):
        contact_in[k, : len(cars)] = cars
    raw_coo = np.concatenate([c[0] for c in coo[:3]]), np.concatenate([c[1] for c in coo[:3]])
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

    se_slots = slots(*pairs(se_dofs)).reshape(len(se), 36)
    ie_slots = slots(*pairs(ie_dofs)).reshape(len(ie), 4)
    ss_slots = slots(*pairs(ss_dofs)).reshape(len(ss), 9)
    raw_slots = np.concatenate([se_slots.ravel(), ie_slots.ravel(), ss_slots.ravel()])
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

    j = jnp.asarray
    return Assembler(
        se_dofs=j(se_dofs), se_region=j(disc.edge_region[se]), se_weight=j(disc.edge_weight[se]),
        ie_dofs=j(ie_dofs), ie_region=j(disc.edge_region[ie]), ie_weight=j(disc.edge_weight[ie]),
        ss_dofs=j(ss_dofs), ss_site=j(ss), ss_region=j(reg[ss]), ss_volume=j(disc.site_volume[ss]),
        se_slots=j(se_slots), ie_slots=j(ie_slots), ss_slots=j(ss_slots),
        rows=j(rows), cols=j(cols),
        dirichlet_entry=j(is_dir[rows]), dirichlet_diag=j(slots(dirichlet, dirichlet)),
        psi_bc_dof=j(psi_bc_dof), psi_bc_contact=j(psi_bc_contact), psi_bc_site=j(psi_bc_site),
        psi_bc_ohmic=j(psi_bc_ohmic), car_bc_dofs=j(car_bc), car_bc_contact=j(car_bc_contact),
        cc_src=j(cc_src), cc_dst=j(cc_dst), cc_dst_contact=j(cc_k), vdof_diag=j(vdof_diag),
        vcol_slots=j(vcol_slots),
        contact_in=j(contact_in), phin_dof=j(pn), phip_dof=j(pp),
        voltage_dof=j(layout.voltage_dof), site_volume=j(disc.site_volume),
        psi_dof=j(layout.psi_dof), site_node=j(disc.site_node), site_region=j(reg),
        n_dof=n, nnz=nnz, lambda2=float(lambda2),
        controls=tuple(c.control for c in layout.contacts),
    )
