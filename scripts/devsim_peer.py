"""DEVSIM peer code for ``scripts/bench_devsim.py``: steady-state drift-diffusion pn diode.

``run_devsim_diode`` loads a 2D (triangles) or 3D (tetrahedra) gmsh mesh (regions "p_side" and
"n_side"; contacts "anode" and "cathode" and interface "junction", one dimension lower), builds
Poisson + electron/hole continuity with Scharfetter-Gummel (Bernoulli) edge currents in DEVSIM's
equation-model language and sweeps one contact's voltage with DEVSIM's fully coupled Newton and
its default direct solver (UMFPACK).  ``python devsim_peer.py`` runs a self-check on a small
generated 2D mesh.

Physics (as in pvsim): Boltzmann statistics, constant mobilities, SRH only with the trap at the
intrinsic level (n1 = p1 = ni), uniform doping per region, ohmic contacts (charge-neutral Dirichlet
values, both quasi-Fermi levels = contact voltage), psi/n/p continuous across the junction, zero
flux elsewhere.  psi is referenced to the intrinsic level, n = ni exp(psi/Vt), Vt = kT/q (CODATA);
DEVSIM's variable Potential is psi + PSI_OFFSET_V (0.01 V), for its convergence test (below).

DEVSIM facts relied on (from its C++ source: Newton.cc, Equation.cc, Region.cc, Device.cc,
ExprContactEquation.cc, MathCommands.cc; devsim 2.10/2.11):

* ``solve(type="dc", relative_error=r, absolute_error=a)``: after each Newton update dx (as changed
  by the update limiting below) each equation computes over its region's nodes, in DEVSIM units
  (psi in V, n and p in cm^-3),  rel_e = max_i |dx_i|/(|x_i,new| + 1e-10),  abs_e = max_i |dx_i|.
  A region SUMS rel_e and abs_e over its equations; the device SUMS the regions' rel and takes the
  MAX of their abs.  Converged iff device_rel < r and device_abs < a, tested on the update just
  applied (and kept).  Here device_rel is a sum of 6 terms ({p_side, n_side} x {psi, n, p}).  With
  e_v = max over all nodes of |dx|/(|x| + 1e-10) for variable v, the pvsim test  max_v e_v < r  is
  looser than DEVSIM's and  max_v e_v < r/6  stricter.  The psi term depends on the psi reference:
  at a node with Potential ~ 0 it is |dpsi| < r * 1e-10 V, which round-off defeats: with psi from
  the intrinsic level, the junction-plane nodes of a mirror-symmetric mesh (symmetric doping) sit
  at psi = 0 +- 1e-16 V and floor device_rel at ~1e-6 at 0 V, so no solve there converges.
  Hence the offset PSI_OFFSET_V, which moves Potential = 0 off that plane to between nodes in the
  depletion region; it is small because a larger one (1 V) makes the potentials, and with them the
  round-off of the majority fluxes in the terminal currents, larger (DEVSIM's |I_a + I_c| / |I_a|
  in 2D at 0.15 V: 4e-4 without offset or with 0.01 V, 3e-3 with 1 V).  The equilibrium-Poisson
  stage uses max(r, 1e-8).  ``abs_tol=1e30``
  disables the absolute test (it would mix V and cm^-3).
* ``variable_update``: n, p "positive" (an update making a density <= 0 gives 0.001*old instead);
  psi "log_damp" in the equilibrium stage (an update |dpsi| > 0.0259 V is replaced by
  sign*0.0259*ln(1 + |dpsi|/0.0259)) and POTENTIAL_UPDATE = "default" (plain Newton update) in the
  drift-diffusion solves (log_damp took 7 instead of 5 iterations per 0.1 V step in the self-check,
  identical currents).
* ``solve(..., info=True)`` does not raise on non-convergence; it returns a dict with ``converged``,
  ``iterations`` (one entry per Newton iteration; we use its length) and ``number_of_equations``.
  On failure DEVSIM restores the previous solution.
* ``get_contact_current`` sums edge_current_model * EdgeCouple over the edges at the contact's
  nodes, sign +1 where the contact node is the edge's node0 and -1 where it is node1; our edge
  currents are (conventional current density) . (unit vector node0 -> node1).  So the reported
  current is the conventional current flowing from the contact INTO the device: positive at the
  anode in forward bias, current_anode + current_cathode = 0 up to round-off.  2D DEVSIM gives A/cm
  (EdgeCouple in cm); we return A/m (x100).  3D DEVSIM gives A (EdgeCouple is an area in cm^2);
  returned as is.  Contact currents are small differences of large
  majority-carrier fluxes, so tiny currents (reverse bias, ~1e-11 A/m in the self-check) carry a
  round-off noise of ~1e-13 A/m, independent of rel_tol.
* Geometry: DEVSIM's NodeVolume is the sum of the pyramids EdgeCouple * EdgeLength / (2 d) over a
  node's edges, and its EdgeCouple is never negative: on the 3D gmsh tetrahedra of
  scripts/bench_devsim.py (6,092 of 36,326 P1 couples negative) its node volumes sum to 1.11-1.13
  times the region volume; on the 2D triangles to 1.0001-1.0007; on the structured Kuhn
  tetrahedra (no negative P1 couple) to 1 (round-off), and there its couples and volumes equal
  the P1 ones except on the outer faces (the P1 ones depend on the Kuhn diagonals there).  pvsim
  uses the signed P1 stiffness couples and barycentric volumes |K|/(d+1).  ``geometry="p1"`` puts
  those in DEVSIM's place through the region parameters edge_couple_model and node_volume_model,
  so that both codes solve the identical discrete system.
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
VERBOSE = False                # True: let DEVSIM print its log (else it is swallowed)
MIN_STEP_V = 1e-4              # smallest continuation step before giving up
POTENTIAL_UPDATE = "default"   # DEVSIM variable_update for Potential in the DD solves
PSI_OFFSET_V = 0.01            # DEVSIM's Potential = psi (from the intrinsic level) + this
_EQ = {"Potential": "PotentialEquation", "Electrons": "ElectronContinuityEquation",
       "Holes": "HoleContinuityEquation"}
_VARS = tuple(_EQ)


def _f(x: float) -> str:
    """Number literal for DEVSIM expressions."""
    return f"({float(x):.17g})"


def _node(reg, name, expr, wrt=_VARS):
    """Node model plus its derivatives name:var (symbolic diff by DEVSIM)."""
    ds.node_model(device=DEV, region=reg, name=name, equation=expr)
    for v in wrt:
        ds.node_model(device=DEV, region=reg, name=f"{name}:{v}", equation=f"diff({expr}, {v})")


def _edge(reg, name, expr, wrt=_VARS):
    """Edge model plus its derivatives name:var@n0 / name:var@n1."""
    ds.edge_model(device=DEV, region=reg, name=name, equation=expr)
    for v in wrt:
        for n in ("n0", "n1"):
            ds.edge_model(device=DEV, region=reg, name=f"{name}:{v}@{n}",
                          equation=f"diff({expr}, {v}@{n})")


def _equation(reg, var, node_model, edge_model, update):
    ds.equation(device=DEV, region=reg, name=_EQ[var], variable_name=var, node_model=node_model,
                edge_model=edge_model, variable_update=update)


def _dirichlet(contact, var, value, **flux):
    """Contact equation var = value (contact node model and its derivative)."""
    name = f"{contact}_{var}"
    ds.contact_node_model(device=DEV, contact=contact, name=name, equation=f"{var} - ({value})")
    ds.contact_node_model(device=DEV, contact=contact, name=f"{name}:{var}", equation="1")
    ds.contact_equation(device=DEV, contact=contact, name=_EQ[var], node_model=name, **flux)


def _continuous(var):
    """Continuity of ``var`` across the junction: var@r0 - var@r1 = 0."""
    name = f"cont_{var}"
    ds.interface_model(device=DEV, interface="junction", name=name, equation=f"{var}@r0 - {var}@r1")
    ds.interface_model(device=DEV, interface="junction", name=f"{name}:{var}@r0", equation="1")
    ds.interface_model(device=DEV, interface="junction", name=f"{name}:{var}@r1", equation="-1")
    ds.interface_equation(device=DEV, interface="junction", name=_EQ[var], interface_model=name,
                          type="continuous")


def _load_mesh(msh_path: str, scale_to_cm: float) -> tuple[int, int, dict, np.ndarray]:
    """Read the .msh with meshio, scale to cm and pass it to DEVSIM's gmsh loader (which has no
    scale option) as coordinates/elements/physical_names lists.  2D: triangles in the regions,
    lines in the contacts and the junction; 3D: tetrahedra, and triangles in the contacts and the
    junction.  Returns (number of mesh nodes, mesh dimension, {region: (M, dim+1) simplices as
    indices into the points}, (N, dim) points in cm)."""
    import meshio
    m = meshio.read(msh_path)
    names = list(m.field_data)
    index = {(int(d), int(t)): i for i, (t, d) in enumerate(m.field_data.values())}
    dim = max({"line": 1, "triangle": 2, "tetra": 3}.get(b.type, 0) for b in m.cells)
    if dim not in (2, 3):
        raise ValueError(f"{msh_path}: a 2D (triangles) or 3D (tetrahedra) mesh is needed")
    chunks, cells = [], {}
    for blk, tags in zip(m.cells, m.cell_data["gmsh:physical"]):
        etype = {"line": 1, "triangle": 2, "tetra": 3}.get(blk.type)   # DEVSIM type = dimension
        if etype not in (dim - 1, dim):
            continue
        phys = np.array([index.get((etype, int(t)), -1) for t in tags])
        keep = phys >= 0
        if etype == dim:
            for i in np.unique(phys[keep]):
                cells.setdefault(names[i], []).append(blk.data[phys == i])
        chunks.append(np.column_stack([np.full(keep.sum(), etype), phys[keep], blk.data[keep]]))
    pts = np.zeros((len(m.points), 3))
    pts[:, :m.points.shape[1]] = m.points * scale_to_cm
    ds.create_gmsh_mesh(mesh="m", coordinates=pts.ravel().tolist(), physical_names=names,
                        elements=np.concatenate([c.ravel() for c in chunks]).tolist())
    for r in ("p_side", "n_side"):
        ds.add_gmsh_region(mesh="m", gmsh_name=r, region=r, material="semiconductor")
    for c, r in (("anode", "p_side"), ("cathode", "n_side")):
        ds.add_gmsh_contact(mesh="m", gmsh_name=c, region=r, name=c, material="metal")
    ds.add_gmsh_interface(mesh="m", gmsh_name="junction", name="junction", region0="p_side",
                          region1="n_side")
    ds.finalize_mesh(mesh="m")
    ds.create_device(mesh="m", device=DEV)
    n_nodes = len(np.unique(np.concatenate([c[:, 2:].ravel() for c in chunks])))
    return n_nodes, dim, {k: np.concatenate(v) for k, v in cells.items()}, pts[:, :dim]


def _p1_geometry(region: str, cells: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The P1-stiffness (EAFE) couples and lumped barycentric volumes that pvsim uses
    (pvsim/discretize.py) on ``region``, in DEVSIM's edge and node order.  For an element K with
    barycentric gradients g_k the couple of edge (i, j) is -|K| g_i . g_j |x_i - x_j| (cm in 2D,
    cm^2 in 3D; may be negative), summed over the region's elements; a corner's volume is
    |K|/(d+1).  Returns (couples, volumes)."""
    d = pts.shape[1]
    x = pts[cells]
    e = x[:, 1:, :] - x[:, :1, :]
    meas = np.abs(np.linalg.det(e)) / (2.0 if d == 2 else 6.0)
    g = np.swapaxes(np.linalg.inv(e), -1, -2)
    g = np.concatenate([-g.sum(axis=1, keepdims=True), g], axis=1)          # (M, d+1, d)
    coord = np.array(ds.get_node_model_values(device=DEV, region=region, name="coordinate_index"))
    local = np.full(len(pts), -1)
    local[coord.astype(int)] = np.arange(len(coord))
    nodes = local[cells]
    nn = len(coord)
    couple: dict[int, float] = {}
    for a in range(d + 1):
        for b in range(a + 1, d + 1):
            w = -meas * np.einsum("ij,ij->i", g[:, a], g[:, b])
            w *= np.linalg.norm(x[:, a] - x[:, b], axis=1)
            key = np.minimum(nodes[:, a], nodes[:, b]) * nn + np.maximum(nodes[:, a], nodes[:, b])
            for k, v in zip(key.tolist(), w.tolist()):
                couple[k] = couple.get(k, 0.0) + v
    vol = np.zeros(nn)
    np.add.at(vol, nodes.ravel(), np.repeat(meas / (d + 1), d + 1))
    ds.edge_from_node_model(device=DEV, region=region, node_model="node_index")
    n0, n1 = (np.array(ds.get_edge_model_values(device=DEV, region=region, name=f"node_index@{t}"))
              .astype(int) for t in ("n0", "n1"))
    return np.array([couple[k] for k in (np.minimum(n0, n1) * nn + np.maximum(n0, n1)).tolist()]), vol


