"""Doping profiles, evaluated at the sites of a region.

Each region carries a list of profiles whose contributions add (net doping
C = N_D - N_A, m^-3):

* ``uniform``: constant donors and/or acceptors;
* ``step``: donors/acceptors where the coordinate along ``axis`` is >= ``position`` (or
  < it with ``side = "below"``);
* ``gaussian``: peak * exp(-(d / sigma)^2 / 2), d the distance from ``center`` along
  ``axis`` (a Gaussian implant profile).

Positions are in metres here; the case loader converts the ``_nm`` keys.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .units import CM3

AXES = {"x": 0, "y": 1, "z": 2}


@dataclass(frozen=True)
class DopingProfile:
    type: str = "uniform"
    donors_cm3: float = 0.0
    acceptors_cm3: float = 0.0
    axis: str = "x"
    position_m: float = 0.0  # step
    side: str = "above"  # step
    center_m: float = 0.0  # gaussian
    sigma_m: float = 1e-9  # gaussian

    def net(self, coords: np.ndarray) -> np.ndarray:
        """Net doping (m^-3) at coordinates (S, dim)."""
        value = (self.donors_cm3 - self.acceptors_cm3) * CM3
        if self.type == "uniform":
            return np.full(len(coords), value)
        axis = AXES[self.axis]
        if axis >= coords.shape[1]:
            raise ValueError(f"doping axis '{self.axis}' does not exist in a {coords.shape[1]}D mesh")
        x = coords[:, axis]
        if self.type == "step":
            inside = x >= self.position_m if self.side == "above" else x < self.position_m
            return np.where(inside, value, 0.0)
        if self.type == "gaussian":
            return value * np.exp(-0.5 * ((x - self.center_m) / self.sigma_m) ** 2)
        raise ValueError(f"doping profile type '{self.type}' unknown (uniform, step, gaussian)")


def net_doping(profiles, coords) -> np.ndarray:
    total = np.zeros(len(coords))
    for p in profiles:
        total = total + p.net(coords)
    return total
