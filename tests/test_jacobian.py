"""The assembled sparse Jacobian equals jax.jvp of the residual (1D, 2D, 3D, axisymmetric).

The devices mix two semiconductors (a heterojunction), an insulator, an ohmic
current-controlled contact and a work-function contact, so every kernel and every
boundary-condition path of the assembly is exercised.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
from helpers import silicon, split_regions

from pvsim.device import Device
from pvsim.doping import DopingProfile
from pvsim.geometry import Layer, box, layer_stack
from pvsim.layout import ContactSpec
from pvsim.materials import MaterialSpec


def _mesh(kind):
    if kind == "1d":
        m = layer_stack([Layer("all", 1e-7, 2e-9)], "xmin", "xmax")
    elif kind == "2d":
        m = box((100, 50), h=10, length_unit="nm")
    elif kind == "axi":
        m = box((100, 50), h=10, length_unit="nm", axisymmetric=True)
    else:
        m = box((100, 50, 50), h=15, length_unit="nm")
    return split_regions(m, [0.4, 0.7], ["a", "b", "ox"])


@pytest.mark.parametrize("kind", ["1d", "2d", "axi", "3d"])
def test_jacobian_matches_jvp(kind):
    mesh = _mesh(kind)
    mats = {"a": silicon(radiative_B_cm3_s=1e-10, auger_Cn_cm6_s=1e-30, auger_Cp_cm6_s=1e-30),
            "b": silicon(electron_affinity_eV=3.8, band_gap_eV=1.6, Nc_cm3=3e18, mu_n_cm2_Vs=50),
            "ox": MaterialSpec(kind="insulator", eps_r=3.9)}
    dev = Device(mesh, mats, (ContactSpec("xmin", "ohmic", "current"), ContactSpec("xmax", "work_function")),
                 doping={"a": [DopingProfile(acceptors_cm3=1e17)], "b": [DopingProfile(donors_cm3=3e16)]},
                 work_functions_eV={"xmax": 4.5})
    _check_jacobian(dev, dev.params([0.2, 0.0], [1e-3, 0.0]), seed=0)


def _check_jacobian(dev, params, seed):
    """Assembled J v against jax.jvp of the residual at a random state near the guess."""
    rng = np.random.default_rng(seed)
    u = dev.initial_guess(params) + jnp.asarray(rng.normal(scale=0.5, size=dev.asm.n_dof))
    v = jnp.asarray(rng.normal(size=dev.asm.n_dof))
    f, vals = jax.jit(dev.asm.residual_and_jacobian)(u, params)
    _, jvp = jax.jvp(lambda x: dev.asm.residual(x, params), (u,), (v,))
    jac = sp.csr_matrix((np.asarray(vals), (np.asarray(dev.asm.rows), np.asarray(dev.asm.cols))),
                        shape=(dev.asm.n_dof,) * 2)
    rel = np.linalg.norm(jac @ np.asarray(v) - np.asarray(jvp)) / np.linalg.norm(np.asarray(jvp))
    assert rel < 1e-12, rel
    assert np.isfinite(np.asarray(f)).all()


def test_batched_kernel_map_equals_vmap():
    """_map_items over batches (the last overlapping the one before) equals one vmap, with
    unmapped and nested (dict) arguments; _add_items (the outputs added into accumulators
    batch by batch) equals one vmap and one scatter-add, with repeated targets."""
    from pvsim.assembly import _add_items, _map_items

    def fn(x, c, d):
        return jnp.sin(x) * c + d["a"] * d["b"], x * d["b"]

    rng = np.random.default_rng(0)
    x, d = jnp.asarray(rng.normal(size=(23, 3))), dict(a=jnp.asarray(rng.normal(size=23)), b=2.5)
    axes = (0, None, dict(a=0, b=None))
    want = jax.vmap(fn, in_axes=axes)(x, 1.5, d)
    for chunk in (5, 23, 40):
        got = _map_items(fn, axes, 23, chunk)(x, 1.5, d)
        for g, w in zip(got, want):
            assert g.shape == w.shape
            np.testing.assert_allclose(g, w, rtol=1e-15, atol=1e-15)  # SIMD rounding of sin
    targets = tuple(jnp.asarray(rng.integers(0, 9, size=(23, 3))) for _ in range(2))
    acc = (jnp.ones(9), jnp.zeros(9))
    want = tuple(a.at[t].add(w) for a, t, w in zip(acc, targets, want))
    for chunk in (5, 23, 40):
        got = _add_items(fn, axes, 23, chunk)(acc, targets, x, 1.5, d)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-14, atol=1e-14)  # summation order differs


def test_assembly_in_batches_equals_one_batch(monkeypatch):
    """Every kernel (Gauss-Fermi and Fermi-Dirac edges, sites, tunnelling links, a Schottky
    contact) evaluated in batches of 7 items gives the residual and Jacobian of one batch."""
    from pvsim import assembly

    dev = _interface_device("axi")
    params = dev.params([0.3, 0.0])
    u = dev.initial_guess(params) + jnp.asarray(np.random.default_rng(2).normal(scale=0.5, size=dev.asm.n_dof))
    want = jax.jit(lambda u: dev.asm.residual_and_jacobian(u, params))(u)
    monkeypatch.setattr(assembly, "ITEM_CHUNK", 7)
    got = jax.jit(lambda u: dev.asm.residual_and_jacobian(u, params))(u)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-14, atol=1e-14 * float(jnp.abs(w).max()))


# the axisymmetric variant carries every interface kernel of the 1D one (and more); 1D is slow-only
@pytest.mark.parametrize("kind", [pytest.param("1d", marks=pytest.mark.slow), "axi"])
def test_jacobian_matches_jvp_with_interface_physics(kind):
    """Fermi–Dirac + Poole–Frenkel region, Gauss–Fermi region, a tunnelling link with surface
    SRH and sheet charge, a semiconductor/insulator interface with surface SRH, a Schottky
    contact: every new kernel's derivative against jax.jvp."""
    dev = _interface_device(kind)
    _check_jacobian(dev, dev.params([0.3, 0.0]), seed=1)
    assert dev.layout.n_carriers > len(np.unique(dev.layout.carrier_node))  # split sets exist