def _compare_geometry(region: str, couples: np.ndarray, volumes: np.ndarray) -> dict:
    """DEVSIM's own EdgeCouple and NodeVolume on ``region`` against the P1 ones."""
    ec = np.array(ds.get_edge_model_values(device=DEV, region=region, name="EdgeCouple"))
    nv = np.array(ds.get_node_model_values(device=DEV, region=region, name="NodeVolume"))
    scale = np.abs(couples).max()
    return dict(negative=int(np.sum(couples < -1e-12 * scale)), volume_ratio=nv.sum() / volumes.sum(),
                couple_diff=np.abs(ec - couples).max() / scale,
                volume_diff=np.abs(nv - volumes).max() / volumes.max())


def _use_p1_geometry(region: str, couples: np.ndarray, volumes: np.ndarray) -> None:
    """Put the P1 couples and volumes in place of DEVSIM's EdgeCouple and NodeVolume in
    ``region``, through the region parameters edge_couple_model and node_volume_model, which
    DEVSIM's assembly and get_contact_current read."""
    ds.edge_solution(device=DEV, region=region, name="P1EdgeCouple")
    ds.set_edge_values(device=DEV, region=region, name="P1EdgeCouple", values=couples.tolist())
    ds.node_solution(device=DEV, region=region, name="P1NodeVolume")
    ds.set_node_values(device=DEV, region=region, name="P1NodeVolume", values=volumes.tolist())
    ds.set_parameter(device=DEV, region=region, name="edge_couple_model", value="P1EdgeCouple")
    ds.set_parameter(device=DEV, region=region, name="node_volume_model", value="P1NodeVolume")


