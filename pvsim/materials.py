"""Material parameters in physical units and their conversion to scaled arrays.

Case files and users give materials in the units named by the field (eV, cm^-3,
cm^2/(V s), s, cm^3/s, cm^6/s); :func:`scaled_material` is the one place they become the
scaled :class:`pvsim.params.Material` arrays the residual uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from .params import Material
from .units import CM2_VS, CM3, Scales


@dataclass(frozen=True)
class MaterialSpec:
    """One material. ``kind`` is "semiconductor" or "insulator" (insulators: eps_r only).

    A lifetime of ``inf`` (the default) switches SRH off; B, Cn, Cp default to 0.
    """

    kind: str = "semiconductor"
    eps_r: float = 1.0
    electron_affinity_eV: float = 4.0
    band_gap_eV: float = 1.0
    Nc_cm3: float = 1e19
    Nv_cm3: float = 1e19
    mu_n_cm2_Vs: float = 1.0
    mu_p_cm2_Vs: float = 1.0
    tau_n_s: float = float("inf")
    tau_p_s: float = float("inf")
    trap_level_eV: float = 0.0  # E_t - E_i
    radiative_B_cm3_s: float = 0.0
    auger_Cn_cm6_s: float = 0.0
    auger_Cp_cm6_s: float = 0.0

    @property
    def is_semiconductor(self) -> bool:
        return self.kind == "semiconductor"


def scaled_material(specs: list[MaterialSpec], scales: Scales) -> Material:
    """Stack per-region specs into scaled (R,) arrays."""
    kT = scales.V_T  # eV per kT

    def col(f):
        return np.array([f(s) for s in specs], dtype=float)

    rate = scales.rate
    # scaled rate R/rate with rate = mu_ref V_T N_ref / L_ref^2 (units.Scales.rate):
    # tau_hat = tau rate / N_ref, B_hat = B N_ref^2 / rate, C_hat = C N_ref^3 / rate
    tau = lambda t: t * rate / scales.N_ref  # noqa: E731
    return Material(
        eps_r=jnp.asarray(col(lambda s: s.eps_r)),
        chi=jnp.asarray(col(lambda s: s.electron_affinity_eV / kT)),
        Eg=jnp.asarray(col(lambda s: s.band_gap_eV / kT)),
        lnNc=jnp.asarray(col(lambda s: np.log(s.Nc_cm3 * CM3 / scales.N_ref))),
        lnNv=jnp.asarray(col(lambda s: np.log(s.Nv_cm3 * CM3 / scales.N_ref))),
        mu_n=jnp.asarray(col(lambda s: s.mu_n_cm2_Vs * CM2_VS / scales.mu_ref)),
        mu_p=jnp.asarray(col(lambda s: s.mu_p_cm2_Vs * CM2_VS / scales.mu_ref)),
        tau_n=jnp.asarray(col(lambda s: tau(s.tau_n_s))),
        tau_p=jnp.asarray(col(lambda s: tau(s.tau_p_s))),
        Et=jnp.asarray(col(lambda s: s.trap_level_eV / kT)),
        B=jnp.asarray(col(lambda s: s.radiative_B_cm3_s * 1e-6 * scales.N_ref**2 / rate)),
        Cn=jnp.asarray(col(lambda s: s.auger_Cn_cm6_s * 1e-12 * scales.N_ref**3 / rate)),
        Cp=jnp.asarray(col(lambda s: s.auger_Cp_cm6_s * 1e-12 * scales.N_ref**3 / rate)),
    )
