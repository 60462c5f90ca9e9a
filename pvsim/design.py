"""Inverse design: differentiable parameters, mesh morphing and IV sweeps for optax.

The implicit adjoint (:mod:`pvsim.adjoint`) makes a converged state a differentiable
function of :class:`~pvsim.params.Params`; this module turns design variables into Params:

* **Material, contact, thermal and bias parameters** are leaves of Params;
  :func:`region_index`, :func:`set_leaf` and :func:`scale_leaf` change one region's (or
  contact's, or boundary's) entry without rebuilding anything (so nothing recompiles).
* **Geometric parameters** (shell thickness, aperture radius, layer thicknesses) move the
  mesh (DESIGN.md, "Shape gradients"): each generator records, in ``Mesh.shape``, the
  velocity d x / d theta of the boundary and interface nodes a parameter moves;
  :func:`shape_fields` extends it into the interior by a discrete Laplace solve (harmonic
  extension with the uniform graph Laplacian, which keeps a node inside the convex hull of
  its neighbours' motion, so small steps cannot fold elements), and :func:`morph` returns the
  Params of the mesh X0 + sum_k theta_k V_k: edge weights, control volumes, edge lengths and
  the interface, Schottky and Robin areas are recomputed from X in JAX.
* :func:`iv_sweep` is a whole IV curve as one differentiable function: bias points are
  independent steady states, each started from a converged forward point.

First-order validity: the morphed mesh is the generator's mesh at theta to first order in
theta - theta0; for large changes regenerate the mesh (the optimisation scripts do this
between stages).
"""

from __future__ import annotations

from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np

from .adjoint import make_steady_state


# ----------------------------------------------------------------- parameter updates
def region_index(device, name: str) -> int:
    """Index of a region in the per-region material arrays."""
    names = list(device.disc.region_names)
    if name not in names:
        raise KeyError(f"no region '{name}' (regions: {names})")
    return names.index(name)


def contact_index(device, name: str) -> int:
    names = device.contact_names
    if name not in names:
        raise KeyError(f"no contact '{name}' (contacts: {names})")
    return names.index(name)


def _get(tree, path: str):
    for part in path.split("."):
        tree = getattr(tree, part)
    return tree


def _set(tree, path: str, value):
    head, _, rest = path.partition(".")
    return replace(tree, **{head: value if not rest else _set(getattr(tree, head), rest, value)})


def set_leaf(params, path: str, value, index=None):
    """Params with leaf ``path`` (e.g. ``"material.mu_n"``, ``"thermal.robin_h"``,
    ``"doping"``) set to ``value``, or only its entry ``index`` (a region, contact or
    boundary index) when given. Values are in the scaled units of :mod:`pvsim.params`."""
    leaf = _get(params, path)
    return _set(params, path, value if index is None else leaf.at[index].set(value))


def scale_leaf(params, path: str, factor, index=None):
    """Params with leaf ``path`` (or its entry ``index``) multiplied by ``factor``: the
    unit-free way to vary a scaled parameter (factor 1 is the case's value)."""
    leaf = _get(params, path)
    return _set(params, path, leaf * factor if index is None else leaf.at[index].multiply(factor))


def shift_leaf(params, path: str, amount, index=None):
    """Params with ``amount`` added to leaf ``path`` (or its entry ``index``); for energies
    (scaled by kT: an eV shift is ``amount_eV / device.scales.V_T``)."""
    leaf = _get(params, path)
    return _set(params, path, leaf + amount if index is None else leaf.at[index].add(amount))


# ----------------------------------------------------------------------- morphing
def mesh_edges(mesh) -> np.ndarray:
    """Unique node pairs (E, 2) of all elements of all regions."""
    cells = [c for c in mesh.regions.values()]
    k = cells[0].shape[1]
    pairs = [(a, b) for a in range(k) for b in range(a + 1, k)]
    e = np.concatenate([np.sort(c[:, [a, b]], axis=1) for c in cells for a, b in pairs])
    return np.unique(e, axis=0)


