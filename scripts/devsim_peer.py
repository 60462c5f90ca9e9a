"""DEVSIM peer code for ``scripts/bench_devsim.py``: steady-state drift-diffusion pn diode.

``run_devsim_diode`` loads a 2D gmsh mesh (regions "p_side"/"n_side", contacts "anode"/"cathode",
interface "junction"), builds Poisson + electron/hole continuity with Scharfetter-Gummel (Bernoulli)
edge currents in DEVSIM's equation-model language, and sweeps the anode voltage (cathode at 0 V)
with DEVSIM's fully coupled Newton and its default direct solver (UMFPACK).

Physics (same as pvsim): Boltzmann statistics, constant mobilities, SRH only with the trap at the
intrinsic level (n1 = p1 = ni), uniform doping per region, ohmic contacts (charge-neutral Dirichlet
values, both quasi-Fermi levels = contact voltage), potential/electrons/holes continuous across the
junction, zero flux elsewhere. Potential is referenced to the intrinsic level: n = ni exp(psi/Vt).

DEVSIM API facts relied on (read from DEVSIM's source: Newton.cc, Equation.cc, Region.cc, Device.cc,
ExprContactEquation.cc, MathCommands.cc):

* Convergence test of ``solve(type="dc", relative_error=r, absolute_error=a)``. After each Newton
  update dx (after DEVSIM's update limiting, see below) every equation e computes
      rel_e = max_i |dx_i| / (|x_i_new| + 1e-10),      abs_e = max_i |dx_i|
  over its region's nodes, in DEVSIM units (Potential in V, Electrons/Holes in cm^-3).  A region
  *sums* rel_e and abs_e over its equations; the device *sums* the regions' relative errors and
  takes the *max* of their absolute errors.  Converged when device_rel < r AND device_abs < a, tested
  on the update just applied (that last update is kept).  So ``relative_error`` is a bound on the
  sum over 3 equations x 2 regions of the max-norm relative Newton update; the pvsim equivalent is
  max_i |dx_i|/(|x_i|+1e-10) < r/6 per variable (r as a bound on the sum; r/6 is a conservative
  per-term equivalent, r itself a loose one).  Note the potential term: where psi ~ 0 (near a
  symmetric junction) it is effectively an absolute test |dpsi| < r*(|psi| + 1e-10 V).
  The default ``abs_tol=1e30`` disables the absolute test (it mixes V and cm^-3).
* Update limiting: Potential uses ``variable_update="log_damp"`` (|dpsi| > 0.0259 V is replaced by
  sign*0.0259*ln(1 + |dpsi|/0.0259)), Electrons/Holes use ``"positive"`` (a step that would make a
  density <= 0 is replaced by new = 0.001*old).  This is DEVSIM's customary choice.
* ``solve(..., info=True)`` returns a dict instead of raising on failure: ``converged`` (bool),
  ``iterations`` (one entry per Newton iteration) and ``number_of_equations``.  On failure DEVSIM
  restores the previous solution.  Iteration counts come from ``len(info["iterations"])``.
* Contact current sign: ``get_contact_current`` sums edge_current_model*EdgeCouple over edges at the
  contact nodes, with sign +1 when the contact node is the edge's node0 and -1 when node1, and our
  edge currents are (conventional current density) . (unit vector node0 -> node1).  Hence the
  reported current is the conventional current flowing from the contact INTO the device: positive
  at the anode in forward bias, and current_anode + current_cathode = 0 in steady state.
  In 2D DEVSIM integrates over EdgeCouple in cm, giving A/cm; we return A/m (x100).
"""
from __future__ import annotations

import contextlib
import io
import os
import time

import numpy as np

os.environ.setdefault("DEVSIM_MATH_LIBS", "libopenblas.so.0:liblapack.so.3:libblas.so.3")
import devsim as ds  # noqa: E402
from scipy import constants as sc  # noqa: E402

