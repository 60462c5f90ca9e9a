"""Parameter pytrees passed to the residual (scaled units, see :mod:`pvsim.units`).

Parameters are data, never state: the residual is a pure function F(u; params) and
``jax.grad``/``jax.vmap`` act on any leaf. Region-level arrays have shape (R,) and are
gathered to sites and edges by the assembly; insulator regions only use ``eps_r``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import jax


def _pytree(cls):
    """Register a frozen dataclass as a pytree whose fields are all leaves."""
    names = [f.name for f in fields(cls)]
    return jax.tree_util.register_dataclass(cls, data_fields=names, meta_fields=[])


@_pytree
@dataclass(frozen=True)
class Material:
    """Per-region material arrays, shape (R,), scaled (energies by kT, densities by N_ref)."""

    eps_r: jax.Array
    chi: jax.Array  # electron affinity / kT
    Eg: jax.Array  # band gap / kT
    lnNc: jax.Array  # ln(Nc / N_ref)
    lnNv: jax.Array
    mu_n: jax.Array  # / mu_ref
    mu_p: jax.Array
    tau_n: jax.Array  # tau * mu_ref V_T / L_ref^2
    tau_p: jax.Array
    Et: jax.Array  # (E_t - E_i) / kT
    B: jax.Array  # radiative coefficient * N_ref / rate
    Cn: jax.Array  # Auger * N_ref^2 / rate
    Cp: jax.Array
    sigma_n: jax.Array  # Gaussian disorder / kT (Gauss–Fermi statistics only)
    sigma_p: jax.Array
    pf_n: jax.Array  # Poole–Frenkel coefficient: mu = mu0 exp(pf sqrt(|d psi| / length))
    pf_p: jax.Array
    # temperature laws and heat (see :mod:`pvsim.physics.thermal`; None: isothermal use only)
    kappa: jax.Array | None = None  # thermal conductivity at T_ref / Scales.conductivity
    kappa_exp: jax.Array | None = None  # kappa ~ theta^-kappa_exp
    dEg: jax.Array | None = None  # dE_g/dT * T_ref / kT_ref
    dos_exp: jax.Array | None = None  # Nc, Nv ~ theta^dos_exp (1.5 bands, 0 Gauss–Fermi)
    mu_exp_n: jax.Array | None = None  # mobility power law exponent gamma
    mu_exp_p: jax.Array | None = None
    mu_gdm_n: jax.Array | None = None  # Gaussian-disorder coefficient (2 sigma / 3 kT_ref)^2
    mu_gdm_p: jax.Array | None = None
    photon: jax.Array | None = None  # photon energy / kT_ref, or <= 0: E_g(T) + kT


@_pytree
@dataclass(frozen=True)
class Interface:
    """Per-interface arrays, shape (I,), scaled (see :mod:`pvsim.physics.interface`)."""

    flux: jax.Array  # 1.0: the link carries thermionic/tunnelling flux; 0.0: continuous
    v_n: jax.Array  # emission velocity / Scales.velocity (Richardson, or a given value)
    v_p: jax.Array
    sm_n: jax.Array  # Scott–Malliaras: velocity += sm * eps_r * mu of the organic side
    sm_p: jax.Array
    barrier_n: jax.Array  # tunnelling barrier above the higher band edge / kT (0: none)
    barrier_p: jax.Array
    thickness: jax.Array  # barrier thickness / L_ref
    mass_n: jax.Array  # barrier (tunnelling) effective mass / m0
    mass_p: jax.Array
    s_n: jax.Array  # surface recombination velocities / Scales.velocity (0: none)
    s_p: jax.Array
    trap: jax.Array  # surface trap level relative to the effective midgap / kT
    sheet: jax.Array  # fixed sheet charge / (q N_ref L_ref)


@_pytree
@dataclass(frozen=True)
class Thermal:
    """Heat boundary and interface parameters, scaled (temperatures by T_ref, heat-transfer
    coefficients and conductances by Scales.conductance)."""

    fixed_T: jax.Array  # (Bf,) temperature of each fixed-temperature boundary
    robin_h: jax.Array  # (Br,) heat-transfer coefficient of each Robin boundary
    robin_T: jax.Array  # (Br,) ambient temperature of each Robin boundary
    conductance: jax.Array  # (I,) interface thermal conductance (inf: no jump)
    escape: jax.Array  # () fraction of the radiated photon energy that leaves the device
    source: jax.Array  # (R,) external heat source per region (absorbed light, ...) / power density


@_pytree
@dataclass(frozen=True)
class Geometry:
    """Mesh geometry computed in JAX from node coordinates (shape gradients by mesh
    morphing, DESIGN.md "Shape gradients"); see :meth:`pvsim.device.Device.geometry`."""

    edge_weight: jax.Array  # (E,) EAFE weights, scaled
    site_volume: jax.Array  # (S,) lumped control volumes, scaled
    edge_length: jax.Array  # (E,) scaled
    points: jax.Array | None = None  # (N, dim) scaled node coordinates: interface, contact and
    # Robin areas are then recomputed from them too (None: the mesh's own areas)


@_pytree
@dataclass(frozen=True)
class Params:
    """Everything the residual depends on besides the state."""

    material: Material
    doping: jax.Array  # (S,) net doping N_D - N_A per site / N_ref
    generation: jax.Array  # (S,) pair generation rate per site (scaled like R)
    voltage: jax.Array  # (K,) contact voltages / V_T (initial values for current-controlled)
    current: jax.Array  # (K,) set currents (scaled) of current-controlled contacts
    work_function: jax.Array  # (K,) / kT, used by work-function contacts
    hold_voltage: jax.Array  # (K,) 1.0: a current-controlled contact held at ``voltage`` instead
    interface: Interface
    contact_v_n: jax.Array  # (K,) surface recombination velocities of Schottky contacts
    contact_v_p: jax.Array
    geometry: Geometry | None = None  # None: the mesh's own geometry (precomputed)
    thermal: Thermal | None = None  # heat on: boundary and interface parameters


def gather(tree, index):
    """Index every leaf of a pytree (region arrays -> site or edge arrays)."""
    return jax.tree_util.tree_map(lambda a: a[index], tree)

