"""A simulatable device: mesh + materials + doping + contacts, compiled once.

:class:`Device` is the boundary between physical units and the scaled solver: it builds
the discretisation, unknown layout, assembler and linear back end once per mesh, turns
physical biases into :class:`~pvsim.params.Params`, and turns converged states back into
physical fields and terminal currents.

Terminal currents (DESIGN.md, "Terminal currents"): the *direct* current at a contact is
the raw continuity residual summed over its nodes (the edge fluxes, written with expm1 of
quasi-Fermi differences formed without cancellation, minus the recombination in the contact
cells). The *robust* current uses the carrier balance, one equation per carrier (e.g.
sum_k I_p(k) = q int R dV for holes), to replace the hole part at the contact with the
largest hole density and the electron part at the contact with the largest electron density
(the majority fluxes there are the least precise); the other contacts keep their direct
parts. The output ``current`` is the robust one; ``current_direct`` is kept for checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import jax
import jax.numpy as jnp
import numpy as np

from .assembly import build_assembler
from .discretize import discretize
from .doping import DopingProfile, net_doping
from .layout import ContactSpec, build_layout
from .linalg import make_solver
from .materials import InterfaceSpec, MaterialSpec, scaled_interfaces, scaled_material
from .mesh import Mesh
from .newton import NewtonOptions, newton_solve
from .params import Geometry, Params, Thermal, gather
from .physics import log_densities, recombination_rates
from .physics.statistics import neutral_potential, per_statistics
from .physics.thermal import at_temperature, band_gap
from .units import Scales, require_x64


@dataclass(frozen=True)
class ThermalBoundary:
    """A thermal boundary condition on a named mesh boundary (gmsh physical group).

    kind: ``"fixed"`` (T = ``T_K``, a heat sink) or ``"robin"`` (heat flux out
    h (T - T_K), ``h_W_m2K`` the heat-transfer coefficient). Every other boundary is
    adiabatic (zero heat flux, also the mirror plane of a symmetric cell).
    """

    name: str
    kind: str = "fixed"
    T_K: float = 300.0
    h_W_m2K: float = 0.0


@dataclass(frozen=True)
class HeatSpec:
    """Self-heating: the lattice temperature becomes an unknown (see docs/physics.md, "Heat").

    ``escape_fraction``: fraction of the radiated photon energy that leaves the device as
    light (the outcoupling); the rest is absorbed and becomes heat where it is emitted.
    """

    boundaries: tuple[ThermalBoundary, ...] = ()
    escape_fraction: float = 0.2
    sources_W_m3: dict[str, float] = field(default_factory=dict)  # region -> external heat


@dataclass
class Device:
    mesh: Mesh
    materials: dict[str, MaterialSpec]  # region name -> material
    contacts: tuple[ContactSpec, ...]
    doping: dict[str, list[DopingProfile]] = field(default_factory=dict)
    work_functions_eV: dict[str, float] = field(default_factory=dict)  # contact -> W
    interfaces: tuple[InterfaceSpec, ...] = ()
    temperature_K: float = 300.0
    linear_solver: str = "auto"
    newton: NewtonOptions = NewtonOptions()
    L_ref: float = 1e-8
    heat: HeatSpec | None = None

    def __post_init__(self):
        require_x64()
        missing = [r for r in self.mesh.regions if r not in self.materials]
        if missing:
            raise ValueError(f"regions {missing} of the mesh have no material")
        dim_eff = 3 if self.mesh.axisymmetric else self.mesh.dim
        self.scales = Scales(T_ref=self.temperature_K, L_ref=self.L_ref, dim_eff=dim_eff)
        self.disc = discretize(self.mesh, self.L_ref)
        names = self.disc.region_names
        self.region_specs = [self.materials[r] for r in names]
        semi = np.array([m.is_semiconductor for m in self.region_specs])
        index = {r: k for k, r in enumerate(names)}
        pairs = []
        for itf in self.interfaces:
            bad = [r for r in itf.regions if r not in index]
            if bad:
                raise ValueError(f"interface {list(itf.regions)}: no region {bad} in the mesh "
                                 f"(regions: {list(names)})")
            a, b = (index[r] for r in itf.regions)
            if not (semi[a] or semi[b]):
                raise ValueError(f"interface {list(itf.regions)} joins two insulators; interface "
                                 "models need a semiconductor on at least one side")
            if itf.split and not (semi[a] and semi[b]):
                raise ValueError(f"interface {list(itf.regions)}: model '{itf.model}' needs "
                                 "semiconductors on both sides")
            pairs.append((a, b, itf.split))
        self.statistics = tuple(m.statistics for m in self.region_specs)
        jumps = self._check_heat(index, semi)
        self.layout = build_layout(self.disc, semi, tuple(self.contacts), pairs, heat=self.heat is not None,
                                   thermal_split=[(a, b) for _, a, b in jumps])
        org = [index.get(itf.organic_region or itf.regions[0], 0) for itf in self.interfaces]
        field_floor = 100.0 * self.L_ref / self.scales.V_T  # 1 V/cm
        bcs = self.heat.boundaries if self.heat else ()
        thermal_bc = [(b.kind, b.name, sum(c.kind == b.kind for c in bcs[:i])) for i, b in enumerate(bcs)]
        self.asm = build_assembler(self.disc, self.layout, self.scales.lambda2, self.statistics,
                                   np.array(org, dtype=np.int64), self.scales.tunnel_constant,
                                   field_floor, thermal_bc, jumps)
        self.solver = make_solver(self.linear_solver, np.asarray(self.asm.rows),
                                  np.asarray(self.asm.cols), self.asm.n_dof, self.layout.dof_groups(),
                                  reference=self._reference_jacobian)
        # The mesh topology (the assembler's index arrays and the solver's, e.g. jax-amg's
        # hierarchy) enters the compiled functions as arguments, not as closed-over constants:
        # embedded, it grows the program by ~8 MB of StableHLO per million indices (31 MB for
        # the 2e3 cell, tens of GB at 1e6 nodes) and the compile time with it.
        self.topology = (self.asm, self.solver.topology())
        self._solve = jax.jit(lambda topology, u0, p: self.solve_pure(u0, p, self.newton.chord, topology))
        self._observe = jax.jit(lambda topology, *a: self._observe_impl(*a, asm=topology[0]))
        self._tangent = jax.jit(lambda topology, *a: self._tangent_impl(*a, topology=topology))
        self._tangent_reuse = jax.jit(lambda topology, *a: self._tangent_reuse_impl(*a, topology=topology))
        self._guess = jax.jit(self._guess_impl)

    def _check_heat(self, index, semi) -> list:
        """Validate the heat set-up; (interface, region a, region b) of temperature jumps."""
        if self.heat is None:
            return []
        missing = [r for r, m in self.materials.items() if not m.thermal_conductivity_W_mK]
        if missing:
            raise ValueError(f"heat is on but regions {missing} have no thermal_conductivity_W_mK "
                             "(W/(m K), > 0): set it on their materials")
        if not any(b.kind in ("fixed", "robin") for b in self.heat.boundaries):
            raise ValueError("heat is on but no boundary removes heat: add a fixed-temperature "
                             "(heat sink) or Robin boundary; all other boundaries are adiabatic")
        for b in self.heat.boundaries:
            if b.kind not in ("fixed", "robin"):
                raise ValueError(f"thermal boundary '{b.name}': kind '{b.kind}' is not 'fixed' or 'robin'")
            self.mesh.boundary_nodes(b.name)  # a clear MeshError if it does not exist
            if b.kind == "robin" and not b.h_W_m2K > 0:
                raise ValueError(f"thermal boundary '{b.name}': a Robin boundary needs h_W_m2K > 0")
        jumps = []
        for k, itf in enumerate(self.interfaces):
            if itf.thermal_conductance_MW_m2K is None:
                continue
            a, b = (index[r] for r in itf.regions)
            if semi[a] and semi[b] and not itf.split:
                raise ValueError(f"interface {list(itf.regions)}: a thermal conductance (temperature "
                                 "jump) between two semiconductors needs a thermionic or tunnelling "
                                 "interface (the quasi-Fermi levels jump there too)")
            if not itf.thermal_conductance_MW_m2K > 0:
                raise ValueError(f"interface {list(itf.regions)}: thermal_conductance_MW_m2K must be > 0")
            jumps.append((k, a, b))
        return jumps

    # ------------------------------------------------------------------ parameters
    @property
    def contact_names(self) -> list[str]:
        return [c.name for c in self.contacts]

    @cached_property
    def site_doping(self) -> np.ndarray:
        """Net doping per site, m^-3."""
        coords = self.mesh.points[self.disc.site_node]
        out = np.zeros(self.disc.n_sites)
        for r, name in enumerate(self.disc.region_names):
            sites = self.disc.sites_of_region(r)
            out[sites] = net_doping(self.doping.get(name, []), coords[sites])
        return out

    def params(self, voltage_V=None, current=None, hold_voltage=None) -> Params:
        """Scaled parameters for contact voltages (V) and set currents (current units).

        ``hold_voltage`` (K,) (truthy) holds current-controlled contacts at their voltage.
        """
        k = len(self.contacts)
        v = np.zeros(k) if voltage_V is None else np.asarray(voltage_V, dtype=float)
        i = np.zeros(k) if current is None else np.asarray(current, dtype=float)
        hold = np.zeros(k) if hold_voltage is None else np.asarray(hold_voltage, float)
        base = self._base_params
        bias = jnp.asarray(np.stack([v / self.scales.V_T, i / self.scales.current, hold]))
        return replace(base, voltage=bias[0], current=bias[1], hold_voltage=bias[2])

    @cached_property
    def _base_params(self) -> Params:
        """The bias-independent part of the parameters (built once)."""
        k = len(self.contacts)
        wf = np.array([self._work_function(i, c) for i, c in enumerate(self.contacts)])
        vel = self.scales.velocity
        return Params(
            material=scaled_material(self.region_specs, self.scales),
            doping=jnp.asarray(self.site_doping / self.scales.N_ref),
            generation=jnp.zeros(self.disc.n_sites),
            voltage=jnp.zeros(k), current=jnp.zeros(k),
            work_function=jnp.asarray(wf / self.scales.V_T), hold_voltage=jnp.zeros(k),
            interface=scaled_interfaces(list(self.interfaces), self.scales),
            contact_v_n=jnp.asarray([c.s_n_cm_s * 1e-2 / vel for c in self.contacts]),
            contact_v_p=jnp.asarray([c.s_p_cm_s * 1e-2 / vel for c in self.contacts]),
            thermal=self._thermal_params(),
        )

    def _thermal_params(self) -> Thermal | None:
        if self.heat is None:
            return None
        s, bcs = self.scales, self.heat.boundaries
        col = lambda xs: jnp.asarray(np.array(xs, dtype=float))  # noqa: E731
        g = [(i.thermal_conductance_MW_m2K or 0.0) * 1e6 / s.conductance for i in self.interfaces]
        return Thermal(
            fixed_T=col([b.T_K / s.T_ref for b in bcs if b.kind == "fixed"]),
            robin_h=col([b.h_W_m2K / s.conductance for b in bcs if b.kind == "robin"]),
            robin_T=col([b.T_K / s.T_ref for b in bcs if b.kind == "robin"]),
            conductance=col(g), escape=jnp.asarray(float(self.heat.escape_fraction)),
            source=col([self.heat.sources_W_m3.get(r, 0.0) * s.volume / s.power
                        for r in self.disc.region_names]))

    def geometry(self, points_m) -> Geometry:
        """Edge weights, control volumes and edge lengths of the mesh with node coordinates
        ``points_m`` (metres; same connectivity), in JAX: put the result in
        ``Params.geometry`` and gradients with respect to the coordinates (mesh morphing,
        X = X0 + sum_k theta_k V_k) flow through the residual and the implicit adjoint.
        Interface, Schottky-contact and Robin-face areas are recomputed from the same
        coordinates (see :mod:`pvsim.design` for the morphing)."""
        x = jnp.asarray(points_m) / self.L_ref
        w, v = self.disc.geometry(x)
        return Geometry(edge_weight=w, site_volume=v, edge_length=self.disc.edge_lengths(x), points=x)

    def set_base_params(self, params: Params) -> None:
        """Replace the bias-independent parameters (a design variable such as a ligand
        thickness or a doping) for later sweeps; same arrays, so nothing recompiles."""
        self.__dict__["_base_params"] = params

    def _work_function(self, k: int, c: ContactSpec) -> float:
        """W in eV: given, or electron affinity + barrier for a Schottky contact."""
        if c.kind == "schottky":
            if c.barrier_eV is None:
                raise ValueError(f"Schottky contact '{c.name}' needs barrier_eV")
            site = self.layout.contact_site[k][0]
            chi = self.region_specs[self.disc.site_region[site]].electron_affinity_eV
            return chi + c.barrier_eV
        return self.work_functions_eV.get(c.name, 0.0)

    def _reference_jacobian(self) -> np.ndarray:
        """Jacobian values at the initial guess of the base parameters (zero bias): the
        reference from which ``jax-air`` fixes its C/F splitting (called once, if at all)."""
        def values(asm, p):
            return asm.residual_and_jacobian(self._guess_impl(p), p)[1]
        return np.asarray(jax.jit(values)(self.asm, self.params()))

    # ------------------------------------------------------------------ solving
    def initial_guess(self, params: Params):
        """Local charge neutrality (per site, averaged per node), quasi-Fermi levels 0."""
        return self._guess(params)

    def _guess_impl(self, params: Params):
        lay, disc = self.layout, self.disc
        m = gather(params.material, jnp.asarray(disc.site_region))
        psi_site = neutral_potential(params.doping, 0.0, m)
        semi = jnp.asarray(lay.semiconductor[disc.site_region])
        wgt = jnp.where(semi, jnp.asarray(disc.site_volume), 0.0)
        num = jnp.zeros(self.mesh.n_nodes).at[disc.site_node].add(wgt * psi_site)
        den = jnp.zeros(self.mesh.n_nodes).at[disc.site_node].add(wgt)
        fallback = jnp.sum(wgt * psi_site) / jnp.maximum(jnp.sum(wgt), 1e-300)
        psi = jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), fallback)
        u = jnp.zeros(self.asm.n_dof).at[jnp.asarray(lay.psi_dof)].set(psi).at[self.asm.T_dof].set(1.0)
        return u.at[jnp.asarray(lay.voltage_dof[lay.voltage_dof >= 0])].set(
            params.voltage[np.nonzero(lay.voltage_dof >= 0)[0]])

    def _bind(self, topology):
        """(assembler, solver) with the topology arrays given (traced inside a jit)."""
        if topology is None:
            return self.asm, self.solver
        return topology[0], self.solver.bind(topology[1])

    def solve(self, u0, params):
        """One steady-state Newton solve (jitted; compiled once per device)."""
        return self._solve(self.topology, u0, params)

    def solve_pure(self, u0, params, chord: bool = False, topology=None):
        """The same solve, un-jitted, for use inside a user's own ``jit``/``vmap``.

        Chord steps are off by default here: under ``vmap`` the step choice would become a
        select that evaluates both kinds of step for every batch member. Pass
        ``topology=self.topology`` through the jitted function's arguments on large meshes, so
        the index arrays are not embedded in the program.
        """
        asm, solver = self._bind(topology)
        return newton_solve(asm, solver, u0, params, replace(self.newton, chord=chord))

    def tangent(self, u, params: Params, dparams: Params, factorization=None):
        """du/ds for params(s) = params + s dparams at a solution u: -J^-1 dF/ds (jitted).

        With the ``factorization`` left by the Newton solve that produced u, this costs one
        triangular solve; without it, one factorisation.
        """
        if factorization is None:
            return self._tangent(self.topology, u, params, dparams)
        return self._tangent_reuse(self.topology, u, params, dparams, factorization)

    @staticmethod
    def _dfds(asm, u, params, dparams):
        return jax.jvp(lambda p: asm.residual(u, p), (params,), (dparams,))[1]

    def _tangent_impl(self, u, params: Params, dparams: Params, topology=None):
        asm, solver = self._bind(topology)
        _, vals = asm.residual_and_jacobian(u, params)
        return solver.solve(vals, -self._dfds(asm, u, params, dparams), asm.rows, asm.cols,
                            asm.near_null_log(u))

    def _tangent_reuse_impl(self, u, params, dparams, fact, topology=None):
        asm, solver = self._bind(topology)
        return solver.resolve(fact, -self._dfds(asm, u, params, dparams), asm.rows, asm.cols)

    # ------------------------------------------------------------------ observables
    def site_state(self, ref, delta, params, asm=None):
        """Per-site (ln n, ln p, (R_srh, R_rad, R_auger), control volume) of the state
        ref + delta, scaled; volumes are 0 on insulator sites. Pure JAX (differentiable)."""
        asm, lay = self.asm if asm is None else asm, self.layout
        fn_dof, fp_dof = self._site_phi_dofs
        u = ref + delta
        m = gather(params.material, asm.site_region)
        theta = self.site_temperature(u, asm)
        if theta is not None:
            m = at_temperature(m, theta)
        th = 1.0 if theta is None else theta
        ln_n, ln_p = self._site_densities(u[asm.psi_dof[asm.site_node]] / th, u[fn_dof] / th,
                                          u[fp_dof] / th, m)
        split = (ref[fp_dof] - ref[fn_dof]) + (delta[fp_dof] - delta[fn_dof])
        rates = recombination_rates(ln_n, ln_p, split / th, m)
        volume = asm.site_volume if params.geometry is None else params.geometry.site_volume
        vol = jnp.where(jnp.asarray(lay.site_carrier >= 0), volume, 0.0)
        return ln_n, ln_p, rates, vol

    def site_temperature(self, u, asm=None):
        """theta = T / T_ref per site of the state u, or None when heat is off."""
        if not self.layout.heat:
            return None
        asm = self.asm if asm is None else asm
        return u[asm.T_dof[asm.site_thermal]]

    def _site_densities(self, psi, phi_n, phi_p, m):
        """(ln n, ln p) per site with each region's statistics."""
        site_stats = np.array(self.statistics, dtype=object)[self.disc.site_region]
        kinds = tuple(sorted(set(site_stats)))
        which = jnp.asarray([kinds.index(x) for x in site_stats])
        return per_statistics(lambda mm, kind: log_densities(psi, phi_n, phi_p, mm, kind),
                              kinds, which, m)

    def _observe_impl(self, ref, delta, params, asm=None):
        asm, lay = self.asm if asm is None else asm, self.layout
        i_n, i_p = asm.terminal_currents(delta, params, ref)
        v = asm.voltages(delta, params, ref)
        u = ref + delta
        ln_n, ln_p, (r_srh, r_rad, r_aug), vol = self.site_state(ref, delta, params, asm)
        psi_s = u[asm.psi_dof[asm.site_node]]
        m = gather(params.material, asm.site_region)
        theta = self.site_temperature(u, asm)
        gap = m.Eg if theta is None else band_gap(m, theta)
        r_surface = asm.interface_recombination(delta, params, ref)
        r_total = jnp.sum(vol * (r_srh + r_rad + r_aug - params.generation)) + r_surface
        # robust currents: the carrier balance (sum_k I_p(k) = q int R) fixes one contact's
        # current per carrier: take the contact where that carrier's density is largest
        # (its majority flux is the least precise); every other contact keeps its direct value
        k_all = len(self.contacts)
        semi_c = jnp.asarray(lay.site_carrier[self._site_contact_sites] >= 0)
        n_c = jnp.zeros(k_all).at[self._site_contact_idx].add(
            jnp.where(semi_c, jnp.exp(ln_n[self._site_contact_sites]), 0.0))
        p_c = jnp.zeros(k_all).at[self._site_contact_idx].add(
            jnp.where(semi_c, jnp.exp(ln_p[self._site_contact_sites]), 0.0))
        kp, kn = jnp.argmax(p_c), jnp.argmax(n_c)
        ip_bal = r_total - (jnp.sum(i_p) - i_p[kp])
        in_bal = -r_total - (jnp.sum(i_n) - i_n[kn])
        idx = jnp.arange(k_all)
        i_p_rob = jnp.where((idx == kp) & (p_c[kp] > 0), ip_bal, i_p)
        i_n_rob = jnp.where((idx == kn) & (n_c[kn] > 0), in_bal, i_n)

        def per_node(x):  # volume-weighted average of site values at each node
            num = jnp.zeros(self.mesh.n_nodes).at[asm.site_node].add(vol * x)
            den = jnp.zeros(self.mesh.n_nodes).at[asm.site_node].add(vol)
            return jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), 0.0)

        node_car = lay.node_carrier  # at a split interface: the side of the first region
        has = jnp.asarray(node_car >= 0)
        pn_node, pp_node = _phi_dofs(lay, node_car, lay.psi_dof)
        nan = jnp.nan
        return dict(
            psi=u[asm.psi_dof],
            phi_n=jnp.where(has, u[pn_node], nan),
            phi_p=jnp.where(has, u[pp_node], nan),
            n=per_node(jnp.exp(ln_n)), p=per_node(jnp.exp(ln_p)),
            R_srh=per_node(r_srh), R_rad=per_node(r_rad), R_auger=per_node(r_aug),
            Ec=per_node(-(psi_s + m.chi)), Ev=per_node(-(psi_s + m.chi + gap)),
            voltage=v, i_n=i_n, i_p=i_p, i_n_robust=i_n_rob, i_p_robust=i_p_rob,
            recombination=r_total,
            recombination_by_channel=jnp.stack(
                [jnp.sum(vol * r) for r in (r_srh, r_rad, r_aug)] + [r_surface]),
            **(self._heat_fields(ref, delta, params, theta) if theta is not None else {}),
        )

    def _heat_fields(self, ref, delta, params, theta):
        """Temperature and heat-source densities per node, and their integrals (scaled)."""
        asm = self.asm
        volume = asm.site_volume if params.geometry is None else params.geometry.site_volume
        n = self.mesh.n_nodes
        node_vol = jnp.zeros(n).at[asm.site_node].add(volume)
        temperature = jnp.zeros(n).at[asm.site_node].add(volume * theta) / node_vol
        parts = asm.heat_sources(delta, params, ref)  # (H, 4) per thermal set
        node = jnp.asarray(self.layout.thermal_node)
        dens = jnp.zeros((n, 4)).at[node].add(parts) / node_vol[:, None]
        total = jnp.sum(parts, axis=0)
        return dict(temperature=temperature, heat=dens[:, 0], heat_joule=dens[:, 1],
                    heat_recombination=dens[:, 2], heat_peltier=dens[:, 0] - dens[:, 1] - dens[:, 2],
                    light=dens[:, 3], heat_total=total, T_max=jnp.max(asm.temperatures(delta, ref)))

    @cached_property
    def _site_phi_dofs(self):
        """(phi_n, phi_p) unknown of each site's carrier set (psi's at insulator sites)."""
        lay = self.layout
        return _phi_dofs(lay, lay.site_carrier, lay.psi_dof[self.disc.site_node])

    @cached_property
    def _site_contact_sites(self):
        return np.concatenate(self.layout.contact_site) if self.contacts else np.zeros(0, int)

    @cached_property
    def _site_contact_idx(self):
        return np.concatenate([np.full(len(s), k) for k, s in enumerate(self.layout.contact_site)]) \
            if self.contacts else np.zeros(0, int)

    def observe(self, u, params, delta=None) -> dict[str, np.ndarray]:
        """Physical fields and currents of the state ``u + delta`` (SI units; currents in
        scales.current_units). Pass a Newton result's ``ref`` and ``delta`` for the most
        precise terminal currents."""
        delta = jnp.zeros_like(u) if delta is None else delta
        o = jax.tree_util.tree_map(np.asarray, self._observe(self.topology, u, delta, params))
        s = self.scales
        vt, nr, cur = s.V_T, s.N_ref, s.current
        out = {k: o[k] * vt for k in ("psi", "phi_n", "phi_p", "Ec", "Ev", "voltage")}
        out.update({k: o[k] * nr for k in ("n", "p")})
        out.update({k: o[k] * s.rate for k in ("R_srh", "R_rad", "R_auger")})
        out.update({k: o[k] * cur for k in ("i_n", "i_p", "i_n_robust", "i_p_robust")})
        # q * integral of R, in current units
        out["recombination_current"] = o["recombination"] * cur
        out["recombination_current_by_channel"] = o["recombination_by_channel"] * cur
        out["current_direct"] = out["i_n"] + out["i_p"]
        out["current"] = out["i_n_robust"] + out["i_p_robust"]
        if "temperature" in o:
            p_dens = s.power / s.volume
            out["temperature"] = o["temperature"] * s.T_ref
            out["T_max"] = o["T_max"] * s.T_ref
            out.update({k: o[k] * p_dens for k in ("heat", "heat_joule", "heat_recombination",
                                                   "heat_peltier", "light")})
            # (total, Joule, recombination, light) integrated: power units
            out["heat_by_kind"] = o["heat_total"] * s.power
        return out


def _phi_dofs(lay, sets, fallback):
    """(phi_n, phi_p) unknowns of carrier sets ``sets``; ``fallback`` where a set is -1."""
    has = sets >= 0
    idx = np.where(has, sets, 0)
    if lay.n_carriers == 0:
        return fallback, fallback
    return np.where(has, lay.phin_dof[idx], fallback), np.where(has, lay.phip_dof[idx], fallback)


__all__ = ["Device"]