DEV = "diode"
VERBOSE = False          # True: let DEVSIM print its Newton log (otherwise captured and discarded)
MIN_STEP_V = 1e-4        # smallest continuation step before giving up
POTENTIAL_UPDATE = "log_damp"   # DEVSIM variable_update for Potential ("default": plain Newton)
_VARS = ("Potential", "Electrons", "Holes")
_EQS = {"Potential": "PotentialEquation", "Electrons": "ElectronContinuityEquation",
        "Holes": "HoleContinuityEquation"}


def _f(x: float) -> str:
    """Number literal for DEVSIM expressions."""
    return f"({float(x):.17g})"


def _node(reg, name, expr, wrt=()):
    ds.node_model(device=DEV, region=reg, name=name, equation=expr)
    for v in wrt:
        ds.node_model(device=DEV, region=reg, name=f"{name}:{v}", equation=f"diff({expr}, {v})")


def _edge(reg, name, expr, wrt=()):
    ds.edge_model(device=DEV, region=reg, name=name, equation=expr)
    for v in wrt:
        for n in ("n0", "n1"):
            ds.edge_model(device=DEV, region=reg, name=f"{name}:{v}@{n}",
                          equation=f"diff({expr}, {v}@{n})")


def _dirichlet(contact, var, value):
    """Contact node model ``{contact}_{var}`` = var - (value) and its derivative."""
    name = f"{contact}_{var}"
    ds.contact_node_model(device=DEV, contact=contact, name=name, equation=f"{var} - ({value})")
    ds.contact_node_model(device=DEV, contact=contact, name=f"{name}:{var}", equation="1")


def _continuous(var):
    """Continuity of ``var`` across the junction: var@r0 - var@r1 = 0."""
    name = f"cont_{var}"
    ds.interface_model(device=DEV, interface="junction", name=name, equation=f"{var}@r0 - {var}@r1")
    ds.interface_model(device=DEV, interface="junction", name=f"{name}:{var}@r0", equation="1")
    ds.interface_model(device=DEV, interface="junction", name=f"{name}:{var}@r1", equation="-1")
    ds.interface_equation(device=DEV, interface="junction", name=_EQS[var], interface_model=name,
                          type="continuous")


def _load_mesh(msh_path: str, scale_to_cm: float) -> int:
    """Read the .msh with meshio, scale to cm and hand it to DEVSIM's gmsh loader (which has no
    scale option) as coordinates/elements/physical_names lists. Returns the number of mesh nodes."""
    import meshio
    m = meshio.read(msh_path)
    names, index = [], {}
    for nm, (tag, dim) in m.field_data.items():
        index[(int(dim), int(tag))] = len(names)
        names.append(nm)
    kinds = {"line": (1, 1), "triangle": (2, 2)}      # meshio type -> (DEVSIM type, dimension)
    elements, used = [], set()
    for blk, tags in zip(m.cells, m.cell_data["gmsh:physical"]):
        if blk.type not in kinds:
            continue
        etype, dim = kinds[blk.type]
        for conn, tag in zip(blk.data, tags):
            if (dim, int(tag)) in index:
                elements += [etype, index[(dim, int(tag))], *map(int, conn)]
                used.update(map(int, conn))
    pts = np.zeros((len(m.points), 3))
    pts[:, :m.points.shape[1]] = m.points * scale_to_cm
    ds.create_gmsh_mesh(mesh="m", coordinates=pts.ravel().tolist(), elements=elements,
                        physical_names=names)
    for r in ("p_side", "n_side"):
        ds.add_gmsh_region(mesh="m", gmsh_name=r, region=r, material="semiconductor")
    ds.add_gmsh_contact(mesh="m", gmsh_name="anode", region="p_side", name="anode", material="metal")
    ds.add_gmsh_contact(mesh="m", gmsh_name="cathode", region="n_side", name="cathode",
                        material="metal")
    ds.add_gmsh_interface(mesh="m", gmsh_name="junction", name="junction", region0="p_side",
                          region1="n_side")
    ds.finalize_mesh(mesh="m")
    ds.create_device(mesh="m", device=DEV)
    return len(used)


