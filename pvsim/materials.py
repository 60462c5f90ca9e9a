"""Material parameters in physical units and their conversion to scaled arrays.

Case files and users give materials in the units named by the field (eV, cm^-3,
cm^2/(V s), s, cm^3/s, cm^6/s); :func:`scaled_material` is the one place they become the
scaled :class:`pvsim.params.Material` arrays the residual uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax.numpy as jnp
import numpy as np

from .params import Interface, Material
from .units import CM2_VS, CM3, KB, Q, Scales

KB_EV = KB / Q  # eV/K


@dataclass(frozen=True)
class MaterialSpec:
    """One material. ``kind`` is "semiconductor" or "insulator" (insulators: eps_r only).

    A lifetime of ``inf`` (the default) switches SRH off; B, Cn, Cp default to 0.
    ``statistics``: "boltzmann", "blakemore", "fermi_dirac" (F_1/2) or "gauss_fermi" (then
    Nc/Nv are the site densities N0 and the affinity/gap place the Gaussian centres, LUMO and
    HOMO; ``disorder_n_eV``/``disorder_p_eV`` are their widths sigma). ``poole_frenkel_n``/``_p``:
    gamma in (cm/V)^1/2, mu = mu0 exp(gamma sqrt(|F|)).

    Values are at 300 K; the temperature laws of :mod:`pvsim.physics.thermal` carry them to
    the simulation temperature and, with heat on, to the local lattice temperature:
    ``thermal_conductivity_W_mK`` (needed with heat on) ~ (T/300 K)^-``kappa_T_exponent``,
    ``band_gap_T_coeff_eV_K`` (dE_g/dT), mobility ~ (T/300 K)^-``mobility_T_exponent_n``
    times exp(-(2 sigma/3kT)^2) with sigma = ``mobility_disorder_n_eV`` (Gaussian disorder;
    0: off), ``photon_energy_eV`` (default E_g(T) + kT) for the light leaving the device.
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
    statistics: str = "boltzmann"
    disorder_n_eV: float = 0.0
    disorder_p_eV: float = 0.0
    poole_frenkel_n: float = 0.0
    poole_frenkel_p: float = 0.0
    thermal_conductivity_W_mK: float | None = None
    kappa_T_exponent: float = 0.0
    band_gap_T_coeff_eV_K: float = 0.0
    mobility_T_exponent_n: float = 0.0
    mobility_T_exponent_p: float = 0.0
    mobility_disorder_n_eV: float = 0.0
    mobility_disorder_p_eV: float = 0.0
    photon_energy_eV: float | None = None

    @property
    def is_semiconductor(self) -> bool:
        return self.kind == "semiconductor"


def _column(specs, f):
    """(len(specs),) float array of f(spec) over the specs."""
    return jnp.asarray(np.array([f(s) for s in specs], dtype=float))


T_MATERIAL = 300.0  # K, the temperature at which material values are given


def scaled_material(specs: list[MaterialSpec], scales: Scales) -> Material:
    """Stack per-region specs into scaled (R,) arrays at the simulation temperature."""
    kT = scales.V_T  # eV per kT
    ratio = scales.T_ref / T_MATERIAL
    band = lambda s: s.statistics != "gauss_fermi"  # noqa: E731  (Nc ~ T^3/2)

    def mobility(s, mu, gamma, sigma):  # the 300 K value carried to T_ref
        gdm = (2 * sigma / (3 * KB_EV)) ** 2 * (1 / scales.T_ref**2 - 1 / T_MATERIAL**2)
        return mu * CM2_VS / scales.mu_ref * ratio**-gamma * np.exp(-gdm)

    col = partial(_column, specs)
    rate = scales.rate
    # scaled rate R/rate with rate = mu_ref V_T N_ref / L_ref^2 (units.Scales.rate):
    # tau_hat = tau rate / N_ref, B_hat = B N_ref^2 / rate, C_hat = C N_ref^3 / rate
    tau = lambda t: t * rate / scales.N_ref  # noqa: E731
    return Material(
        eps_r=col(lambda s: s.eps_r),
        chi=col(lambda s: s.electron_affinity_eV / kT),
        Eg=col(lambda s: (s.band_gap_eV + s.band_gap_T_coeff_eV_K * (scales.T_ref - T_MATERIAL)) / kT),
        lnNc=col(lambda s: np.log(s.Nc_cm3 * CM3 / scales.N_ref) + 1.5 * band(s) * np.log(ratio)),
        lnNv=col(lambda s: np.log(s.Nv_cm3 * CM3 / scales.N_ref) + 1.5 * band(s) * np.log(ratio)),
        mu_n=col(lambda s: mobility(s, s.mu_n_cm2_Vs, s.mobility_T_exponent_n, s.mobility_disorder_n_eV)),
        mu_p=col(lambda s: mobility(s, s.mu_p_cm2_Vs, s.mobility_T_exponent_p, s.mobility_disorder_p_eV)),
        tau_n=col(lambda s: tau(s.tau_n_s)),
        tau_p=col(lambda s: tau(s.tau_p_s)),
        Et=col(lambda s: s.trap_level_eV / kT),
        B=col(lambda s: s.radiative_B_cm3_s * 1e-6 * scales.N_ref**2 / rate),
        Cn=col(lambda s: s.auger_Cn_cm6_s * 1e-12 * scales.N_ref**3 / rate),
        Cp=col(lambda s: s.auger_Cp_cm6_s * 1e-12 * scales.N_ref**3 / rate),
        sigma_n=col(lambda s: s.disorder_n_eV / kT),
        sigma_p=col(lambda s: s.disorder_p_eV / kT),
        # gamma sqrt(F[V/cm]) = gamma sqrt(V_T / (100 L_ref)) sqrt(F_scaled)
        pf_n=col(lambda s: s.poole_frenkel_n) * np.sqrt(kT / (100 * scales.L_ref)),
        pf_p=col(lambda s: s.poole_frenkel_p) * np.sqrt(kT / (100 * scales.L_ref)),
        kappa=col(lambda s: (s.thermal_conductivity_W_mK or 0.0) * ratio**-s.kappa_T_exponent
                  / scales.conductivity),
        kappa_exp=col(lambda s: s.kappa_T_exponent),
        dEg=col(lambda s: s.band_gap_T_coeff_eV_K * scales.T_ref / kT),
        dos_exp=col(lambda s: 1.5 * band(s)),
        mu_exp_n=col(lambda s: s.mobility_T_exponent_n),
        mu_exp_p=col(lambda s: s.mobility_T_exponent_p),
        mu_gdm_n=col(lambda s: (2 * s.mobility_disorder_n_eV / (3 * kT)) ** 2),
        mu_gdm_p=col(lambda s: (2 * s.mobility_disorder_p_eV / (3 * kT)) ** 2),
        photon=col(lambda s: (s.photon_energy_eV or 0.0) / kT),
    )