def _solve(rel_tol, abs_tol, max_iter):
    """One devsim.solve; returns (converged, n_iterations, wall seconds, n_equations)."""
    t0 = time.perf_counter()
    info = ds.solve(type="dc", solver_type="direct", relative_error=rel_tol,
                    absolute_error=abs_tol, maximum_iterations=max_iter, info=True)
    dt = time.perf_counter() - t0
    return bool(info["converged"]), len(info["iterations"]), dt, info.get("number_of_equations")


def run_devsim_diode(msh_path: str, *, length_unit_m: float, params: dict, biases_V: list[float],
                     contact_swept: str = "anode", rel_tol: float = 1e-10, abs_tol: float = 1e30,
                     max_iter: int = 40, geometry: str = "devsim") -> dict:
    """Simulate the diode on ``msh_path`` and return its IV curve.

    Coordinates in the mesh are in units of ``length_unit_m`` metres.  ``params`` (CGS): NA_cm3,
    ND_cm3, ni_cm3, eps_r, mu_n_cm2Vs, mu_p_cm2Vs, tau_n_s, tau_p_s, T_K.  Flow: potential-only
    equilibrium solve, full DD at 0 V, then ``contact_swept`` is set to each of ``biases_V`` in
    order (the other contact stays at 0 V), one solve per point (a 0 V point is re-solved too).
    A failed step is retried from the last converged point with the step halved (down to
    MIN_STEP_V); RuntimeError if even that fails.  "voltage" is the swept contact's voltage.
    ``geometry``: "devsim" (its own EdgeCouple and NodeVolume) or "p1" (pvsim's, see the module
    docstring).

    Returns dict: voltage (V), current_anode, current_cathode, electron_current_anode,
    hole_current_anode (2D: A/m, per metre of depth; 3D: A; conventional current flowing from the
    contact into the device, see module docstring), time_s (wall time of the devsim.solve calls for each bias
    point, INCLUDING any continuation sub-steps and failed attempts for it), iterations (Newton
    iterations summed over the same solves), n_solves (solve calls per point), setup_time_s
    (equilibrium + 0 V solves), n_nodes (mesh nodes), n_equations, units ('A/m' or 'A'), dim,
    negative_couples (number of negative P1 couples, relative round-off 1e-12), geometry_check
    ({region: dict(negative, volume_ratio = sum of DEVSIM's NodeVolume / region volume,
    couple_diff = max |EdgeCouple - P1 couple| / max |P1 couple|, volume_diff = max |NodeVolume -
    P1 volume| / max P1 volume)}, DEVSIM's own geometry whatever ``geometry``).
    """
    # DEVSIM writes its log through Python's sys.stdout: swallow it unless VERBOSE
    sink = contextlib.nullcontext() if VERBOSE else contextlib.redirect_stdout(io.StringIO())
    with sink:
        return _simulate(msh_path, length_unit_m, params, list(biases_V), contact_swept, rel_tol,
                         abs_tol, max_iter, geometry)