def _solve(rel_tol, abs_tol, max_iter):
    """One devsim.solve; returns (converged, n_iterations, wall seconds, n_equations)."""
    sink = contextlib.nullcontext() if VERBOSE else contextlib.redirect_stdout(io.StringIO())
    with sink:
        t0 = time.perf_counter()
        info = ds.solve(type="dc", solver_type="direct", relative_error=rel_tol,
                        absolute_error=abs_tol, maximum_iterations=max_iter, info=True)
        dt = time.perf_counter() - t0
    return bool(info["converged"]), len(info["iterations"]), dt, info.get("number_of_equations")


def run_devsim_diode(msh_path: str, *, length_unit_m: float, params: dict, biases_V: list[float],
                     contact_swept: str = "anode", rel_tol: float = 1e-10, abs_tol: float = 1e30,
                     max_iter: int = 40) -> dict:
    """Simulate the diode on ``msh_path`` and return its IV curve.

    Coordinates in the mesh are in units of ``length_unit_m`` metres.  ``params`` (CGS): NA_cm3,
    ND_cm3, ni_cm3, eps_r, mu_n_cm2Vs, mu_p_cm2Vs, tau_n_s, tau_p_s, T_K.  Flow: potential-only
    equilibrium solve, full DD at 0 V, then ``contact_swept`` is set to each of ``biases_V`` in order
    (the other contact stays at 0 V), one solve per point (a 0 V point is re-solved too).  A failed
    step is retried from the last converged point with the step halved (down to MIN_STEP_V).

    Returns dict: voltage (V), current_anode, current_cathode, electron_current_anode,
    hole_current_anode (A/m: per metre of depth; conventional current flowing from the contact into
    the device, see module docstring), time_s (wall time of the devsim.solve calls for each bias
    point, INCLUDING any continuation sub-steps and failed attempts for it), iterations (Newton
    iterations summed over the same solves), n_solves (solve calls per point), setup_time_s
    (equilibrium + 0 V solves), n_nodes (mesh nodes), n_equations, units='A/m'.
    """
    p = params
    ds.reset_devsim()
    n_nodes = _load_mesh(msh_path, length_unit_m * 100.0)

    q = sc.e
    Vt = sc.k * p["T_K"] / q
    eps = p["eps_r"] * sc.epsilon_0 / 100.0                 # F/cm
    ni = p["ni_cm3"]
    dop = {"p_side": -p["NA_cm3"], "n_side": p["ND_cm3"]}
    contacts = {"anode": "p_side", "cathode": "n_side"}
    other = "cathode" if contact_swept == "anode" else "anode"
    if contact_swept not in contacts:
        raise ValueError(f"contact_swept must be 'anode' or 'cathode', not {contact_swept!r}")

    def neutral(N):   # charge-neutral Boltzmann equilibrium (n, p, psi), minority without cancellation
        maj = abs(N) / 2 + np.sqrt(N * N / 4 + ni * ni)
        n, h = (maj, ni * ni / maj) if N > 0 else (ni * ni / maj, maj)
        return n, h, Vt * np.arcsinh(N / (2 * ni))

    # --- stage 1: Poisson with equilibrium carriers ---------------------------------------------
    for reg, N in dop.items():
        ds.node_solution(device=DEV, region=reg, name="Potential")
        nn = len(ds.get_node_model_values(device=DEV, region=reg, name="Potential"))
        ds.set_node_values(device=DEV, region=reg, name="Potential", values=[neutral(N)[2]] * nn)
        ds.edge_from_node_model(device=DEV, region=reg, node_model="Potential")
        _node(reg, "PotentialNodeCharge",
              f"-{_f(q)}*({_f(ni)}*exp(-Potential/{_f(Vt)}) - {_f(ni)}*exp(Potential/{_f(Vt)})"
              f" + {_f(N)})", ("Potential",))
        _edge(reg, "PotentialEdgeFlux", f"{_f(eps)}*(Potential@n0 - Potential@n1)*EdgeInverseLength",
              ("Potential",))
        ds.equation(device=DEV, region=reg, name="PotentialEquation", variable_name="Potential",
                    node_model="PotentialNodeCharge", edge_model="PotentialEdgeFlux",
                    variable_update=POTENTIAL_UPDATE)
    for c, reg in contacts.items():
        ds.set_parameter(device=DEV, name=f"{c}_bias", value=0.0)
        _dirichlet(c, "Potential", f"{c}_bias + {_f(neutral(dop[reg])[2])}")
        ds.contact_equation(device=DEV, contact=c, name="PotentialEquation",
                            node_model=f"{c}_Potential", edge_charge_model="PotentialEdgeFlux")
    _continuous("Potential")
    setup_t = 0.0
    ok, _, dt, _ = _solve(rel_tol, abs_tol, max(max_iter, 100))
    setup_t += dt
    if not ok:
        raise RuntimeError("DEVSIM: equilibrium Poisson solve did not converge")

    # --- stage 2: full drift-diffusion, initial carriers from the equilibrium potential ---------
    wrt = _VARS
    usrh = (f"(Electrons*Holes - {_f(ni * ni)})/({_f(p['tau_p_s'])}*(Electrons + {_f(ni)})"
            f" + {_f(p['tau_n_s'])}*(Holes + {_f(ni)}))")
    for reg, N in dop.items():
        psi = np.array(ds.get_node_model_values(device=DEV, region=reg, name="Potential"))
        for var, vals in (("Electrons", ni * np.exp(psi / Vt)), ("Holes", ni * np.exp(-psi / Vt))):
            ds.node_solution(device=DEV, region=reg, name=var)
            ds.set_node_values(device=DEV, region=reg, name=var, values=vals.tolist())
            ds.edge_from_node_model(device=DEV, region=reg, node_model=var)
        _node(reg, "PotentialNodeCharge", f"-{_f(q)}*(Holes - Electrons + {_f(N)})", wrt)
        _node(reg, "ElectronGeneration", f"-{_f(q)}*{usrh}", wrt)
        _node(reg, "HoleGeneration", f"{_f(q)}*{usrh}", wrt)
        vd = f"((Potential@n0 - Potential@n1)/{_f(Vt)})"
        _edge(reg, "ElectronCurrent", f"{_f(q * p['mu_n_cm2Vs'] * Vt)}*EdgeInverseLength*"
              f"(Electrons@n1*B(-{vd}) - Electrons@n0*B({vd}))", wrt)
        _edge(reg, "HoleCurrent", f"{_f(q * p['mu_p_cm2Vs'] * Vt)}*EdgeInverseLength*"
              f"(Holes@n0*B(-{vd}) - Holes@n1*B({vd}))", wrt)
        ds.equation(device=DEV, region=reg, name="ElectronContinuityEquation",
                    variable_name="Electrons", node_model="ElectronGeneration",
                    edge_model="ElectronCurrent", variable_update="positive")
        ds.equation(device=DEV, region=reg, name="HoleContinuityEquation", variable_name="Holes",
                    node_model="HoleGeneration", edge_model="HoleCurrent",
                    variable_update="positive")
    for c, reg in contacts.items():
        _dirichlet(c, "Electrons", _f(neutral(dop[reg])[0]))
        _dirichlet(c, "Holes", _f(neutral(dop[reg])[1]))
        ds.contact_equation(device=DEV, contact=c, name="ElectronContinuityEquation",
                            node_model=f"{c}_Electrons", edge_current_model="ElectronCurrent")
        ds.contact_equation(device=DEV, contact=c, name="HoleContinuityEquation",
                            node_model=f"{c}_Holes", edge_current_model="HoleCurrent")
    _continuous("Electrons")
    _continuous("Holes")
    ok, _, dt, n_eq = _solve(rel_tol, abs_tol, max_iter)
    setup_t += dt
    if not ok:
        raise RuntimeError("DEVSIM: drift-diffusion solve at 0 V did not converge")

    # --- stage 3: bias sweep with step-halving continuation ------------------------------------
    def cur(c, eq):
        return 100.0 * ds.get_contact_current(device=DEV, contact=c, equation=eq)   # A/cm -> A/m

    keys = ("current_anode", "current_cathode", "electron_current_anode", "hole_current_anode")
    out = {k: [] for k in keys + ("time_s", "iterations", "n_solves")}
    v_now = 0.0
    ds.set_parameter(device=DEV, name=f"{other}_bias", value=0.0)
    for target in biases_V:
        t_sum, it_sum, n_sol = 0.0, 0, 0
        step = target - v_now
        while True:
            v_try = target if abs(target - v_now) <= abs(step) else v_now + step
            ds.set_parameter(device=DEV, name=f"{contact_swept}_bias", value=float(v_try))
            ok, nit, dt, _ = _solve(rel_tol, abs_tol, max_iter)
            t_sum, it_sum, n_sol = t_sum + dt, it_sum + nit, n_sol + 1
            if ok:
                v_now = v_try
                if v_now == target:
                    break
            else:
                step /= 2.0
                if abs(step) < MIN_STEP_V:
                    raise RuntimeError(f"DEVSIM: no convergence towards {target} V "
                                       f"(last converged {v_now} V)")
        e_a = cur("anode", "ElectronContinuityEquation")
        h_a = cur("anode", "HoleContinuityEquation")
        vals = (e_a + h_a, cur("cathode", "ElectronContinuityEquation")
                + cur("cathode", "HoleContinuityEquation"), e_a, h_a)
        for k, v in zip(keys + ("time_s", "iterations", "n_solves"), vals + (t_sum, it_sum, n_sol)):
            out[k].append(v)

    res = {k: np.asarray(v) for k, v in out.items()}
    res.update(voltage=np.asarray(biases_V, dtype=float), units="A/m", n_nodes=n_nodes,
               n_equations=n_eq, setup_time_s=setup_t)
    return res


