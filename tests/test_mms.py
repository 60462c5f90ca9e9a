"""Manufactured solutions on unstructured gmsh meshes: L2 order >= 1.9 under refinement.

The production residual and Jacobian (``Assembler.raw``) are solved with Dirichlet data
taken from the exact solution on the whole boundary. Sources are derived from the exact
fields with JAX autodiff (independently of the discretisation): the Poisson source enters
through the per-site doping, the continuity source through the per-site generation.

* Poisson (nonlinear: the charge p - n + C is part of the residual): 2D, 3D, axisymmetric.
* Drift-diffusion (psi and phi_n coupled, phi_p given): 1D and 2D, with potential drops
  from ~8 V_T per edge on the coarsest mesh down to ~1 V_T (2D) and 0.5 V_T (1D), i.e.
  drift-dominated edges, where Scharfetter–Gummel matters.

  Measured (1D, total rise 30 V_T): fitted order 1.92 over 5 meshes, local orders rising
  from ~1.8 (7 -> 4 V_T per edge) to 2.0. SG tends to upwinding (first order) as the
  cell Peclet number grows, so a fit that starts at 10 V_T per edge gives ~1.8 (1.76 at a
  40 V_T rise): the asymptotic order 2 needs the finer meshes in the fit.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pvsim.assembly import build_assembler
from pvsim.discretize import discretize
from pvsim.geometry import Layer, box, layer_stack
from pvsim.layout import build_layout
from pvsim.materials import scaled_interfaces
from pvsim.params import Material, Params
from pvsim.units import Scales
from pvsim.verification import convergence_order, solve_dirichlet

EG = 2.0  # scaled band gap (kT units): ni = e^-1 with Nc = Nv = N_ref


def _no_contacts():
    """voltage, current, work_function, hold_voltage, interface, contact velocities: none."""
    z = jnp.zeros(0)
    return z, z, z, z, scaled_interfaces([], Scales()), z, z


def _material():
    one = jnp.ones(1)
    return Material(eps_r=one, chi=0 * one, Eg=EG * one, lnNc=0 * one, lnNv=0 * one,
                    mu_n=one, mu_p=one, tau_n=jnp.inf * one, tau_p=jnp.inf * one, Et=0 * one,
                    B=0 * one, Cn=0 * one, Cp=0 * one, sigma_n=0 * one, sigma_p=0 * one,
                    pf_n=0 * one, pf_p=0 * one)


def _laplacian(f, axisymmetric):
    def lap(x):
        h = jnp.trace(jax.hessian(f)(x))
        if axisymmetric:  # (1/r) d/dr (r df/dr) = f_rr + f_r / r  (-> 2 f_rr on the axis)
            r = jnp.maximum(x[0], 1e-9)
            h = h + jax.grad(f)(x.at[0].set(r))[0] / r
        return h
    return lap


def _divergence(vec):
    return lambda x: jnp.trace(jax.jacfwd(vec)(x))


def _setup(mesh):
    disc = discretize(mesh, L_ref=1.0)
    layout = build_layout(disc, np.array([True]), ())
    asm = build_assembler(disc, layout, lambda2=1.0)
    x_site = jnp.asarray(mesh.points[disc.site_node])
    boundary = np.zeros(mesh.n_nodes, bool)
    for name in mesh.boundaries:
        if not (mesh.axisymmetric and name == "xmin"):  # the axis is a natural boundary
            boundary[mesh.boundary_nodes(name)] = True
    return disc, layout, asm, x_site, boundary


def _l2(disc, values_h, values_exact):
    return float(np.sqrt(np.sum(disc.site_volume * (values_h - values_exact) ** 2)))


def _h(mesh):
    vol = np.prod(np.ptp(mesh.points, axis=0))
    return (vol / mesh.n_nodes) ** (1.0 / mesh.dim)


def _poisson_error(mesh, psi_exact):
    disc, layout, asm, xs, boundary = _setup(mesh)
    lap = jax.vmap(_laplacian(psi_exact, mesh.axisymmetric))
    psi_s = jax.vmap(psi_exact)(xs)
    # -lap(psi) = p - n + C with phi = 0: n = e^psi, p = e^(-psi - Eg)
    doping = -lap(xs) - jnp.exp(-psi_s - EG) + jnp.exp(psi_s)
    params = Params(_material(), doping, jnp.zeros(disc.n_sites), *_no_contacts())
    u_ex = np.zeros(asm.n_dof)
    psi_nodes = np.asarray(jax.vmap(psi_exact)(jnp.asarray(mesh.points)))
    u_ex[layout.psi_dof] = psi_nodes
    free = np.zeros(asm.n_dof, bool)
    free[layout.psi_dof[~boundary]] = True
    u = solve_dirichlet(asm, params, u_ex, free, u0=np.where(free, 0.0, u_ex))
    return _l2(disc, u[layout.psi_dof][disc.site_node], psi_nodes[disc.site_node])


def _psi2(x):
    return jnp.sin(np.pi * x[0]) * jnp.cos(0.5 * np.pi * x[1]) + 0.5 * x[0] * x[1]


def _psi3(x):
    return jnp.sin(np.pi * x[0]) * jnp.cos(0.5 * np.pi * x[1]) * (1 + x[2] ** 2)


def _psi_axi(x):  # d/dr = 0 on the axis
    return jnp.cos(np.pi * x[0]) * jnp.sin(np.pi * x[1]) + x[1]


@pytest.mark.parametrize("case", ["2d", "3d", "axi"])
def test_poisson_order(case):
    if case == "2d":
        sizes, f, kw = [0.2, 0.1, 0.05, 0.025], _psi2, dict(lengths=(1.0, 1.0))
    elif case == "3d":
        sizes, f, kw = [0.3, 0.2, 0.13, 0.09], _psi3, dict(lengths=(1.0, 1.0, 1.0))
    else:
        sizes, f, kw = [0.2, 0.1, 0.05, 0.025], _psi_axi, dict(lengths=(1.0, 1.0), axisymmetric=True)
    hs, errs = [], []
    for h in sizes:
        mesh = box(h=h, **kw)
        hs.append(_h(mesh))
        errs.append(_poisson_error(mesh, f))
    order = convergence_order(hs, errs)
    assert order >= 1.9, (order, hs, errs)


# ----------------------------------------------------------------- drift-diffusion
A = 30.0  # total potential rise across the unit domain (V_T): ~8 V_T per edge at h = 0.2


def _dd_fields(dim):
    if dim == 1:
        psi = lambda x: A * (x[0] + 0.05 * jnp.sin(2 * np.pi * x[0]))  # noqa: E731
        dens = lambda x: 1.0 + 0.5 * jnp.sin(np.pi * x[0])  # noqa: E731
    else:
        psi = lambda x: A * (x[0] + 0.05 * jnp.sin(2 * np.pi * x[0]) * jnp.cos(np.pi * x[1]))  # noqa: E731
        dens = lambda x: 1.0 + 0.5 * jnp.sin(np.pi * x[0]) * jnp.cos(0.5 * np.pi * x[1])  # noqa: E731
    return psi, dens


def _dd_error(mesh):
    psi_f, n_f = _dd_fields(mesh.dim)
    phin_f = lambda x: psi_f(x) - jnp.log(n_f(x))  # noqa: E731  n = e^(psi - phi_n)
    phip_f = lambda x: 0.0 * x[0]  # noqa: E731
    disc, layout, asm, xs, boundary = _setup(mesh)
    current = lambda x: jax.grad(n_f)(x) - n_f(x) * jax.grad(psi_f)(x)  # noqa: E731  mu (grad n - n grad psi)
    gen = -jax.vmap(_divergence(current))(xs)  # div J = R - G, R = 0
    p_s = jax.vmap(lambda x: jnp.exp(-psi_f(x) + phip_f(x) - EG))(xs)
    doping = -jax.vmap(_laplacian(psi_f, False))(xs) - p_s + jax.vmap(n_f)(xs)
    params = Params(_material(), doping, gen, *_no_contacts())
    pts = jnp.asarray(mesh.points)
    u_ex = np.zeros(asm.n_dof)
    u_ex[layout.psi_dof] = np.asarray(jax.vmap(psi_f)(pts))
    u_ex[layout.phin_dof] = np.asarray(jax.vmap(phin_f)(pts))[layout.carrier_node]
    u_ex[layout.phip_dof] = np.asarray(jax.vmap(phip_f)(pts))[layout.carrier_node]
    free = np.zeros(asm.n_dof, bool)
    free[layout.psi_dof[~boundary]] = True
    free[layout.phin_dof[~boundary[layout.carrier_node]]] = True
    # start from a perturbed state so that the coupled Newton does real work
    u0 = np.where(free, u_ex + 0.1, u_ex)
    u = solve_dirichlet(asm, params, u_ex, free, u0=u0)
    n_h = np.exp(u[layout.psi_dof] - u[layout.phin_dof[np.argsort(layout.carrier_node)]])
    n_ex = np.asarray(jax.vmap(n_f)(pts))
    max_drop = np.max(np.abs(np.diff(u_ex[layout.psi_dof][disc.site_node[disc.edge_sites]], axis=1)))
    return _l2(disc, n_h[disc.site_node], n_ex[disc.site_node]), max_drop


@pytest.mark.parametrize("dim", [1, 2])
def test_drift_diffusion_order(dim):
    sizes = [0.2, 0.1, 0.05, 0.025] if dim == 2 else [0.2, 0.1, 0.05, 0.025, 0.0125]
    hs, errs, drops = [], [], []
    for h in sizes:
        mesh = layer_stack([Layer("s", 1.0, h)], "xmin", "xmax") if dim == 1 else box((1.0, 1.0), h=h)
        e, drop = _dd_error(mesh)
        hs.append(_h(mesh))
        errs.append(e)
        drops.append(drop)
    assert drops[0] >= 7.0 and drops[-1] <= 1.2  # edges from ~8 V_T down to <= ~1 V_T
    order = convergence_order(hs, errs)
    assert order >= 1.9, (order, hs, errs, drops)
