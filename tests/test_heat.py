"""Self-heating: heat conduction against analytic solutions, the electrothermal resistor
against a scipy BVP solution, and the isothermal limit (issue 4).

The global energy balance on a heterostructure LED is in test_heat_balance.py.
"""

import numpy as np
from scipy.integrate import solve_bvp

from pvsim.device import Device, HeatSpec, ThermalBoundary
from pvsim.doping import DopingProfile
from pvsim.geometry import Layer, layer_stack
from pvsim.layout import ContactSpec
from pvsim.materials import MaterialSpec
from pvsim.mesh import from_arrays
from pvsim.units import KB, Q
from pvsim.verification import convergence_order

# --------------------------------------------------------------- conduction: slabs
KAPPA = (1.5, 0.3, 4.0)  # W/(m K) of three layers
SOURCE = (2e14, 5e14, 0.0)  # W/m^3
H_ROBIN, T_AMB, T_SINK = 2e6, 310.0, 300.0  # W/(m^2 K), K, K


def _insulator(kappa):
    return MaterialSpec(kind="insulator", eps_r=4.0, thermal_conductivity_W_mK=kappa)


def _heat_only_device(mesh, regions, sink, robin):
    """Insulators only (psi fixed by a gate), a heat sink and a Robin face."""
    return Device(mesh, {r: _insulator(k) for r, k in zip(regions, KAPPA)},
                  (ContactSpec(sink, kind="work_function"),),
                  heat=HeatSpec(boundaries=(ThermalBoundary(sink, "fixed", T_SINK),
                                            ThermalBoundary(robin, "robin", T_AMB, H_ROBIN)),
                                sources_W_m3=dict(zip(regions, SOURCE))))


def _solve_temperature(dev):
    p = dev.params()
    r = dev.solve(dev.initial_guess(p), p)
    assert bool(r.converged)
    return dev.observe(r.ref, p, r.delta)["temperature"]


def _slab_exact(bounds):
    """Piecewise-quadratic T(x) of the 1D multilayer: T(0) = T_SINK, Robin at x = L."""
    kap, q_src = np.array(KAPPA), np.array(SOURCE)
    thick = np.diff(bounds)
    # flux q(x) = q0 + Qcum(x); T(x) = T_SINK - int_0^x q / kappa
    q_start = np.concatenate([[0.0], np.cumsum(q_src * thick)])[:-1]  # Qcum at each layer start

    def integral(x, q0):  # int_0^x q/kappa dx, exact per layer (q linear in x)
        x = np.asarray(x, float)
        out = np.zeros_like(x)
        for k in range(3):
            a = np.clip(x - bounds[k], 0.0, thick[k])
            out += ((q0 + q_start[k]) * a + 0.5 * q_src[k] * a * a) / kap[k]
        return out

    i1 = np.sum(thick / kap)  # d/dq0 of the integral at x = L
    i0 = integral(bounds[-1], 0.0)
    total = np.sum(q_src * thick)
    # q0 + total = h (T_SINK - q0 i1 - i0 - T_AMB)
    q0 = (H_ROBIN * (T_SINK - i0 - T_AMB) - total) / (1.0 + H_ROBIN * i1)
    return lambda x: T_SINK - integral(x, q0)


def _l2_p1_1d(x, t_h, exact):
    """L2 norm of (P1 interpolant - exact), 5-point Gauss per element."""
    g, w = np.polynomial.legendre.leggauss(5)
    err = 0.0
    for a, b, ta, tb in zip(x[:-1], x[1:], t_h[:-1], t_h[1:]):
        s = 0.5 * (g + 1)
        xs = a + (b - a) * s
        err += 0.5 * (b - a) * np.sum(w * (ta + (tb - ta) * s - exact(xs)) ** 2)
    return np.sqrt(err)


def test_multilayer_slab_matches_piecewise_quadratic():
    bounds = np.array([0.0, 200e-9, 500e-9, 800e-9])
    exact = _slab_exact(bounds)
    hs, errs = [], []
    for n in (6, 12, 24, 48):
        layers = [Layer(f"l{k}", t, t / n) for k, t in enumerate(np.diff(bounds))]
        mesh = layer_stack(layers, "sink", "face")
        temp = _solve_temperature(_heat_only_device(mesh, ["l0", "l1", "l2"], "sink", "face"))
        x = mesh.points[:, 0]
        # the box method is nodally exact here (piecewise-constant source and kappa)
        assert np.max(np.abs(temp - exact(x))) < 1e-9 * np.ptp(exact(x))
        hs.append(np.diff(bounds).max() / n)
        errs.append(_l2_p1_1d(x, temp, exact))
    assert convergence_order(hs, errs) > 1.9


