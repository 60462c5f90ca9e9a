"""Differentiable figures of merit of a steady state.

Every function takes (device, state, params), with ``state`` a
:class:`~pvsim.adjoint.SteadyState` (or anything with ``ref`` and ``delta``), and is a pure
JAX function: ``jax.grad`` through :func:`pvsim.adjoint.make_steady_state` gives exact
sensitivities. Currents are in ``device.scales.current_units`` (A/m^2 in 1D, A/m in 2D,
A in 3D and axisymmetric), rates integrated over the device volume.

* :func:`terminal_currents`: direct currents into the device at every contact (split state,
  full precision).
* :func:`recombination_currents`: q * integral of R_srh, R_rad, R_auger, and the surface SRH
  of all interfaces.
* :func:`iqe`: internal quantum efficiency q int R_rad dV / |I(contact)|.
* :func:`charge_balance`: q int (R_srh + R_rad + R_auger) dV / |I(contact)|: the fraction of
  the current that recombines inside the device (leakage of either carrier to the opposite
  contact lowers it).
* :func:`recombination_zone`: centroid and width (standard deviation) of the radiative
  recombination along one coordinate.
"""

from __future__ import annotations

import jax.numpy as jnp


def terminal_currents(device, state, params):
    """Direct terminal currents (K,) into the device, from the split state."""
    i_n, i_p = device.asm.terminal_currents(state.delta, params, state.ref)
    return (i_n + i_p) * device.scales.current


def recombination_currents(device, state, params):
    """q int R dV per channel (srh, radiative, auger, interface), in current units, (4,)."""
    _, _, rates, vol = device.site_state(state.ref, state.delta, params)
    surface = device.asm.interface_recombination(state.delta, params, state.ref)
    return jnp.stack([jnp.sum(vol * r) for r in rates] + [surface]) * device.scales.current


def _contact(device, contact):
    return device.contact_names.index(contact) if isinstance(contact, str) else int(contact)


def iqe(device, state, params, contact="anode"):
    """q int R_rad dV / |I(contact)|."""
    i = terminal_currents(device, state, params)[_contact(device, contact)]
    return recombination_currents(device, state, params)[1] / jnp.abs(i)


def charge_balance(device, state, params, contact="anode"):
    """q int R dV / |I(contact)| (all channels): 1 when every injected pair recombines inside."""
    i = terminal_currents(device, state, params)[_contact(device, contact)]
    return jnp.sum(recombination_currents(device, state, params)) / jnp.abs(i)


def recombination_zone(device, state, params, axis: int = 0):
    """(centroid, width) in metres of R_rad along coordinate ``axis`` (R_rad-weighted mean and
    standard deviation)."""
    _, _, (_, r_rad, _), vol = device.site_state(state.ref, state.delta, params)
    x = jnp.asarray(device.mesh.points[device.disc.site_node, axis])
    w = vol * r_rad
    total = jnp.sum(w)
    mean = jnp.sum(w * x) / total
    return mean, jnp.sqrt(jnp.sum(w * (x - mean) ** 2) / total)