def shape_fields(mesh, names=None) -> dict[str, np.ndarray]:
    """Full-mesh velocity fields V (N, dim) of geometric parameters (``Mesh.shape``).

    Boundary and interface nodes (those of every named physical group) take the recorded
    velocity of the parameter, or 0 where it does not move them; interior nodes take the
    harmonic extension (the uniform graph Laplacian, solved once per parameter).
    """
    import scipy.sparse.linalg as spla

    available = sorted(mesh.shape)
    names = available if names is None else list(names)
    bad = [n for n in names if n not in mesh.shape]
    if bad:
        raise KeyError(f"the mesh has no shape parameter(s) {bad}; it has {available} "
                       "(generated meshes record them; a mesh read from a file has none)")
    n = mesh.n_nodes
    fixed = np.zeros(n, bool)
    for faces in mesh.boundaries.values():
        fixed[np.asarray(faces).ravel()] = True
    lap = _graph_laplacian(mesh_edges(mesh), n)
    free = np.nonzero(~fixed)[0]
    lu = spla.splu(lap[free][:, free].tocsc()) if len(free) else None
    out = {}
    for name in names:
        sp_ = mesh.shape[name]
        v = np.zeros((n, mesh.dim))
        v[sp_.nodes] = sp_.velocity
        _slide_on_planes(mesh, sp_.nodes, v)
        fixed_now = fixed.copy()
        fixed_now[sp_.nodes] = True
        if lu is not None and not fixed_now[free].any():
            rhs = -(lap[free][:, fixed_now] @ v[fixed_now])
            v[free] = lu.solve(rhs)
        elif len(free):  # a parameter that moves interior nodes (rare): solve its own system
            fr = np.nonzero(~fixed_now)[0]
            v[fr] = spla.splu(lap[fr][:, fr].tocsc()).solve(-(lap[fr][:, fixed_now] @ v[fixed_now]))
        out[name] = v
    return out


def _graph_laplacian(edges, n: int):
    """Uniform-weight graph Laplacian (CSR) of undirected edges (E, 2) (repeats count once)."""
    import scipy.sparse as sp

    e = np.unique(np.sort(edges, axis=1), axis=0)
    adj = sp.coo_matrix((np.ones(2 * len(e)), (np.r_[e[:, 0], e[:, 1]], np.r_[e[:, 1], e[:, 0]])),
                        shape=(n, n)).tocsr()
    return sp.diags(np.asarray(adj.sum(axis=1)).ravel()) - adj


def _flat_pieces(mesh) -> list[tuple[np.ndarray, np.ndarray]]:
    """The boundary facets split into flat pieces: (facets, unit normal) per plane (2D: line)
    of every named group, each piece once."""
    x = mesh.points
    scale = float(np.ptp(x, axis=0).max())
    pieces = {}
    for faces in mesh.boundaries.values():
        faces = np.asarray(faces)
        p = x[faces]
        if mesh.dim == 2:
            d = p[:, 1] - p[:, 0]
            nrm = np.stack([-d[:, 1], d[:, 0]], axis=1)
        else:
            nrm = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
        nrm = nrm / np.linalg.norm(nrm, axis=1, keepdims=True)
        first = np.argmax(np.abs(nrm) > 1e-6, axis=1)  # canonical sign
        nrm = nrm * np.sign(nrm[np.arange(len(nrm)), first])[:, None]
        off = np.einsum("ij,ij->i", nrm, p[:, 0])
        key = np.round(np.c_[nrm, off / scale] * 1e6).astype(np.int64)
        for k in np.unique(key, axis=0):
            sel = np.all(key == k, axis=1)
            f = faces[sel]
            pieces.setdefault(tuple(np.unique(np.sort(f, axis=1), axis=0).ravel()), (f, nrm[sel][0]))
    return list(pieces.values())


