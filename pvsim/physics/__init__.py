"""Pointwise physics: functions of scalars (one site or one edge), vmapped by the assembly.

Everything here is in scaled units (see :mod:`pvsim.units`); no dof index or sparse
pattern appears in this package.
"""

from .bernoulli import bernoulli, bernoulli_derivative
from .flux import electron_flux, hole_flux
from .recombination import recombination_rates
from .statistics import log_densities, neutral_log_density

__all__ = [
    "bernoulli", "bernoulli_derivative", "log_densities", "neutral_log_density",
    "recombination_rates", "electron_flux", "hole_flux",
]
