"""Implicit-adjoint gradients of a terminal current against central finite differences."""

from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_solver import _diode

from pvsim.adjoint import make_steady_state
from pvsim.figures import terminal_currents
from pvsim.linalg import pardiso_available
from pvsim.sweep import BiasPoint, run_sweep

BACKENDS = ["klu", "scipy"] + (["pardiso"] if pardiso_available() else [])


def _setup(backend):
    dev = _diode(solver=backend, n=60)
    dev.newton = replace(dev.newton, tol=1e-12)  # FD needs states converged far below h
    res = run_sweep(dev, [BiasPoint(np.array([0.45, 0.0]), np.zeros(2))])
    start = res.points[-1].u
    params = dev.params([0.45, 0.0])
    solve = make_steady_state(dev)

    def current(theta):
        """Anode current (A/m^2) as a function of (mu_n, tau_n, doping factor, V) scale factors."""
        m = params.material
        mat = type(m)(**{**m.__dict__, "mu_n": m.mu_n * theta[0], "tau_n": m.tau_n * theta[1]})
        p = type(params)(**{**params.__dict__, "material": mat, "doping": params.doping * theta[2],
                            "voltage": params.voltage * theta[3]})
        state = solve(start, p)
        return terminal_currents(dev, state, p)[0], state.status

    return jax.jit(current)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_matches_finite_differences(backend):
    current = _setup(backend)
    theta = jnp.ones(4)
    value, status = current(theta)
    grad = jax.jit(jax.grad(lambda t: current(t)[0]))(theta)
    assert int(status) == 0 and value > 0
    fd = []
    for k in range(4):
        h = 1e-5
        e = jnp.zeros(4).at[k].set(h)
        fd.append((current(theta + e)[0] - current(theta - e)[0]) / (2 * h))
    np.testing.assert_allclose(np.asarray(grad), np.asarray(fd), rtol=1e-6)
    # dI/dV = I / V_T for an ideal diode: the voltage factor sensitivity is of order I V / V_T
    assert 10 < float(grad[3]) / float(value) < 20


def test_taylor_remainder_is_second_order():
    current = _setup("klu")
    f = lambda t: current(t)[0]  # noqa: E731
    theta = jnp.ones(4)
    g = jax.jit(jax.grad(f))(theta)
    d = jnp.array([0.3, -0.2, 0.1, 0.05])
    f0 = f(theta)
    hs = np.array([1e-2, 5e-3, 2.5e-3])
    rem = np.array([abs(float(f(theta + h * d) - f0 - h * (g @ d))) for h in hs])
    order = np.polyfit(np.log(hs), np.log(rem), 1)[0]
    assert 1.9 < order < 2.1, (order, rem)


def test_led_figures_of_merit_and_their_gradients():
    """NC LED at 3 V: the figures agree with the NetCDF output, and d(IQE)/d(theta) for the
    NC-layer electron affinity and the ETL mobility match central differences."""
    import tomllib
    from pathlib import Path

    from pvsim import figures
    from pvsim.case import build_device, load_case
    from pvsim.io import to_dataset

    root = Path(__file__).resolve().parent.parent
    data = tomllib.loads((root / "cases" / "nc_led_1d.toml").read_text())
    data["sweep"] = {"contact": "anode", "voltages_V": [3.0]}
    # Boltzmann organics and no ligand links here (their gradients: test_interface_gradients);
    # the Gauss–Fermi/tunnelling case costs ~20 s more compilation
    data.pop("interfaces")
    for name in ("poly_tpd", "tpbi"):
        data["materials"][name].update(statistics="boltzmann", electron_affinity_eV=
                                       {"poly_tpd": 2.4, "tpbi": 2.7}[name], band_gap_eV=
                                       {"poly_tpd": 3.0, "tpbi": 3.5}[name])
    case, base = load_case(data, root / "cases")
    dev = build_device(case, base)
    dev.newton = replace(dev.newton, tol=1e-12)
    res = run_sweep(dev, [BiasPoint(np.array([3.0, 0.0]), np.zeros(2))])
    ds = to_dataset(res)
    params = dev.params([3.0, 0.0])
    solve = make_steady_state(dev)
    start = res.points[-1].u
    state = solve(start, params)
    np.testing.assert_allclose(figures.iqe(dev, state, params), ds.iqe.values[-1], rtol=1e-9)
    zone, width = figures.recombination_zone(dev, state, params)
    eml = [n for n in dev.disc.region_names].index("eml")
    x_eml = dev.mesh.points[dev.mesh.region_nodes("eml"), 0]
    assert x_eml.min() < float(zone) < x_eml.max() and 0 < float(width) < np.ptp(x_eml)
    assert 0 < float(figures.charge_balance(dev, state, params)) <= 1 + 1e-9
    assert eml == 2

    etl = dev.disc.region_names.index("etl")

    @jax.jit
    def f(theta):
        m = params.material
        mat = type(m)(**{**m.__dict__, "chi": m.chi.at[eml].add(theta[0]),
                         "mu_n": m.mu_n.at[etl].multiply(theta[1])})
        p = type(params)(**{**params.__dict__, "material": mat})
        return figures.iqe(dev, solve(start, p), p)

    theta = jnp.array([0.0, 1.0])
    g = jax.jit(jax.grad(f))(theta)
    h = np.array([1e-5, 1e-5])
    fd = [(f(theta.at[k].add(h[k])) - f(theta.at[k].add(-h[k]))) / (2 * h[k]) for k in range(2)]
    np.testing.assert_allclose(np.asarray(g), np.asarray(fd), rtol=1e-5)