@dataclass(frozen=True)
class InterfaceSpec:
    """An interface between two regions and what happens there (physical units).

    model: "continuous" (shared quasi-Fermi levels, the default), "thermionic" or
    "tunnelling" (each side its own quasi-Fermi levels, coupled by the flux of
    :mod:`pvsim.physics.interface`). velocity: "richardson" (sqrt(kT / 2 pi m*) with
    ``electron_mass``/``hole_mass``), "scott_malliaras" (the organic side named by
    ``organic_region``) or a fixed ``velocity_cm_s``. Tunnelling adds a rectangular barrier
    of ``barrier_thickness_nm`` and heights ``electron_barrier_eV``/``hole_barrier_eV`` above
    the higher band edge, with tunnelling masses ``barrier_mass_n``/``_p`` (m0).
    Any model can carry surface SRH (``s_n_cm_s``, ``s_p_cm_s``, ``trap_level_eV``) and a
    fixed sheet charge (``sheet_charge_cm2``, elementary charges per cm^2, signed).
    """

    regions: tuple[str, str]
    model: str = "continuous"
    velocity: str = "richardson"
    velocity_cm_s: float | None = None
    electron_mass: float = 1.0
    hole_mass: float = 1.0
    organic_region: str | None = None
    barrier_thickness_nm: float = 0.0
    electron_barrier_eV: float = 0.0
    hole_barrier_eV: float = 0.0
    barrier_mass_n: float = 1.0
    barrier_mass_p: float = 1.0
    s_n_cm_s: float = 0.0
    s_p_cm_s: float = 0.0
    trap_level_eV: float = 0.0
    sheet_charge_cm2: float = 0.0
    thermal_conductance_MW_m2K: float | None = None  # heat: a temperature jump (Kapitza)

    @property
    def split(self) -> bool:
        return self.model != "continuous"


def scaled_interfaces(specs: list[InterfaceSpec], scales: Scales) -> Interface:
    """Stack interface specs into scaled (I,) arrays."""
    kT, vel = scales.V_T, scales.velocity

    col = partial(_column, specs)

    def v0(s, mass):
        if s.velocity_cm_s is not None:
            return s.velocity_cm_s * 1e-2 / vel
        return scales.richardson_velocity(mass) if s.velocity == "richardson" else 0.0

    sm = lambda s: scales.scott_malliaras if s.velocity == "scott_malliaras" else 0.0  # noqa: E731
    tunnel = lambda s: s.model == "tunnelling"  # noqa: E731
    return Interface(
        flux=col(lambda s: float(s.split)),
        v_n=col(lambda s: v0(s, s.electron_mass)), v_p=col(lambda s: v0(s, s.hole_mass)),
        sm_n=col(sm), sm_p=col(sm),
        barrier_n=col(lambda s: s.electron_barrier_eV / kT if tunnel(s) else 0.0),
        barrier_p=col(lambda s: s.hole_barrier_eV / kT if tunnel(s) else 0.0),
        thickness=col(lambda s: s.barrier_thickness_nm * 1e-9 / scales.L_ref if tunnel(s) else 0.0),
        mass_n=col(lambda s: s.barrier_mass_n), mass_p=col(lambda s: s.barrier_mass_p),
        s_n=col(lambda s: s.s_n_cm_s * 1e-2 / vel), s_p=col(lambda s: s.s_p_cm_s * 1e-2 / vel),
        trap=col(lambda s: s.trap_level_eV / kT),
        sheet=col(lambda s: s.sheet_charge_cm2 * 1e4 / scales.sheet_density),
    )