def _slide_on_planes(mesh, listed, v) -> None:
    """Let unlisted nodes of flat boundary pieces slide in their plane (in place).

    A generator lists the nodes a parameter moves (an aperture wall, say); the nodes of a flat
    interface or face that meets them would otherwise stay put and the elements between
    would be squeezed. On every flat piece of a named group (:func:`_flat_pieces`) holding a
    listed node, the nodes that lie on that piece only take the harmonic interpolation (the
    piece's own graph Laplacian) of the in-plane part of the velocities of its other nodes:
    the domain is unchanged (the motion is tangential), the elements keep their shape far
    longer.
    """
    import scipy.sparse.linalg as spla

    if mesh.dim == 1:
        return
    pieces = _flat_pieces(mesh)
    count = np.zeros(mesh.n_nodes, int)
    for faces, _ in pieces:
        count[np.unique(faces)] += 1
    known = np.zeros(mesh.n_nodes, bool)
    known[listed] = True
    for faces, normal in pieces:
        nodes = np.unique(faces)
        free = (count[nodes] == 1) & ~known[nodes]
        if not known[nodes].any() or not free.any():
            continue
        local = np.searchsorted(nodes, faces)
        k = faces.shape[1]
        e = np.concatenate([local[:, [a, b]] for a in range(k) for b in range(a + 1, k)])
        lap = _graph_laplacian(e, len(nodes))
        vd = v[nodes[~free]]
        vd = vd - np.outer(vd @ normal, normal)  # in-plane part only
        fi, di = np.nonzero(free)[0], np.nonzero(~free)[0]
        v[nodes[fi]] = spla.splu(lap[fi][:, fi].tocsc()).solve(-(lap[fi][:, di] @ vd))


def morph_points(device, fields: dict, theta: dict, length_unit: float = 1e-9):
    """X0 + sum_k theta_k V_k in metres; ``theta`` maps parameter names to changes in
    ``length_unit`` (nm by default). Differentiable in theta."""
    x = jnp.asarray(device.mesh.points)
    for name, value in theta.items():
        x = x + (value * length_unit) * jnp.asarray(fields[name])
    return x


def morph(device, params, fields: dict, theta: dict, length_unit: float = 1e-9):
    """``params`` with the geometry of the morphed mesh (see :func:`morph_points`)."""
    return replace(params, geometry=device.geometry(morph_points(device, fields, theta, length_unit)))


def min_volume_ratio(device, points_m) -> float:
    """Smallest signed element measure of the morphed mesh over that of the original (> 0:
    no element folded); check it after large morphing steps."""
    from .mesh import signed_measures

    cells = np.concatenate(list(device.mesh.regions.values()))
    v0 = signed_measures(device.mesh.points, cells)
    v1 = signed_measures(np.asarray(points_m), cells)
    return float(np.min(v1 / v0))


class Remeshed:
    """``value_and_grad`` of a one-parameter shape objective for optax, on meshes regenerated
    as the parameter moves (mesh morphing is exact for the morphed mesh, but a morphed mesh
    drifts away from the one the generator would make, and large morphs fold elements).

    ``make_stage(theta)`` builds a stage at ``theta``: an object with ``dev`` (its Device),
    ``fields`` (:func:`shape_fields` of its mesh) and ``value_and_grad(delta)``, the objective
    of the mesh morphed by ``delta`` and its derivative. ``velocity`` maps the design
    parameter to the generator's shape parameters ({name: factor}: a shell thickened inward
    is ``{"shell": 1, "core_radius": -1}``). The stage is kept while the morph stays within
    ``window``, keeps every element above ``min_ratio`` of its area and adds no negative EAFE
    edge weight to those of the fresh mesh; otherwise a new stage is made at ``theta``.
    """

    def __init__(self, make_stage, velocity: dict, window: float, min_ratio: float = 0.6,
                 verbose: bool = False):
        self.make_stage, self.velocity, self.window = make_stage, velocity, window
        self.min_ratio, self.verbose = min_ratio, verbose
        self.stage, self.theta0, self.remeshes, self._negative = None, None, 0, 0

    def _negative_edges(self, points) -> int:
        from .discretize import negative_weights

        return int(negative_weights(np.asarray(self.stage.dev.geometry(points).edge_weight)).sum())

    def _valid(self, delta: float) -> bool:
        if abs(delta) > self.window:
            return False
        st = self.stage
        x = morph_points(st.dev, st.fields, {k: v * delta for k, v in self.velocity.items()})
        return min_volume_ratio(st.dev, x) >= self.min_ratio and self._negative_edges(x) <= self._negative

    def __call__(self, theta):
        t = float(theta[0])
        if self.stage is None or not self._valid(t - self.theta0):
            self.stage, self.theta0 = self.make_stage(t), t
            self._negative = self._negative_edges(self.stage.dev.mesh.points)
            self.remeshes += 1
            if self.verbose:
                print(f"  mesh {self.remeshes} at {t:.4f} ({self.stage.dev.mesh.n_nodes} nodes)", flush=True)
        value, grad = self.stage.value_and_grad(t - self.theta0)
        return value, jnp.atleast_1d(grad)