def _rect_mesh(nr, nz, radius, height, r_split):
    """Structured right triangles of [0, radius] x [0, height], regions split at r_split."""
    r = np.linspace(0.0, radius, nr + 1)
    z = np.linspace(0.0, height, nz + 1)
    pts = np.array([(ri, zi) for zi in z for ri in r])
    idx = lambda i, j: j * (nr + 1) + i  # noqa: E731
    tri = []
    for j in range(nz):
        for i in range(nr):
            a, b, c, d = idx(i, j), idx(i + 1, j), idx(i + 1, j + 1), idx(i, j + 1)
            tri += [(a, b, c), (a, c, d)] if (i + j) % 2 == 0 else [(a, b, d), (b, c, d)]
    tri = np.array(tri)
    cr = pts[tri][:, :, 0].mean(axis=1)
    outer = [(idx(nr, j), idx(nr, j + 1)) for j in range(nz)]
    return from_arrays(pts, {"core": tri[cr < r_split], "shell": tri[cr >= r_split]},
                       {"outer": outer, "bottom": [(idx(i, 0), idx(i + 1, 0)) for i in range(nr)]},
                       axisymmetric=True)


def _cylinder_exact(r1, radius):
    """Radial T(r) of a core/shell cylinder with sources, Robin at r = radius."""
    k1, k2 = KAPPA[:2]
    q1, q2 = SOURCE[:2]
    a = 0.5 * (q1 - q2) * r1 ** 2  # r q(r) = a + q2 r^2 / 2 in the shell
    flux_out = a / radius + 0.5 * q2 * radius
    t_out = T_AMB + flux_out / H_ROBIN

    def shell(r):  # T(r) = t_out + int_r^R q / k2
        return t_out + (a * np.log(radius / r) + 0.25 * q2 * (radius ** 2 - r ** 2)) / k2

    t1 = shell(r1)
    return lambda r: np.where(r < r1, t1 + 0.25 * q1 * (r1 ** 2 - r ** 2) / k1,
                              shell(np.maximum(r, r1)))


def _l2_p1_axisym(mesh, t_h, exact):
    """L2 norm (weight 2 pi r) of P1 interpolant - exact, 7-point degree-5 rule."""
    a1, b1, a2, b2 = 0.059715871789770, 0.470142064105115, 0.797426985353087, 0.101286507323456
    bary = np.array([[1 / 3] * 3] + [[a1, b1, b1], [b1, a1, b1], [b1, b1, a1]]
                    + [[a2, b2, b2], [b2, a2, b2], [b2, b2, a2]])
    wts = np.array([0.225] + [0.132394152788506] * 3 + [0.125939180544827] * 3)
    total = 0.0
    for cells in mesh.regions.values():
        x = mesh.points[cells]  # (M, 3, 2)
        a, b = x[:, 1] - x[:, 0], x[:, 2] - x[:, 0]
        area = 0.5 * np.abs(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0])
        q = np.einsum("qk,mkd->mqd", bary, x)
        th = np.einsum("qk,mk->mq", bary, t_h[cells])
        total += np.sum(area[:, None] * wts * (th - exact(q[..., 0])) ** 2 * 2 * np.pi * q[..., 0])
    return np.sqrt(total)


def test_axisymmetric_core_shell_cylinder_second_order():
    r1, radius, height = 300e-9, 800e-9, 100e-9
    exact = _cylinder_exact(r1, radius)
    hs, errs = [], []
    for nr in (8, 16, 32):
        mesh = _rect_mesh(nr, 2, radius, height, r1)
        temp = _solve_temperature(_cylinder_device(mesh))
        hs.append(radius / nr)
        errs.append(_l2_p1_axisym(mesh, temp, exact))
    assert convergence_order(hs, errs) > 1.9
    assert errs[-1] < 1e-3 * (exact(0.0) - T_AMB)


def _cylinder_device(mesh):
    """Core/shell cylinder: psi fixed on the outer face, heat leaves there (Robin)."""
    return Device(mesh, {r: _insulator(k) for r, k in zip(["core", "shell"], KAPPA)},
                  (ContactSpec("outer", kind="work_function"),),
                  heat=HeatSpec(boundaries=(ThermalBoundary("outer", "robin", T_AMB, H_ROBIN),),
                                sources_W_m3=dict(zip(["core", "shell"], SOURCE))))