def _make_test_mesh(path: str, h: float = 0.05, h_junction: float = 0.01) -> None:
    """2 um x 1 um test diode (um units): p_side x<1, n_side x>1, anode = left edge y in [0, 0.5]."""
    import gmsh
    gmsh.initialize()
    gmsh.option.setNumber("General.Terminal", 0)
    geo = gmsh.model.geo
    pts = [geo.addPoint(x, y, 0) for x, y in
           ((0, 0), (1, 0), (2, 0), (2, 1), (1, 1), (0, 1), (0, 0.5))]
    P = dict(zip("abcdefg", pts))
    L = {k: geo.addLine(P[k[0]], P[k[1]]) for k in ("ab", "bc", "cd", "de", "ef", "fg", "ga", "be")}
    cp = geo.addCurveLoop([L["ab"], L["be"], L["ef"], L["fg"], L["ga"]])
    cn = geo.addCurveLoop([L["bc"], L["cd"], L["de"], -L["be"]])
    sp, sn = geo.addPlaneSurface([cp]), geo.addPlaneSurface([cn])
    geo.synchronize()
    for dim, tags, name in ((2, [sp], "p_side"), (2, [sn], "n_side"), (1, [L["ga"]], "anode"),
                            (1, [L["cd"]], "cathode"), (1, [L["be"]], "junction")):
        gmsh.model.addPhysicalGroup(dim, tags, name=name)
    fd = gmsh.model.mesh.field
    dist = fd.add("Distance")
    fd.setNumbers(dist, "CurvesList", [L["be"]])
    thr = fd.add("Threshold")
    fd.setNumber(thr, "InField", dist)
    for k, v in (("SizeMin", h_junction), ("SizeMax", h), ("DistMin", 0.05), ("DistMax", 0.3)):
        fd.setNumber(thr, k, v)
    fd.setAsBackgroundMesh(thr)
    gmsh.option.setNumber("Mesh.MeshSizeExtendFromBoundary", 0)
    gmsh.option.setNumber("Mesh.MshFileVersion", 2.2)
    gmsh.model.mesh.generate(2)
    gmsh.write(path)
    gmsh.finalize()