# ------------------------------------------------------------------------ IV sweeps
def operating_point(device, voltage_V=None, current=None):
    """(converged state, Params) at contact voltages (V) and set currents (device current
    units) reached by a continuation sweep from equilibrium: the start of an adjoint-solved
    objective. Raises RuntimeError with the sweep's report if it does not converge."""
    from .sweep import BiasPoint, run_sweep

    k = len(device.contacts)
    v = np.zeros(k) if voltage_V is None else np.asarray(voltage_V, float)
    i = np.zeros(k) if current is None else np.asarray(current, float)
    res = run_sweep(device, [BiasPoint(v, i)])
    if not res.ok:
        raise RuntimeError(f"operating point not reached: {res.failure}")
    pt = res.points[-1]
    return pt.u, device.params(pt.bias.voltage, pt.bias.current)


def iv_sweep(device, biases_V, contact="anode", start_points=None):
    """A differentiable IV curve: ``currents(params) -> (B,)`` terminal currents at the
    ``biases_V`` applied to ``contact`` (device current units).

    Each bias point is an independent steady state (implicit adjoint); the forward Newton of
    each starts from the converged point of a continuation sweep run here once (or from
    ``start_points``, a list of states), so parameter changes of the size an optimiser step
    makes converge in a few iterations. ``params`` is the bias-free base (its ``voltage`` is
    replaced at each point). Returns (currents, start_states).
    """
    from .figures import terminal_currents
    from .sweep import BiasPoint, run_sweep

    k = contact_index(device, contact)
    biases = np.asarray(biases_V, dtype=float)
    volts = np.zeros((len(biases), len(device.contacts)))
    volts[:, k] = biases
    if start_points is None:
        res = run_sweep(device, [BiasPoint(v, np.zeros(len(device.contacts))) for v in volts])
        if not res.ok:
            raise RuntimeError(f"forward IV sweep failed: {res.failure}")
        start_points = [p.u for p in res.points]
    starts = jnp.stack(start_points)
    vt = jnp.asarray(volts / device.scales.V_T)
    solve = make_steady_state(device)

    def currents(params):
        def one(args):
            u0, v = args
            p = replace(params, voltage=v)
            state = solve(u0, p)
            i = terminal_currents(device, state, p)[k]
            return jnp.where(state.status == 0, i, jnp.nan)

        return jax.lax.map(one, (starts, vt))

    return currents, start_points




# ------------------------------------------------------------------- optimisation loop
def projected_gradient(theta, grad, lower, upper, tol=1e-9):
    """The gradient with the components that push a parameter through its bound removed
    (for a minimisation: at the lower bound a positive gradient, at the upper a negative one)."""
    theta, grad = np.asarray(theta, float), np.asarray(grad, float)
    at_lo = theta <= np.asarray(lower) + tol * (np.abs(np.asarray(lower)) + 1)
    at_hi = theta >= np.asarray(upper) - tol * (np.abs(np.asarray(upper)) + 1)
    return np.where((at_lo & (grad > 0)) | (at_hi & (grad < 0)), 0.0, grad)