@pytest.mark.slow  # 70 s of compiling interface kernels; issue 6 extends gradient tests per class
def test_interface_gradients():
    """Gradients through the interface kernels (tunnelling link, surface SRH, Gauss–Fermi
    side, Schottky contact) against central differences: ligand thickness and barrier,
    surface recombination velocity, disorder sigma, Schottky contact velocity."""
    from helpers import silicon

    from pvsim.device import Device
    from pvsim.doping import DopingProfile
    from pvsim.geometry import Layer, layer_stack
    from pvsim.layout import ContactSpec
    from pvsim.materials import InterfaceSpec

    mesh = layer_stack([Layer("l", 40e-9, 2e-9, 2e-10), Layer("r", 40e-9, 2e-9, 2e-10)], "left", "right")
    left = silicon(mu_n_cm2_Vs=10.0, mu_p_cm2_Vs=10.0, radiative_B_cm3_s=1e-10)
    right = silicon(electron_affinity_eV=3.9, Nc_cm3=1e21, Nv_cm3=1e21, statistics="gauss_fermi",
                    disorder_n_eV=0.08, disorder_p_eV=0.08, mu_n_cm2_Vs=1e-2, mu_p_cm2_Vs=1e-2)
    itf = InterfaceSpec(("l", "r"), model="tunnelling", barrier_thickness_nm=1.0,
                        electron_barrier_eV=1.0, hole_barrier_eV=1.0, barrier_mass_n=0.4,
                        barrier_mass_p=0.4, s_n_cm_s=1e4, s_p_cm_s=1e4)
    dev = Device(mesh, {"l": left, "r": right},
                 (ContactSpec("left", "schottky", barrier_eV=0.3, s_n_cm_s=1e5, s_p_cm_s=1e5),
                  ContactSpec("right", "work_function")),
                 doping={"l": [DopingProfile(acceptors_cm3=1e17)]},
                 work_functions_eV={"right": 4.2}, interfaces=(itf,))
    dev.newton = replace(dev.newton, tol=1e-12)
    res = run_sweep(dev, [BiasPoint(np.array([0.0, -0.8]), np.zeros(2))])
    assert res.ok, res.failure
    start, params = res.points[-1].u, dev.params([0.0, -0.8])
    solve = make_steady_state(dev)

    @jax.jit
    def current(theta):
        i, m = params.interface, params.material
        i = replace(i, thickness=i.thickness * theta[0], barrier_n=i.barrier_n * theta[1],
                    s_n=i.s_n * theta[2])
        m = replace(m, sigma_n=m.sigma_n * theta[3])
        p = replace(params, interface=i, material=m, contact_v_n=params.contact_v_n * theta[4])
        return terminal_currents(dev, solve(start, p), p)[0]

    theta = jnp.ones(5)
    g = np.asarray(jax.grad(current)(theta))
    # the current hardly depends on s_n and the contact velocity (relative sensitivities
    # ~1e-5): a larger step keeps their differences above the round-off of the current
    h = np.array([1e-5, 1e-5, 1e-3, 1e-5, 1e-3])
    fd = np.array([(current(theta.at[k].add(h[k])) - current(theta.at[k].add(-h[k]))) / (2 * h[k])
                   for k in range(5)])
    assert np.all(np.abs(g) > 1e-6 * abs(float(current(theta))))  # every parameter matters
    np.testing.assert_allclose(g, fd, rtol=1e-5)