def _self_check() -> None:
    import tempfile
    prm = dict(NA_cm3=1e17, ND_cm3=1e17, ni_cm3=1e10, eps_r=11.1, mu_n_cm2Vs=400.0,
               mu_p_cm2Vs=200.0, tau_n_s=1e-5, tau_p_s=1e-5, T_K=300.0)
    biases = [round(0.1 * k, 10) for k in range(8)]
    with tempfile.TemporaryDirectory() as td:
        path = os.path.join(td, "diode.msh")
        _make_test_mesh(path)
        r = run_devsim_diode(path, length_unit_m=1e-6, params=prm, biases_V=biases)
    print(f"nodes={r['n_nodes']} equations={r['n_equations']} setup={r['setup_time_s']:.3f}s")
    print(f"{'V':>5} {'I_anode[A/m]':>14} {'I_cathode[A/m]':>15} {'In_anode':>11} {'Ip_anode':>11}"
          f" {'iters':>5} {'time[s]':>8}")
    for i, v in enumerate(r["voltage"]):
        print(f"{v:5.2f} {r['current_anode'][i]:14.6e} {r['current_cathode'][i]:15.6e}"
              f" {r['electron_current_anode'][i]:11.3e} {r['hole_current_anode'][i]:11.3e}"
              f" {r['iterations'][i]:5d} {r['time_s'][i]:8.4f}")
    Ia, Ic = r["current_anode"], r["current_cathode"]
    imbalance = np.abs(Ia + Ic) / np.maximum(np.abs(Ia), 1e-300)
    print("max |I_a + I_c|/|I_a| for V >= 0.2 V:", imbalance[r["voltage"] >= 0.2].max())

    # 1D short-base Shockley estimate (diffusion lengths ~100 um >> 1 um quasi-neutral widths):
    # J = q ni^2 [Dn/(NA Wp) + Dp/(ND Wn)] (exp(V/Vt) - 1), Wp/Wn = 1 um minus the depletion edge.
    q, Vt = sc.e, sc.k * prm["T_K"] / sc.e
    eps = prm["eps_r"] * sc.epsilon_0 / 100
    NA, ND, ni = prm["NA_cm3"], prm["ND_cm3"], prm["ni_cm3"]
    Vbi = Vt * np.log(NA * ND / ni**2)
    print(f"{'V':>5} {'I_devsim':>11} {'J1D*H(1um)':>11} {'ratio':>6}   (H = full device height)")
    for v, ia in zip(r["voltage"], Ia):
        if not 0.45 < v < 0.65:
            continue
        W = np.sqrt(2 * eps * (Vbi - v) * (NA + ND) / (q * NA * ND))   # cm
        Wp, Wn = 1e-4 - W * ND / (NA + ND), 1e-4 - W * NA / (NA + ND)
        J = q * ni**2 * (Vt * prm["mu_n_cm2Vs"] / (NA * Wp) + Vt * prm["mu_p_cm2Vs"] / (ND * Wn)) \
            * np.expm1(v / Vt)                                        # A/cm^2
        I1d = J * 1e-4 * 100                                          # x 1 um height, A/cm -> A/m
        print(f"{v:5.2f} {ia:11.4e} {I1d:11.4e} {ia / I1d:6.3f}")
    print(f"typical solve time per bias point: {np.median(r['time_s']):.4f} s, "
          f"Newton iterations: {list(r['iterations'])}")


if __name__ == "__main__":
    _self_check()