# --------------------------------------------------------------- electrothermal resistor
ND, MU0, GAMMA, LENGTH = 1e17, 100.0, 1.5, 1e-6  # cm^-3, cm^2/(V s), mu ~ T^-1.5, m


def _resistor(kappa=1.0, heat=True, n_cells=100):
    mesh = layer_stack([Layer("bar", LENGTH, LENGTH / n_cells)], "left", "right")
    mat = MaterialSpec(eps_r=10.0, electron_affinity_eV=4.0, band_gap_eV=1.5, Nc_cm3=1e19,
                       Nv_cm3=1e19, mu_n_cm2_Vs=MU0, mu_p_cm2_Vs=MU0, mobility_T_exponent_n=GAMMA,
                       mobility_T_exponent_p=GAMMA, thermal_conductivity_W_mK=kappa)
    spec = HeatSpec(boundaries=(ThermalBoundary("left"), ThermalBoundary("right"))) if heat else None
    return Device(mesh, {"bar": mat}, (ContactSpec("left"), ContactSpec("right")),
                  doping={"bar": [DopingProfile(donors_cm3=ND)]}, heat=spec)


def _ramp(dev, volts):
    """Solve up the bias ramp (continuation); (current into 'right', T_max) at each voltage."""
    u = None
    out = []
    for v in volts:
        p = dev.params([0.0, v])
        r = dev.solve(dev.initial_guess(p) if u is None else u, p)
        assert bool(r.converged), v
        u = r.u
        o = dev.observe(r.ref, p, r.delta)
        out.append((o["current"][1], o.get("T_max", 300.0)))
    return out


def _resistor_bvp(volts, kappa=1.0):
    """-(kappa T')' = J E + (3/2)(k/q) J T' (Joule + Thomson heat of the Kelvin thermopower),
    E = J / sigma(T), sigma = q N_D mu0 (T/300)^-gamma, T = 300 K at both ends, int E = -V."""
    sigma0 = Q * ND * 1e6 * MU0 * 1e-4
    j0 = sigma0 * volts / LENGTH  # isothermal current density
    heat0 = LENGTH ** 2 / (300.0 * kappa)  # (heat density) -> d(flux)/d(xi), scaled

    def rhs(xi, y, p):  # xi = x/L; y = (T/300, flux L/(300 kappa), int E dx / V); p = J/j0
        t, _, _ = y
        j = p[0] * j0
        e = j / (sigma0 * t ** -GAMMA)
        dt = -y[1]
        return np.vstack([dt, heat0 * (j * e + 1.5 * KB / Q * j * dt * 300.0 / LENGTH),
                          e * LENGTH / volts])

    def bc(ya, yb, p):
        return np.array([ya[0] - 1.0, yb[0] - 1.0, ya[2], yb[2] + 1.0])

    xi = np.linspace(0.0, 1.0, 101)
    guess = np.vstack([np.ones_like(xi), np.zeros_like(xi), -xi])
    sol = solve_bvp(rhs, bc, xi, guess, p=[-1.0], tol=1e-10, max_nodes=100000)
    assert sol.success
    return -sol.p[0] * j0, 300.0 * sol.sol(np.linspace(0.0, 1.0, 20001))[0].max()


def test_electrothermal_resistor_matches_bvp():
    volts = [0.5, 1.0, 1.5, 2.0]
    dev = _resistor()
    results = _ramp(dev, volts)
    for v, (current, t_max) in zip(volts[1:], results[1:]):
        j_ref, t_ref = _resistor_bvp(v)
        assert t_max - 300.0 > 10.0  # a real electrothermal problem: tens of kelvin
        assert abs(current / j_ref - 1) < 2e-3
        assert abs((t_max - 300.0) / (t_ref - 300.0) - 1) < 2e-3
    assert dev._solve._cache_size() == 1  # one compilation serves every bias point


def test_large_conductivity_approaches_isothermal_as_one_over_kappa():
    i_iso = _ramp(_resistor(heat=False), [0.5, 1.0])[-1][0]
    d_i, d_t = [], []
    for kappa in (10.0, 100.0, 1000.0):
        i_k, t_k = _ramp(_resistor(kappa), [0.5, 1.0])[-1]
        d_i.append(i_iso - i_k)
        d_t.append(t_k - 300.0)
    for d in (d_i, d_t):
        assert d[0] > 0 and np.allclose(np.array(d[1:]) / np.array(d[:-1]), 0.1, rtol=0.03)