def test_shape_gradient_of_current_by_mesh_morphing():
    """d I / d (n-side thickness) by morphing the nodes (X = X0 + theta V, V a linear stretch
    of the n side) through the implicit adjoint, against central differences of devices
    re-meshed at thicknesses t +- h (the same uniform meshes the morph produces)."""
    from helpers import silicon
    from pvsim.device import Device
    from pvsim.doping import DopingProfile
    from pvsim.geometry import Layer, layer_stack
    from pvsim.layout import ContactSpec

    n_cells, t_p, t_n = 50, 400e-9, 300e-9

    def device(t):
        grow = 1 + 1e-9  # keeps ceil(t / spacing) = n_cells
        mesh = layer_stack([Layer("p", t_p, t_p / n_cells * grow), Layer("n", t, t / n_cells * grow)],
                           "anode", "cathode")
        dev = Device(mesh, {"p": silicon(), "n": silicon()}, (ContactSpec("anode"), ContactSpec("cathode")),
                     doping={"p": [DopingProfile(acceptors_cm3=1e17)],
                             "n": [DopingProfile(donors_cm3=1e17)]})
        dev.newton = replace(dev.newton, tol=1e-12)
        return dev

    def current_of(t):
        dev = device(t)
        res = run_sweep(dev, [BiasPoint(np.array([0.5, 0.0]), np.zeros(2))])
        assert res.ok, res.failure
        return res.points[-1].observables["current_direct"][0], dev, res.points[-1].u

    i0, dev, start = current_of(t_n)
    x0 = jnp.asarray(dev.mesh.points)
    stretch = jnp.clip((x0 - t_p) / t_n, 0.0, None)  # V: 0 on the p side, x - t_p scaled on n
    params = dev.params([0.5, 0.0])
    solve = make_steady_state(dev)

    def current(theta):
        p = replace(params, geometry=dev.geometry(x0 + theta * stretch))
        return terminal_currents(dev, solve(start, p), p)[0]

    np.testing.assert_allclose(float(current(0.0)), i0, rtol=1e-10)
    g = float(jax.grad(current)(0.0))  # per metre of n-side thickness
    h = 1e-3 * t_n
    fd = (current_of(t_n + h)[0] - current_of(t_n - h)[0]) / (2 * h)
    assert abs(g) > 1e-3 * abs(i0) / t_n  # a thicker base really changes the current
    assert abs(g / fd - 1) < 1e-5, (g, fd)


def test_topology_as_argument_gives_the_same_gradient_and_stays_out_of_the_program():
    """The mesh index arrays passed through the jitted function's arguments (not closed over)
    change nothing in the value or the gradient, and the lowered program no longer holds them
    (each embedded index costs at least two characters of program text)."""
    dev = _diode(solver="klu", n=60)
    res = run_sweep(dev, [BiasPoint(np.array([0.4, 0.0]), np.zeros(2))])
    start, params = res.points[-1].u, dev.params([0.4, 0.0])
    solve = make_steady_state(dev)

    def current(mu, topology=None):
        m = params.material
        p = replace(params, material=type(m)(**{**m.__dict__, "mu_n": m.mu_n * mu}))
        return terminal_currents(dev, solve(start, p, topology), p)[0]

    f = jax.jit(jax.value_and_grad(current))
    v0, g0 = f(1.0)
    v1, g1 = f(1.0, dev.topology)
    np.testing.assert_allclose([v1, g1], [v0, g0], rtol=1e-13)
    assert abs(float(g0)) > 0.1 * abs(float(v0))  # the current does depend on mu_n
    n_index = sum(np.size(a) for a in jax.tree.leaves(dev.topology)
                  if np.issubdtype(np.asarray(a).dtype, np.integer))
    text_closed = f.lower(1.0).as_text()
    text_passed = f.lower(1.0, dev.topology).as_text()
    assert len(text_closed) - len(text_passed) > 2 * n_index
