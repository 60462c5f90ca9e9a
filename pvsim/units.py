"""Physical constants and the one place where pvsim scales and unscales.

All constants are CODATA values from :mod:`scipy.constants`. The solver works in scaled
variables (DESIGN.md, "Scaling"):

=============  =======================================  ==========================
quantity       scaled value                             reference
=============  =======================================  ==========================
length         x / L_ref                                L_ref = 10 nm
potential      psi / V_T                                V_T = k T_ref / q
density        n / N_ref                                N_ref = 1e24 m^-3
mobility       mu / mu_ref                              mu_ref = 1e-4 m^2/(V s)
rate           R * L_ref^2 / (mu_ref V_T N_ref)         (continuity balance)
current        I / (q mu_ref V_T N_ref L_ref^(d-2))     d = 3 for axisymmetric
velocity       v L_ref / (mu_ref V_T)                   (interface and contact fluxes)
sheet charge   sigma / (q N_ref L_ref)
temperature    T / T_ref                                (lattice temperature theta)
power          P / (current V_T)                        heat rows balance power
conductivity   kappa T_ref / (q mu_ref V_T^2 N_ref)     W/(m K)
conductance    h T_ref L_ref / (q mu_ref V_T^2 N_ref)   W/(m^2 K): Robin, interfaces
=============  =======================================  ==========================

Poisson in these units reads ``lambda2 * div(eps_r grad psi) = -(p - n + C)`` with
``lambda2 = eps0 V_T / (q N_ref L_ref^2)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import constants as sc

Q = sc.elementary_charge  # C
KB = sc.Boltzmann  # J/K
EPS0 = sc.epsilon_0  # F/m
M0 = sc.electron_mass  # kg
H = sc.Planck  # J s
HBAR = sc.hbar  # J s

#: length units accepted in case files and mesh loaders, in metres
LENGTH_UNITS = {"m": 1.0, "mm": 1e-3, "um": 1e-6, "nm": 1e-9, "cm": 1e-2, "A": 1e-10}

CM3 = 1e6  # 1 cm^-3 = 1e6 m^-3
CM2_VS = 1e-4  # 1 cm^2/(V s) = 1e-4 m^2/(V s)


def thermal_voltage(T: float) -> float:
    """k T / q in volts."""
    return KB * T / Q


@dataclass(frozen=True)
class Scales:
    """Reference values for the scaled system (static: hashable, never traced)."""

    T_ref: float = 300.0  # K
    L_ref: float = 1e-8  # m
    N_ref: float = 1e24  # m^-3
    mu_ref: float = 1e-4  # m^2/(V s)
    dim_eff: int = 1  # 1, 2, 3 (3 for axisymmetric): sets the current unit

    @property
    def V_T(self) -> float:
        return thermal_voltage(self.T_ref)

    @property
    def lambda2(self) -> float:
        return EPS0 * self.V_T / (Q * self.N_ref * self.L_ref**2)

    @property
    def rate(self) -> float:
        """m^-3 s^-1 per unit of scaled rate."""
        return self.mu_ref * self.V_T * self.N_ref / self.L_ref**2

    @property
    def current(self) -> float:
        """Unit of the scaled terminal current: A (3D, axisymmetric), A/m (2D), A/m^2 (1D)."""
        return Q * self.mu_ref * self.V_T * self.N_ref * self.L_ref ** (self.dim_eff - 2)

    @property
    def current_units(self) -> str:
        return {1: "A m-2", 2: "A m-1", 3: "A"}[self.dim_eff]

    @property
    def velocity(self) -> float:
        """m/s per unit of scaled velocity (flux per area = velocity x density)."""
        return self.mu_ref * self.V_T / self.L_ref

    @property
    def sheet_density(self) -> float:
        """m^-2 per unit of scaled sheet density."""
        return self.N_ref * self.L_ref

    @property
    def tunnel_constant(self) -> float:
        """2 L_ref sqrt(2 m0 k T) / hbar: b = tunnel_constant * d_scaled * sqrt(m_b / m0)."""
        return 2.0 * self.L_ref * (2.0 * M0 * KB * self.T_ref) ** 0.5 / HBAR

    def richardson_velocity(self, mass_m0: float) -> float:
        """sqrt(kT / (2 pi m*)) in scaled units."""
        return math.sqrt(KB * self.T_ref / (2 * math.pi * mass_m0 * M0)) / self.velocity

    @property
    def scott_malliaras(self) -> float:
        """16 pi eps0 (kT)^2 mu_ref / q^3 in scaled velocity units (times eps_r mu_hat)."""
        return 16 * math.pi * EPS0 * (KB * self.T_ref) ** 2 * self.mu_ref / Q**3 / self.velocity

    @property
    def power(self) -> float:
        """Unit of scaled power: W (3D, axisymmetric), W/m (2D), W/m^2 (1D)."""
        return self.current * self.V_T

    @property
    def conductivity(self) -> float:
        """W/(m K) per unit of scaled thermal conductivity."""
        return Q * self.mu_ref * self.V_T**2 * self.N_ref / self.T_ref

    @property
    def conductance(self) -> float:
        """W/(m^2 K) per unit of scaled heat-transfer coefficient or interface conductance."""
        return self.conductivity / self.L_ref

    @property
    def volume(self) -> float:
        """m^dim_eff per unit of scaled control volume."""
        return self.L_ref**self.dim_eff


def require_x64() -> None:
    """Stop with a clear message unless JAX runs in float64.

    pvsim never flips the global flag at import; its entry points call
    :func:`enable_x64` (CLI, case runner) or this check (library solves).
    """
    import jax

    if not jax.config.read("jax_enable_x64"):
        raise RuntimeError(
            "pvsim needs 64-bit floats: call `jax.config.update('jax_enable_x64', True)` "
            "before creating arrays (or `pvsim.enable_x64()`), or set JAX_ENABLE_X64=1."
        )


def enable_x64() -> None:
    """Turn on float64 in JAX (explicit, for scripts and the CLI), and the persistent
    compilation cache (:func:`enable_compilation_cache`): both are entry-point settings."""
    import jax

    jax.config.update("jax_enable_x64", True)
    enable_compilation_cache()


#: environment variable: a directory for the persistent compilation cache, or 0/off/false/no
CACHE_ENV = "PVSIM_JAX_CACHE"


def compilation_cache_dir() -> str | None:
    """Where compiled programs are kept: ``$PVSIM_JAX_CACHE`` (``0``, ``off``, ``false`` or
    ``no`` switch the cache off), else ``$XDG_CACHE_HOME/pvsim/jax`` (``~/.cache/pvsim/jax``)."""
    import os
    from pathlib import Path

    value = os.environ.get(CACHE_ENV, "").strip()
    if value.lower() in ("0", "off", "false", "no"):
        return None
    if value:
        return str(Path(value).expanduser())
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(root) / "pvsim" / "jax")


def enable_compilation_cache(min_compile_time_s: float = 1.0) -> str | None:
    """Turn on JAX's persistent compilation cache (entry points only: a global setting).

    A second run on the same mesh (same shapes, same back end) then loads the compiled
    residual, Jacobian and Newton loop from disk instead of compiling them again. Programs
    that compiled in under ``min_compile_time_s`` are not stored. Returns the directory,
    or None when switched off (``PVSIM_JAX_CACHE=0``). A directory already set by the user
    (``jax_compilation_cache_dir`` / ``JAX_COMPILATION_CACHE_DIR``) is kept.
    """
    import jax

    path = compilation_cache_dir()
    if path is None:
        return None
    current = jax.config.jax_compilation_cache_dir
    if current:
        return current
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_time_s))
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path