def _simulate(msh_path, length_unit_m, p, biases_V, contact_swept, rel_tol, abs_tol, max_iter,
              geometry):
    contacts = {"anode": "p_side", "cathode": "n_side"}
    if contact_swept not in contacts:
        raise ValueError(f"contact_swept must be 'anode' or 'cathode', not {contact_swept!r}")
    ds.reset_devsim()
    n_nodes, dim, cells, pts = _load_mesh(msh_path, length_unit_m * 100.0)
    if geometry not in ("devsim", "p1"):
        raise ValueError(f"geometry must be 'devsim' or 'p1', not {geometry!r}")
    geo = {}
    for reg in ("p_side", "n_side"):
        couples, volumes = _p1_geometry(reg, cells[reg], pts)
        geo[reg] = _compare_geometry(reg, couples, volumes)
        if geometry == "p1":
            _use_p1_geometry(reg, couples, volumes)
    negative = sum(g["negative"] for g in geo.values())
    q, ni, Vt = sc.e, p["ni_cm3"], sc.k * p["T_K"] / sc.e
    eps = p["eps_r"] * sc.epsilon_0 / 100.0                 # F/cm
    dop = {"p_side": -p["NA_cm3"], "n_side": p["ND_cm3"]}

    def neutral(N):   # charge-neutral Boltzmann (n, p, psi); minority density without cancellation
        maj = abs(N) / 2 + np.sqrt(N * N / 4 + ni * ni)
        n, h = (maj, ni * ni / maj) if N > 0 else (ni * ni / maj, maj)
        return n, h, Vt * np.arcsinh(N / (2 * ni))

    # --- stage 1: Poisson with equilibrium (Boltzmann, psi-dependent) carriers ----------------
    for reg, N in dop.items():
        ds.node_solution(device=DEV, region=reg, name="Potential")
        nn = len(ds.get_node_model_values(device=DEV, region=reg, name="Potential"))
        ds.set_node_values(device=DEV, region=reg, name="Potential",
                           values=[neutral(N)[2] + PSI_OFFSET_V] * nn)
        ds.edge_from_node_model(device=DEV, region=reg, node_model="Potential")
        psi = f"(Potential - {_f(PSI_OFFSET_V)})"
        _node(reg, "PotentialNodeCharge", f"-{_f(q)}*({_f(ni)}*exp(-{psi}/{_f(Vt)})"
              f" - {_f(ni)}*exp({psi}/{_f(Vt)}) + {_f(N)})", ("Potential",))
        _edge(reg, "PotentialEdgeFlux",
              f"{_f(eps)}*(Potential@n0 - Potential@n1)*EdgeInverseLength", ("Potential",))
        _equation(reg, "Potential", "PotentialNodeCharge", "PotentialEdgeFlux", "log_damp")
    for c, reg in contacts.items():
        ds.set_parameter(device=DEV, name=f"{c}_bias", value=0.0)
        _dirichlet(c, "Potential", f"{c}_bias + {_f(neutral(dop[reg])[2] + PSI_OFFSET_V)}",
                   edge_charge_model="PotentialEdgeFlux")
    _continuous("Potential")
    ok, _, setup_t, _ = _solve(max(rel_tol, 1e-8), abs_tol, max(max_iter, 100))
    if not ok:
        raise RuntimeError("DEVSIM: equilibrium Poisson solve did not converge")

    # --- stage 2: full drift-diffusion, carriers initialised from the equilibrium potential ---
    usrh = (f"(Electrons*Holes - {_f(ni * ni)})/({_f(p['tau_p_s'])}*(Electrons + {_f(ni)})"
            f" + {_f(p['tau_n_s'])}*(Holes + {_f(ni)}))")
    vd = f"((Potential@n0 - Potential@n1)/{_f(Vt)})"
    for reg, N in dop.items():
        psi = np.array(ds.get_node_model_values(device=DEV, region=reg, name="Potential")) - PSI_OFFSET_V
        for var, vals in (("Electrons", ni * np.exp(psi / Vt)), ("Holes", ni * np.exp(-psi / Vt))):
            ds.node_solution(device=DEV, region=reg, name=var)
            ds.set_node_values(device=DEV, region=reg, name=var, values=vals.tolist())
            ds.edge_from_node_model(device=DEV, region=reg, node_model=var)
        _node(reg, "PotentialNodeCharge", f"-{_f(q)}*(Holes - Electrons + {_f(N)})")
        _node(reg, "ElectronGeneration", f"-{_f(q)}*{usrh}")      # div Jn - q U = 0
        _node(reg, "HoleGeneration", f"{_f(q)}*{usrh}")           # div Jp + q U = 0
        # Scharfetter-Gummel: J . (unit vector n0 -> n1), B(x) = x/(exp(x) - 1)
        _edge(reg, "ElectronCurrent", f"{_f(q * p['mu_n_cm2Vs'] * Vt)}*EdgeInverseLength*"
              f"(Electrons@n1*B(-{vd}) - Electrons@n0*B({vd}))")
        _edge(reg, "HoleCurrent", f"{_f(q * p['mu_p_cm2Vs'] * Vt)}*EdgeInverseLength*"
              f"(Holes@n0*B(-{vd}) - Holes@n1*B({vd}))")
        _equation(reg, "Potential", "PotentialNodeCharge", "PotentialEdgeFlux", POTENTIAL_UPDATE)
        _equation(reg, "Electrons", "ElectronGeneration", "ElectronCurrent", "positive")
        _equation(reg, "Holes", "HoleGeneration", "HoleCurrent", "positive")
    for c, reg in contacts.items():
        n0, p0, _ = neutral(dop[reg])
        _dirichlet(c, "Electrons", _f(n0), edge_current_model="ElectronCurrent")
        _dirichlet(c, "Holes", _f(p0), edge_current_model="HoleCurrent")
    _continuous("Electrons")
    _continuous("Holes")
    ok, _, dt, n_eq = _solve(rel_tol, abs_tol, max_iter)
    setup_t += dt
    if not ok:
        raise RuntimeError("DEVSIM: drift-diffusion solve at 0 V did not converge")

    # --- stage 3: bias sweep with step-halving continuation ------------------------------------
    to_si = 100.0 if dim == 2 else 1.0     # 2D: A/cm -> A/m; 3D: DEVSIM's currents are in A

    def cur(c, var):
        return to_si * ds.get_contact_current(device=DEV, contact=c, equation=_EQ[var])

    rows, v_now = [], 0.0
    for target in biases_V:
        t_sum, it_sum, n_sol, step = 0.0, 0, 0, target - v_now
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
        e_a, h_a = cur("anode", "Electrons"), cur("anode", "Holes")
        rows.append((e_a + h_a, cur("cathode", "Electrons") + cur("cathode", "Holes"), e_a, h_a,
                     t_sum, it_sum, n_sol))
    keys = ("current_anode", "current_cathode", "electron_current_anode", "hole_current_anode",
            "time_s", "iterations", "n_solves")
    cols = np.array(rows, dtype=float).reshape(-1, len(keys)).T
    res = dict(zip(keys, cols))
    res.update(iterations=cols[5].astype(int), n_solves=cols[6].astype(int),
               units="A/m" if dim == 2 else "A", voltage=np.asarray(biases_V, dtype=float),
               n_nodes=n_nodes, n_equations=n_eq, setup_time_s=setup_t, dim=dim,
               negative_couples=negative, geometry_check=geo)
    return res