def optimise(value_and_grad, theta0, names, lower, upper, steps=40, learning_rate=0.1,
             reduce_by=1e3, history_path=None, title="", progress=True):
    """Minimise ``value_and_grad(theta) -> (value, gradient)`` with optax Adam, projected on
    the box [lower, upper] after each step; stops when the projected gradient norm has
    fallen ``reduce_by`` times below its start, or after ``steps``. ``learning_rate`` is a
    number or an optax schedule (e.g. ``optax.exponential_decay``: steps shrink near the
    optimum, where a remeshed objective's gradient is noisy).

    Returns an ``xarray.Dataset`` history (dims step, parameter): theta, objective,
    gradient, projected-gradient norm; written as NetCDF to ``history_path`` if given.
    A rich progress bar shows the objective and the gradient norm.
    """
    import optax
    import xarray as xr

    opt = optax.adam(learning_rate)
    theta = np.asarray(theta0, float)
    lower, upper = np.asarray(lower, float), np.asarray(upper, float)
    state = opt.init(jnp.asarray(theta))
    rows = []
    bar = _progress(progress)
    with bar:
        task = bar.add_task(title or "optimising", total=steps)
        for step in range(steps + 1):
            value, grad = value_and_grad(jnp.asarray(theta))
            value, grad = float(value), np.asarray(grad, float)
            if not np.isfinite(value) or not np.all(np.isfinite(grad)):
                raise RuntimeError(f"step {step}: the objective or its gradient is not finite at "
                                   f"{dict(zip(names, theta))} (a solve did not converge)")
            pg = float(np.linalg.norm(projected_gradient(theta, grad, lower, upper)))
            rows.append((theta.copy(), value, grad, pg))
            bar.update(task, completed=step, description=f"{title} f={value:.6g} |pg|={pg:.3g}")
            if pg <= rows[0][3] / reduce_by or step == steps:
                break
            upd, state = opt.update(jnp.asarray(grad), state, jnp.asarray(theta))
            theta = np.clip(theta + np.asarray(upd), lower, upper)
    th, val, gr, pgn = (np.array(c) for c in zip(*rows))
    ds = xr.Dataset(
        {"theta": (("step", "parameter"), th, dict(long_name="design parameters")),
         "objective": ("step", val, dict(long_name="objective (minimised)")),
         "gradient": (("step", "parameter"), gr, dict(long_name="gradient of the objective")),
         "projected_gradient_norm": ("step", pgn, dict(long_name="norm of the box-projected gradient"))},
        coords={"step": np.arange(len(rows)), "parameter": list(names)},
        attrs=dict(title=title, lower=lower, upper=upper,
                   optimizer=f"optax.adam({learning_rate if np.isscalar(learning_rate) else 'schedule'})"))
    if history_path is not None:
        from .io import write_netcdf

        write_netcdf(ds, history_path)
    return ds


def _progress(enabled):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    disable=not enabled, transient=False)


def describe_history(ds, unit: str = "") -> str:
    """One line on an :func:`optimise` history: objective, parameters and projected-gradient
    reduction from the first to the last step."""
    th, pg = np.asarray(ds.theta), np.asarray(ds.projected_gradient_norm)
    fmt = lambda t: ", ".join(f"{x:.4g}" for x in t)  # noqa: E731
    return (f"objective {float(ds.objective[0]):+.5f} -> {float(ds.objective[-1]):+.5f} in {len(pg) - 1} "
            f"steps; {', '.join(map(str, ds.parameter.values))} ({fmt(th[0])}) -> ({fmt(th[-1])}) {unit}; "
            f"projected gradient {pg[0]:.3g} -> {pg[-1]:.3g} ({pg[0] / pg[-1]:.0f}x)")


def plot_history(ds, path):
    """Objective, projected-gradient norm and parameters against the step (PNG/PDF)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(12, 3.4))
    ax[0].plot(ds.step, ds.objective, "o-", ms=3)
    ax[0].set(xlabel="step", ylabel="objective", title=ds.attrs.get("title", ""))
    ax[1].semilogy(ds.step, ds.projected_gradient_norm, "o-", ms=3)
    ax[1].set(xlabel="step", ylabel="|projected gradient|")
    for p in ds.parameter.values:
        ax[2].plot(ds.step, ds.theta.sel(parameter=p), "o-", ms=3, label=str(p))
    ax[2].set(xlabel="step", ylabel="parameter")
    ax[2].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


__all__ = ["region_index", "contact_index", "set_leaf", "scale_leaf", "shift_leaf", "shape_fields",
           "morph_points", "morph", "min_volume_ratio", "operating_point", "iv_sweep", "mesh_edges",
           "optimise", "projected_gradient", "plot_history"]
