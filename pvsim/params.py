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


def gather(tree, index):
    """Index every leaf of a pytree (region arrays -> site or edge arrays)."""
    return jax.tree_util.tree_map(lambda a: a[index], tree)