def _make_test_mesh(path: str, h: float = 0.05, h_junction: float = 0.01) -> None:
    """2 um x 1 um test diode (um units): p_side x < 1, n_side x > 1, anode = x=0, y in [0, 0.5]."""
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
    """Small partial-anode diode: IV table, current balance, 1D short-base Shockley comparison."""
    import tempfile
    prm = dict(NA_cm3=1e17, ND_cm3=1e17, ni_cm3=1e10, eps_r=11.1, mu_n_cm2Vs=400.0,
               mu_p_cm2Vs=200.0, tau_n_s=1e-5, tau_p_s=1e-5, T_K=300.0)
    with tempfile.TemporaryDirectory() as td:
        path = os.path.join(td, "diode.msh")
        _make_test_mesh(path)
        r = run_devsim_diode(path, length_unit_m=1e-6, params=prm,
                             biases_V=[round(0.1 * k, 10) for k in range(8)])
    V, Ia, Ic = r["voltage"], r["current_anode"], r["current_cathode"]
    print(f"nodes={r['n_nodes']} equations={r['n_equations']} setup={r['setup_time_s']:.3f} s")
    print("    V  I_anode[A/m]  I_cathode[A/m]   In_anode   Ip_anode iters  time[s]")
    for i, v in enumerate(V):
        print(f"{v:5.2f} {Ia[i]:13.6e} {Ic[i]:15.6e} {r['electron_current_anode'][i]:10.3e}"
              f" {r['hole_current_anode'][i]:10.3e} {int(r['iterations'][i]):5d}"
              f" {r['time_s'][i]:8.4f}")
    bal = (np.abs(Ia + Ic) / np.abs(Ia))[V >= 0.2].max()
    print(f"max |I_a + I_c|/|I_a| for V >= 0.2 V: {bal:.2e}")
    # 1D short-base Shockley (L_n,p = sqrt(D tau) ~ 100 um >> 1 um quasi-neutral widths W_p,n):
    # J = q ni^2 [Dn/(NA Wp) + Dp/(ND Wn)] (exp(V/Vt) - 1), W = 1 um minus the depletion edge,
    # times the full 1 um device height (the half-height anode only lengthens the electron paths).
    q, Vt, eps = sc.e, sc.k * prm["T_K"] / sc.e, prm["eps_r"] * sc.epsilon_0 / 100
    NA, ND, ni = prm["NA_cm3"], prm["ND_cm3"], prm["ni_cm3"]
    print("    V  I_devsim    I_1D*1um   ratio")
    ok = bal < 1e-3
    for v, ia in zip(V, Ia):
        if 0.45 < v < 0.65:
            W = np.sqrt(2 * eps * (Vt * np.log(NA * ND / ni**2) - v) * (NA + ND) / (q * NA * ND))
            Wp, Wn = 1e-4 - W * ND / (NA + ND), 1e-4 - W * NA / (NA + ND)          # cm
            J = q * ni**2 * Vt * (prm["mu_n_cm2Vs"] / (NA * Wp) + prm["mu_p_cm2Vs"] / (ND * Wn))
            i1d = J * np.expm1(v / Vt) * 1e-4 * 100                          # A/cm^2 -> A/m
            print(f"{v:5.2f} {ia:10.4e} {i1d:10.4e} {ia / i1d:6.3f}")
            ok &= 0.5 < ia / i1d < 2.0
    print(f"median solve time per bias point {np.median(r['time_s'][1:]):.4f} s, "
          f"Newton iterations {r['iterations'].tolist()}")
    print("SELF-CHECK", "PASSED" if ok else "FAILED")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    _self_check()
