"""Figures of merit: one definition of each formula, for post-processing and inverse design.

Two layers:

* The **array layer**, :class:`arrays`: pure functions of arrays (integrated currents,
  weights, coordinates). They use plain arithmetic, or pick the array module of their input
  (``numpy`` for numpy arrays, ``jax.numpy`` for JAX arrays and tracers), so the same
  formula serves :mod:`pvsim.post` (numpy, on a results Dataset) and the differentiable
  inverse design (JAX, under ``jit``/``grad``). Reductions run over the last axis.
* The **device-state functions** below take (device, state, params), with ``state`` a
  :class:`~pvsim.adjoint.SteadyState` (or anything with ``ref`` and ``delta``), and are pure
  JAX functions: ``jax.grad`` through :func:`pvsim.adjoint.make_steady_state` gives exact
  sensitivities. They gather the integrals from the state and apply the array layer.

Currents are in ``device.scales.current_units`` (A/m^2 in 1D, A/m in 2D, A in 3D and
axisymmetric), rates integrated over the device volume.

* :func:`terminal_currents`: direct currents into the device at every contact (split state,
  full precision).
* :func:`recombination_currents`: q * integral of R_srh, R_rad, R_auger, and the surface SRH
  of all interfaces.
* :func:`recombination_fractions`: the share of each of those channels (sums to 1).
* :func:`iqe`: internal quantum efficiency q int R_rad dV / |I(contact)|.
* :func:`eqe`: IQE times an outcoupling efficiency.
* :func:`charge_balance`: q int (R_srh + R_rad + R_auger) dV plus the interface (surface)
  recombination current, over |I(contact)|: the fraction of the current that recombines
  inside the device (leakage of either carrier to the opposite contact lowers it).
* :func:`recombination_zone`: centroid and width (standard deviation) of the radiative
  recombination along one coordinate.
* :func:`region_current_fraction`: q int_region R dV / |I|, the share of the current that
  recombines in one region (the NCs under an aperture, one target NC).
* :func:`peak_temperature`, :func:`peak_field`: smooth (log-sum-exp) maxima of the lattice
  temperature (K) and of the field magnitude (V/m) over the device or one region.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def _module(x):
    """The array module of ``x``: ``jax.numpy`` for JAX arrays and tracers, else ``numpy``."""
    return jnp if isinstance(x, jax.Array) else np


class arrays:
    """Array layer: the formulas of the figures of merit on plain arrays (numpy or JAX).

    Currents are integrated currents in one unit (any: the figures are ratios); arrays may
    carry leading batch axes (e.g. bias), reductions run over the last axis.
    """

    @staticmethod
    def iqe(r_rad_current, terminal_current):
        """Internal quantum efficiency: q int R_rad dV / |I|."""
        return r_rad_current / abs(terminal_current)

    @staticmethod
    def charge_balance(recombination_current_total, terminal_current):
        """q int (R_srh + R_rad + R_auger) dV + interface recombination current, over |I|.

        With no generation, the hole balance gives q int R = sum_k I_p(k) and so, for a
        two-contact LED driven at the anode, charge balance = 1 - (I_n(anode) - I_p(cathode))/I:
        the electrons leaving at the anode and the holes leaving at the cathode lower it.
        """
        return recombination_current_total / abs(terminal_current)

    @staticmethod
    def recombination_fractions(channels):
        """Share of each channel (last axis) in the total recombination; sums to 1."""
        return channels / channels.sum(axis=-1, keepdims=True)

    @staticmethod
    def zone(weights, x):
        """(centroid, width) of a non-negative weight distribution over positions ``x``
        (last axis): the weighted mean and standard deviation. Weights are rate times
        control volume (e.g. R_rad * volume) so that the sums are integrals."""
        total = weights.sum(axis=-1)
        mean = (weights * x).sum(axis=-1) / total
        var = (weights * (x - mean[..., None]) ** 2).sum(axis=-1) / total
        return mean, var ** 0.5

    @staticmethod
    def smooth_max(values, sharpness, axis=-1):
        """Log-sum-exp maximum, max(v) <= result <= max(v) + log(N) / sharpness.

        ``sharpness`` is in inverse units of ``values`` (1/K for a temperature, m/V for a
        field); the result tends to max(values) as it grows, and is differentiable: its
        gradient is the softmax weight of each value (peak temperature, peak field).
        """
        xp = _module(values)
        m = xp.max(values, axis=axis, keepdims=True)
        if xp is jnp:
            m = jax.lax.stop_gradient(m)  # the result does not depend on the shift
        lse = xp.log(xp.sum(xp.exp(sharpness * (values - m)), axis=axis)) / sharpness
        return xp.squeeze(m, axis=axis) + lse

    @staticmethod
    def region_fraction(rate_in_region, total):
        """Share of a total that belongs to one region: ``rate_in_region / |total|`` (e.g.
        q int_region R dV over the terminal current)."""
        return rate_in_region / abs(total)

    @staticmethod
    def cell_gradient(x, values):
        """P1 gradient per simplex: ``x`` (M, d+1, d) corner coordinates, ``values``
        (..., M, d+1) corner values; returns (..., M, d). The rows of the edge matrix are
        x_k - x_0, so (x_k - x_0) . grad = v_k - v_0."""
        xp = _module(values) if _module(x) is np else jnp
        inv = xp.linalg.inv(x[:, 1:, :] - x[:, :1, :])
        return xp.einsum("mij,...mj->...mi", inv, values[..., 1:] - values[..., :1])

    @staticmethod
    def eqe(iqe, outcoupling):
        """External quantum efficiency: IQE times the outcoupling (light-extraction) efficiency."""
        return iqe * outcoupling


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


def _current(device, state, params, contact):
    return terminal_currents(device, state, params)[_contact(device, contact)]


def recombination_fractions(device, state, params):
    """Share of each channel (srh, radiative, auger, interface) in the recombination, (4,)."""
    return arrays.recombination_fractions(recombination_currents(device, state, params))


def iqe(device, state, params, contact="anode"):
    """q int R_rad dV / |I(contact)|."""
    i = _current(device, state, params, contact)
    return arrays.iqe(recombination_currents(device, state, params)[1], i)


def eqe(device, state, params, contact="anode", outcoupling=0.2):
    """IQE times the outcoupling efficiency."""
    return arrays.eqe(iqe(device, state, params, contact), outcoupling)


def charge_balance(device, state, params, contact="anode"):
    """q int R dV / |I(contact)| (all channels): 1 when every injected pair recombines inside."""
    i = _current(device, state, params, contact)
    return arrays.charge_balance(jnp.sum(recombination_currents(device, state, params)), i)


def recombination_zone(device, state, params, axis: int = 0):
    """(centroid, width) in metres of R_rad along coordinate ``axis`` (R_rad-weighted mean and
    standard deviation)."""
    _, _, (_, r_rad, _), vol = device.site_state(state.ref, state.delta, params)
    x = jnp.asarray(device.mesh.points[device.disc.site_node, axis])
    return arrays.zone(vol * r_rad, x)


def _region_sites(device, region):
    if region is None:
        return np.arange(device.disc.n_sites)
    from .design import region_index

    return np.nonzero(device.disc.site_region == region_index(device, region))[0]


def region_current_fraction(device, state, params, region, contact="anode"):
    """q int_region (R_srh + R_rad + R_auger) dV / |I(contact)|: the share of the terminal
    current that recombines in ``region`` (interface recombination belongs to no region)."""
    _, _, rates, vol = device.site_state(state.ref, state.delta, params)
    sites = _region_sites(device, region)
    rate = jnp.sum((vol * sum(rates))[sites]) * device.scales.current
    return arrays.region_fraction(rate, _current(device, state, params, contact))


def peak_temperature(device, state, params, sharpness=1.0, region=None):
    """Smooth maximum (K) of the lattice temperature over the sites of ``region`` (all by
    default); ``sharpness`` in 1/K (1: within log(N) K of the maximum)."""
    theta = device.site_temperature(state.ref + state.delta)
    if theta is None:
        raise ValueError("peak_temperature needs a device with heat on ([heat] in the case)")
    t = theta[_region_sites(device, region)] * device.scales.T_ref
    return arrays.smooth_max(t, sharpness)


def peak_field(device, state, params, sharpness=1e-6, region=None):
    """Smooth maximum (V/m) of the field magnitude |grad psi| per element over ``region``
    (all elements by default); ``sharpness`` in m/V (1e-6: within log(N) MV/m). Uses the
    morphed node coordinates when ``params.geometry`` carries them."""
    mesh = device.mesh
    names = list(mesh.regions) if region is None else [region]
    cells = np.concatenate([mesh.regions[r] for r in names])
    geo = params.geometry
    x = (jnp.asarray(mesh.points) if geo is None or geo.points is None
         else geo.points * device.L_ref)
    if mesh.axisymmetric or mesh.dim < x.shape[1]:
        x = x[:, :mesh.dim]
    psi = (state.ref + state.delta)[device.asm.psi_dof] * device.scales.V_T
    grad = arrays.cell_gradient(x[cells], psi[cells])
    return arrays.smooth_max(jnp.sqrt(jnp.sum(grad**2, axis=-1) + 1e-30), sharpness)