@functools.lru_cache(maxsize=None)  # one build serves the jvp and the batching tests
def _interface_device(kind):
    from pvsim.materials import InterfaceSpec

    mesh = _mesh(kind)
    mats = {"a": silicon(statistics="fermi_dirac", poole_frenkel_n=3e-3, poole_frenkel_p=2e-3),
            "b": silicon(electron_affinity_eV=3.8, band_gap_eV=1.6, Nc_cm3=1e21, Nv_cm3=1e21,
                         statistics="gauss_fermi", disorder_n_eV=0.1, disorder_p_eV=0.08),
            "ox": MaterialSpec(kind="insulator", eps_r=3.9)}
    itfs = (InterfaceSpec(("a", "b"), model="tunnelling", barrier_thickness_nm=1.0,
                          electron_barrier_eV=1.2, hole_barrier_eV=0.9, barrier_mass_n=0.4,
                          barrier_mass_p=0.3, s_n_cm_s=1e3, s_p_cm_s=1e2, sheet_charge_cm2=1e12),
            InterfaceSpec(("b", "ox"), s_n_cm_s=10.0, s_p_cm_s=20.0, sheet_charge_cm2=-3e11))
    dev = Device(mesh, mats, (ContactSpec("xmin", "schottky", barrier_eV=0.6),
                              ContactSpec("xmax", "work_function")),
                 doping={"a": [DopingProfile(donors_cm3=1e19)], "b": [DopingProfile(donors_cm3=3e16)]},
                 work_functions_eV={"xmax": 4.5}, interfaces=itfs)
    return dev
