"""Figures of a results Dataset (:mod:`pvsim.io`): I-V curve, band diagram, field maps.

Headless matplotlib: every figure made here is a ``matplotlib.figure.Figure`` on an Agg canvas
(``FigureCanvasAgg``), created inside the functions, never through ``pyplot``; so nothing is
imported or switched at ``import pvsim``, no display is needed, and a notebook's own backend is
left alone. Each plot function draws into ``ax`` when given (any Axes, pyplot ones included)
and returns the Axes; :func:`save_figure` writes PNG or PDF.

* :func:`plot_iv`: |current| against the voltage of one contact (log scale by default).
* :func:`plot_band`: E_c, E_v and the quasi-Fermi energies -phi_n, -phi_p (eV) along the 1D
  axis, or along a straight line through a 2D, axisymmetric or 3D mesh (default: the
  vertical axis, the last coordinate, through the lateral centre; the symmetry axis r = 0 when
  axisymmetric), sampled by P1 (linear) interpolation over the cells, with the regions the
  line crosses shaded and labelled. The lines carry ``gid`` = the Dataset variable
  (``"Ec"``, ``"Ev"``, ``"phi_n"``, ``"phi_p"``; the last two plotted negated).
* :func:`plot_map`: one node field. 1D: a line plot. 2D and axisymmetric: ``tripcolor`` with
  one colour per cell (the mean of its node values; geometric mean on a log scale) and the
  region outlines; axisymmetric optionally mirrored to -r. 3D: the exact cut of the tetrahedra
  by a plane normal to a coordinate axis (default y through the centre of the bounding box):
  one polygon per cut tetrahedron, coloured by the mean of the P1 field at its corners.
* :func:`cli_plot`: the figures the command line asks for, from a NetCDF file.

Colour and y scales are logarithmic automatically for fields with no negative value whose
positive values span more than 3 decades (densities, rates); the range shown is capped at
24 decades below the maximum (lower values, and zeros, get the lowest colour). Cells of an
insulator region (a region whose own nodes have no phi_n) are left blank (grey) in maps of
fields that are zero or undefined there (n, p, the rates, phi_n, phi_p, ...).
Lengths are plotted in nm; energies in eV (0 = the Fermi level of a grounded contact).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

_NM = 1e9
LOG_DECADES = 3.0  # a positive field spanning more decades than this gets a log scale
MAX_DECADES = 24.0  # a log scale shows at most this many decades below the maximum
_BAND_LINES = [  # (variable, label, sign, style)
    ("Ec", r"$E_c$", 1.0, dict(color="C0", lw=1.6)),
    ("Ev", r"$E_v$", 1.0, dict(color="C3", lw=1.6)),
    ("phi_n", r"$E_{Fn} = -\varphi_n$", -1.0, dict(color="C0", lw=1.1, ls="--")),
    ("phi_p", r"$E_{Fp} = -\varphi_p$", -1.0, dict(color="C3", lw=1.1, ls="--")),
]


# ------------------------------------------------------------------------- figure plumbing
def _new_axes(ax, figsize=(6.4, 4.2)):
    """``ax`` itself, or the Axes of a new Figure on an Agg canvas (no pyplot, no global state)."""
    if ax is not None:
        return ax
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig.add_subplot()


def save_figure(fig, path: str | Path, dpi: int = 150) -> Path:
    """Write a Figure (or the figure of an Axes) as PNG or PDF, by the suffix of ``path``."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("png", "pdf"):
        raise ValueError(f"save_figure writes .png or .pdf, not '{path.suffix or path.name}'")
    fig = getattr(fig, "figure", fig)  # an Axes: its figure
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format=fmt, dpi=dpi, bbox_inches="tight", pad_inches=0.05)
    return path


def _tex_units(units: str) -> str:
    """CF units as mathtext: 'm-3 s-1' -> 'm$^{-3}$ s$^{-1}$'."""
    return re.sub(r"([A-Za-z])(-?\d+)", r"\1$^{\2}$", units or "")


def _label(ds, field: str) -> str:
    units = ds[field].attrs.get("units", "")
    return f"{field} ({_tex_units(units)})" if units and units != "1" else field


# ------------------------------------------------------------------------- Dataset helpers
def _geometry(ds) -> str:
    return str(ds.attrs.get("geometry", f"{ds.sizes['dim']}D"))


def _axisymmetric(ds) -> bool:
    return _geometry(ds).startswith("axisymmetric")


def _axis_names(ds) -> tuple[str, ...]:
    if _axisymmetric(ds):
        return ("r", "z")
    return ("x", "y", "z")[: ds.sizes["dim"]]


def _region_names(ds) -> list[str]:
    names = str(ds.attrs.get("regions", "")).split()
    if not names and "cell_region" in ds:
        names = str(ds["cell_region"].attrs.get("flag_meanings", "")).split()
    n = int(np.max(ds["cell_region"].values)) + 1 if ds.sizes.get("cell", 0) else 0
    return names + [f"region {k}" for k in range(len(names), n)]


def _bias_index(ds, bias: int) -> int:
    n = ds.sizes["bias"]
    if not -n <= int(bias) < n:
        raise IndexError(f"bias {bias} out of range: the Dataset has {n} bias point(s) (0..{n - 1}, "
                         "negative counts from the end)")
    return int(bias) % n


def _node_fields(ds) -> list[str]:
    return [k for k, v in ds.data_vars.items() if v.dims in (("bias", "node"), ("node",))]


def _node_values(ds, field: str, b: int) -> np.ndarray:
    if field not in ds or ds[field].dims not in (("bias", "node"), ("node",)):
        raise ValueError(f"'{field}' is not a node field of this Dataset; node fields: "
                         f"{', '.join(_node_fields(ds))}")
    var = ds[field]
    return np.asarray(var.isel(bias=b) if "bias" in var.dims else var, dtype=float)


def _bias_title(ds, b: int) -> str:
    v = ds["voltage"].isel(bias=b).values
    parts = ", ".join(f"{c} {x:+.3g} V" for c, x in zip(ds["contact"].values, v))
    return f"bias point {b}: {parts}"


def _blank_regions(ds, values: np.ndarray) -> set[int]:
    """Insulator regions (with a cell touching a node without phi_n: no carriers there), when
    ``values`` is zero or undefined at every such node (a carrier quantity); else none."""
    if "phi_n" not in ds or "bias" not in ds["phi_n"].dims:
        return set()
    bare = np.isnan(np.asarray(ds["phi_n"].isel(bias=0).values))
    if not bare.any() or not np.all(np.isnan(values[bare]) | (values[bare] == 0)):
        return set()
    cells = np.asarray(ds["cells"].values)
    cr = np.asarray(ds["cell_region"].values)
    return {int(r) for r in np.unique(cr[bare[cells].any(axis=1)])}


def _region_color(k: int):
    from matplotlib import colormaps

    return colormaps["tab10"](k % 10)


# ------------------------------------------------------------------------- point location
def _simplices(x: np.ndarray, cells: np.ndarray):
    """Per simplex: first vertex (M, d), inverse edge matrix (M, d, d), non-degenerate flag."""
    v0 = x[cells[:, 0]]
    a = np.swapaxes(x[cells[:, 1:]] - v0[:, None, :], 1, 2)  # columns: edge vectors
    scale = np.abs(a).max(axis=(1, 2)) ** x.shape[1]
    ok = np.abs(np.linalg.det(a)) > 1e-12 * np.where(scale > 0, scale, 1.0)
    inv = np.zeros_like(a)
    inv[ok] = np.linalg.inv(a[ok])
    return v0, inv, ok


def _barycentric(v0, inv, q, idx):
    """Barycentric coordinates (Q, K, d+1) of points q (Q, d) in the candidate cells idx (Q, K)."""
    lam = np.einsum("qkij,qkj->qki", inv[idx], q[:, None, :] - v0[idx])
    return np.concatenate([1.0 - lam.sum(-1, keepdims=True), lam], axis=-1)


def locate(x: np.ndarray, cells: np.ndarray, q: np.ndarray, tol: float = 1e-9):
    """The cell holding each point and its barycentric coordinates.

    ``x`` (N, d) nodes, ``cells`` (M, d+1) simplices, ``q`` (Q, d) points. Returns ``cell``
    (Q,), -1 for a point outside the mesh, and ``lam`` (Q, d+1) (NaN outside). A point on a
    face shared by several cells gets the one it lies deepest in. Candidates are the cells
    with the nearest centroids (k-d tree); points not found among them are checked against
    every cell.
    """
    from scipy.spatial import cKDTree

    x, q = np.asarray(x, float), np.atleast_2d(np.asarray(q, float))
    cells = np.asarray(cells)
    v0, inv, ok = _simplices(x, cells)
    cell = np.full(len(q), -1)
    lam = np.full((len(q), cells.shape[1]), np.nan)

    def check(qi, idx):
        bc = _barycentric(v0, inv, q[qi], idx)
        depth = np.where(ok[idx], bc.min(-1), -np.inf)
        best = depth.argmax(-1)
        found = depth[np.arange(len(qi)), best] >= -tol
        cell[qi[found]] = idx[found, best[found]]
        lam[qi[found]] = bc[found, best[found]]

    k = min(16, len(cells))
    _, near = cKDTree(x[cells].mean(axis=1)).query(q, k=k)
    check(np.arange(len(q)), near.reshape(len(q), k))
    rest = np.flatnonzero(cell < 0)
    chunk = max(1, 2_000_000 // (len(cells) * cells.shape[1]))
    for s in range(0, len(rest), chunk):
        qi = rest[s:s + chunk]
        check(qi, np.broadcast_to(np.arange(len(cells)), (len(qi), len(cells))))
    return cell, lam


def _interpolate(values, cells, cell, lam):
    out = np.full(len(cell), np.nan)
    inside = cell >= 0
    out[inside] = np.sum(values[cells[cell[inside]]] * lam[inside], axis=1)
    return out


# ------------------------------------------------------------------------- line sampling
class _Line:
    """Samples along a straight line through the mesh: positions (nm) on the plotted axis,
    the node each sample sits on (or -1), and the region of each interval between samples."""

    def __init__(self, ds, start=None, end=None, samples: int = 1001):
        x = np.asarray(ds["x"].values, float)
        cells = np.asarray(ds["cells"].values)
        dim = x.shape[1]
        names = _axis_names(ds)
        self.x, self.cells = x, cells
        lo, hi = x.min(axis=0), x.max(axis=0)
        if dim == 1 and start is None and end is None:
            order = np.argsort(x[:, 0], kind="stable")
            self.q, self.node = x[order], order
            self.pos, self.xlabel = x[order, 0] * _NM, f"{names[0]} (nm)"
        else:
            if start is None or end is None:
                centre = 0.5 * (lo + hi)
                if _axisymmetric(ds):
                    centre[0] = 0.0  # the symmetry axis
                a, b = centre.copy(), centre.copy()
                a[-1], b[-1] = lo[-1], hi[-1]
                start = a if start is None else start
                end = b if end is None else end
            a, b = np.asarray(start, float).ravel(), np.asarray(end, float).ravel()
            if a.shape != (dim,) or b.shape != (dim,):
                raise ValueError(f"start and end are points with {dim} coordinate(s) (metres) "
                                 f"({', '.join(names)})")
            seg = b - a
            length = float(np.linalg.norm(seg))
            if length == 0:
                raise ValueError("start and end are the same point")
            # nodes on the line: sampled exactly
            rel = x - a
            tn = rel @ seg / length ** 2
            dist = np.linalg.norm(rel - tn[:, None] * seg, axis=1)
            tol = 1e-9 * float(np.linalg.norm(hi - lo))
            on = np.flatnonzero((dist <= tol) & (tn >= -1e-12) & (tn <= 1 + 1e-12))
            t_all = np.concatenate([np.clip(tn[on], 0.0, 1.0), np.linspace(0.0, 1.0, samples)])
            node_all = np.concatenate([on, np.full(samples, -1)])
            t, first = np.unique(t_all, return_index=True)  # node samples come first: kept
            self.node = node_all[first]
            self.q = a + t[:, None] * seg
            varying = np.flatnonzero(np.abs(seg) > 1e-12 * length)
            if len(varying) == 1:
                ax_ = int(varying[0])
                self.pos, self.xlabel = self.q[:, ax_] * _NM, f"{names[ax_]} (nm)"
            else:
                self.pos, self.xlabel = t * length * _NM, "distance along the line (nm)"
        self.cell, self.lam = locate(x, cells, self.q)
        mid = 0.5 * (self.q[1:] + self.q[:-1])
        mcell, _ = locate(x, cells, mid)
        cr = np.asarray(ds["cell_region"].values)
        self.interval_region = np.where(mcell >= 0, cr[np.maximum(mcell, 0)], -1)

    def values(self, v: np.ndarray) -> np.ndarray:
        out = _interpolate(v, self.cells, self.cell, self.lam)
        on = self.node >= 0
        out[on] = v[self.node[on]]
        return out


def _shade_regions(ax, pos, interval_region, names):
    """Shade and label the runs of equal region along the plotted axis."""
    from matplotlib.transforms import blended_transform_factory

    trans = blended_transform_factory(ax.transData, ax.transAxes)
    total = float(pos[-1] - pos[0]) if len(pos) > 1 else 1.0
    k = 0
    while k < len(interval_region):
        r = int(interval_region[k])
        j = k
        while j + 1 < len(interval_region) and interval_region[j + 1] == r:
            j += 1
        if r >= 0:
            x0, x1 = float(pos[k]), float(pos[j + 1])
            ax.axvspan(x0, x1, color=_region_color(r), alpha=0.13, lw=0, zorder=0)
            narrow = abs(x1 - x0) < 0.07 * abs(total)
            ax.text(0.5 * (x0 + x1), 0.985, names[r] if r < len(names) else str(r), transform=trans,
                    ha="center", va="top", fontsize=7, rotation=90 if narrow else 0, clip_on=True,
                    color="0.25")
        k = j + 1


# ------------------------------------------------------------------------- scales
def auto_log(values: np.ndarray) -> bool:
    """True for a field with no negative value whose positive values span > LOG_DECADES decades."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    pos = v[v > 0]
    if v.size == 0 or (v < 0).any() or pos.size == 0:
        return False
    return bool(np.log10(pos.max() / pos.min()) > LOG_DECADES)


def _norm(values: np.ndarray, log: bool):
    from matplotlib.colors import LogNorm, Normalize

    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if log and (v > 0).any():
        vmax = float(v[v > 0].max())
        vmin = max(float(v[v > 0].min()), vmax * 10 ** -MAX_DECADES)
        return LogNorm(vmin=vmin, vmax=vmax if vmax > vmin else vmin * 10)
    if v.size == 0:
        return Normalize(0.0, 1.0)
    lo, hi = float(v.min()), float(v.max())
    return Normalize(lo, hi) if hi > lo else Normalize(lo - 0.5, hi + 0.5)


def _cell_mean(vals: np.ndarray, counts: np.ndarray | None, log: bool, floor: float) -> np.ndarray:
    """Mean over the last axis (first ``counts`` entries per row), geometric when ``log``."""
    if counts is None:
        counts = np.full(vals.shape[0], vals.shape[1])
    use = np.arange(vals.shape[1])[None, :] < counts[:, None]
    if log:
        vals = np.log(np.maximum(vals, floor))
    mean = np.where(use, vals, 0.0).sum(axis=1) / counts
    return np.exp(mean) if log else mean


# ------------------------------------------------------------------------- plots
def plot_iv(ds, ax=None, contact: str = "anode", log: bool = True):
    """|current| into ``contact`` against its voltage, one marker per bias point.

    Units from the Dataset (A m-2 in 1D, A m-1 per depth in 2D, A in 3D and axisymmetric). On
    the log scale points of zero current (equilibrium) are left out.
    """
    names = [str(c) for c in ds["contact"].values]
    if contact not in names:
        raise ValueError(f"contact '{contact}' not in the Dataset; contacts: {', '.join(names)}")
    v = np.asarray(ds["voltage"].sel(contact=contact).values, float)
    i = np.abs(np.asarray(ds["current"].sel(contact=contact).values, float))
    units = ds["current"].attrs.get("units", ds.attrs.get("current_units", ""))
    ax = _new_axes(ax, (5.2, 4.0))
    if log:
        keep = i > 0
        v, i = v[keep], i[keep]
    ax.plot(v, i, "o-", ms=3.5, lw=1.3, color="C0", gid="current")
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(f"{contact} voltage (V)")
    ax.set_ylabel(f"|current| ({_tex_units(units)})")
    ax.grid(True, which="both", alpha=0.3)
    return ax


def plot_band(ds, bias: int = -1, ax=None, start=None, end=None, samples: int = 1001):
    """Band diagram: E_c, E_v, -phi_n and -phi_p (eV) along a line, regions shaded and labelled.

    1D: at the nodes (the P1 field is linear between them). 2D, axisymmetric, 3D: along the
    segment ``start`` -> ``end`` (points in the Dataset's coordinates, metres), default the
    vertical axis (last coordinate) from bottom to top through the lateral centre of the
    bounding box (r = 0 when axisymmetric); ``samples`` equally spaced points plus every node
    on the line, P1-interpolated over ``cells`` (NaN outside the mesh). The x axis is the
    varying coordinate for an axis-parallel line, else the distance from ``start``.
    """
    b = _bias_index(ds, bias)
    line = _Line(ds, start, end, samples)
    ax = _new_axes(ax)
    _shade_regions(ax, line.pos, line.interval_region, _region_names(ds))
    for field, label, sign, style in _BAND_LINES:
        if field in ds:
            ax.plot(line.pos, sign * line.values(_node_values(ds, field, b)), label=label, gid=field,
                    **style)
    ax.set_xlim(float(np.min(line.pos)), float(np.max(line.pos)))
    ax.set_xlabel(line.xlabel)
    ax.set_ylabel("energy (eV)")
    ax.set_title(_bias_title(ds, b), fontsize=9)
    ax.legend(fontsize=8, loc="best")
    return ax


def _outline(edge_keys: np.ndarray, edge_region: np.ndarray) -> np.ndarray:
    """Edges (key pairs) on the mesh boundary or between two regions."""
    k = np.sort(edge_keys, axis=1)
    keep = k[:, 0] != k[:, 1]
    k, edge_region = k[keep], edge_region[keep]
    uniq, inv, cnt = np.unique(k, axis=0, return_inverse=True, return_counts=True)
    inv = inv.ravel()
    rmin = np.full(len(uniq), np.iinfo(np.int64).max)
    rmax = np.full(len(uniq), np.iinfo(np.int64).min)
    np.minimum.at(rmin, inv, edge_region)
    np.maximum.at(rmax, inv, edge_region)
    return uniq[(cnt == 1) | (rmin != rmax)]


def _slice_tets(x, cells, axis: int, at: float):
    """Cut tetrahedra by the plane x[axis] = at (a node on the plane counts as above it;
    nodes within 1e-9 of the mesh's extent from it are snapped onto it).

    Returns the cut cells (P,), polygon corners (P, 4, 3) (a triangle repeats its last
    corner), corner counts (P,), and per corner the mesh edge (lo, hi) and the fraction t
    from lo (P, 4) (a corner on a node: lo = hi).
    """
    d = x[:, axis] - at
    d[np.abs(d) <= 1e-9 * np.ptp(x[:, axis])] = 0.0
    above = d[cells] >= 0
    n_above = above.sum(axis=1)
    cut = np.flatnonzero((n_above > 0) & (n_above < 4))
    pairs = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    P = len(cut)
    lo = np.zeros((P, 4), dtype=np.int64)
    hi = np.zeros((P, 4), dtype=np.int64)
    t = np.zeros((P, 4))
    count = np.zeros(P, dtype=np.int64)
    for i, j in pairs:
        c = cut[above[cut, i] != above[cut, j]]
        rows = np.searchsorted(cut, c)
        a, b = cells[c, i], cells[c, j]
        el, eh = np.minimum(a, b), np.maximum(a, b)
        frac = d[el] / (d[el] - d[eh])
        # a corner on a node: the node itself (shared exactly by the neighbouring polygons)
        at_lo, at_hi = frac <= 0.0, frac >= 1.0
        el, eh = np.where(at_hi, eh, el), np.where(at_lo, el, eh)
        frac = np.where(at_lo | at_hi, 0.0, frac)
        slot = count[rows]
        lo[rows, slot], hi[rows, slot], t[rows, slot] = el, eh, frac
        count[rows] += 1
    tri = count == 3
    lo[tri, 3], hi[tri, 3], t[tri, 3] = lo[tri, 2], hi[tri, 2], t[tri, 2]
    pts = x[lo] + t[..., None] * (x[hi] - x[lo])
    return cut, pts, count, lo, hi, t


def _order_quads(pts2, count, lo, hi, t):
    """Order the corners of each quadrilateral around its centroid (in the plane)."""
    quad = np.flatnonzero(count == 4)
    c = pts2[quad].mean(axis=1, keepdims=True)
    ang = np.arctan2(pts2[quad, :, 1] - c[..., 1], pts2[quad, :, 0] - c[..., 0])
    order = np.argsort(ang, axis=1)
    for arr in (pts2, lo, hi, t):
        arr[quad] = np.take_along_axis(arr[quad], order[..., None] if arr.ndim == 3 else order, axis=1)


def _map_2d(ds, v, ax, log, mirror, cmap):
    from matplotlib.collections import LineCollection
    from matplotlib.tri import Triangulation

    x = np.asarray(ds["x"].values, float)
    cells = np.asarray(ds["cells"].values)
    cr = np.asarray(ds["cell_region"].values)
    norm = _norm(v, log)
    floor = norm.vmin if log else 0.0
    cv = _cell_mean(v[cells], None, log, floor)
    blank = _blank_regions(ds, v)
    if blank:
        cv[np.isin(cr, list(blank))] = np.nan
    if log:
        cv = np.where(np.isnan(cv), np.nan, np.maximum(cv, floor))
    pts, tris, regs, vals = x, cells, cr, cv
    if mirror:
        n = len(x)
        on_axis = np.abs(x[:, 0]) <= 1e-9 * np.ptp(x[:, 0])
        image = np.where(on_axis, np.arange(n), n + np.arange(n))
        pts = np.concatenate([x, x * np.array([-1.0, 1.0])])
        tris = np.concatenate([cells, image[cells]])
        regs, vals = np.concatenate([cr, cr]), np.concatenate([cv, cv])
    tri = Triangulation(pts[:, 0] * _NM, pts[:, 1] * _NM, tris)
    coll = ax.tripcolor(tri, facecolors=vals, cmap=cmap, norm=norm, shading="flat")
    edges = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
    seg = _outline(edges, np.tile(regs, 3))
    ax.add_collection(LineCollection(pts[seg] * _NM, colors="k", linewidths=0.6))
    names = _axis_names(ds)
    ax.set_xlabel(f"{names[0]} (nm)")
    ax.set_ylabel(f"{names[1]} (nm)")
    return coll, ""


def _map_3d(ds, v, ax, log, cmap, slice_axis, slice_at):
    from matplotlib.collections import LineCollection, PolyCollection

    x = np.asarray(ds["x"].values, float)
    cells = np.asarray(ds["cells"].values)
    cr = np.asarray(ds["cell_region"].values)
    axis = "xyz".index(slice_axis) if isinstance(slice_axis, str) else int(slice_axis)
    if slice_at is None:
        slice_at = 0.5 * (x[:, axis].min() + x[:, axis].max())
    cut, pts, count, lo, hi, t = _slice_tets(x, cells, axis, float(slice_at))
    inplane = [a for a in range(3) if a != axis]
    pts2 = pts[..., inplane]
    _order_quads(pts2, count, lo, hi, t)
    # drop degenerate cuts (the plane through a node or an edge only)
    px, py = pts2[..., 0], pts2[..., 1]
    area = 0.5 * np.abs(np.sum(px * np.roll(py, -1, axis=1) - np.roll(px, -1, axis=1) * py, axis=1))
    edge = np.linalg.norm(pts2 - np.roll(pts2, -1, axis=1), axis=-1).max(axis=1)
    keep = area > 1e-9 * edge ** 2
    if not keep.any():
        raise ValueError(f"the plane {'xyz'[axis]} = {slice_at:g} m does not cut the mesh")
    cut, pts2, count, lo, hi, t = cut[keep], pts2[keep], count[keep], lo[keep], hi[keep], t[keep]
    corner = v[lo] + t * (v[hi] - v[lo])
    norm = _norm(corner, log)
    floor = norm.vmin if log else 0.0
    cv = _cell_mean(corner, count, log, floor)
    regs = cr[cut]
    blank = _blank_regions(ds, v)
    if blank:
        cv[np.isin(regs, list(blank))] = np.nan
    if log:
        cv = np.where(np.isnan(cv), np.nan, np.maximum(cv, floor))
    coll = PolyCollection(pts2 * _NM, array=cv, cmap=cmap, norm=norm, edgecolors="none",
                          antialiaseds=False)
    ax.add_collection(coll)
    # outline: polygon edges (keyed by their mesh edges) on the slice boundary or between regions
    n = len(x)
    key = np.where(lo == hi, lo, n + lo * n + hi)
    ekeys = np.stack([key, np.roll(key, -1, axis=1)], axis=-1).reshape(-1, 2)
    epts = {}
    flat_pts = pts2.reshape(-1, 2)
    for k_, p in zip(key.ravel(), flat_pts):
        epts.setdefault(int(k_), p)
    seg = _outline(ekeys, np.repeat(regs, 4))
    lines = np.array([[epts[int(a)], epts[int(b)]] for a, b in seg]).reshape(-1, 2, 2)
    ax.add_collection(LineCollection(lines * _NM, colors="k", linewidths=0.6))
    ax.autoscale_view()
    names = _axis_names(ds)
    ax.set_xlabel(f"{names[inplane[0]]} (nm)")
    ax.set_ylabel(f"{names[inplane[1]]} (nm)")
    return coll, f"slice {'xyz'[axis]} = {float(slice_at) * _NM:.4g} nm"


def plot_map(ds, field: str, bias: int = -1, ax=None, log: bool | None = None, mirror: bool = False,
             slice_axis: str | int = "y", slice_at: float | None = None, cmap: str = "viridis"):
    """Map of node field ``field`` at bias point ``bias``.

    1D: the field against position (log y scale when ``log``). 2D and axisymmetric:
    ``tripcolor`` over ``cells``, one colour per cell (mean of its node values, geometric on a
    log scale), region outlines in black; ``mirror=True`` adds the image at -r (axisymmetric)
    or -x. 3D: the plane ``slice_axis`` = ``slice_at`` (metres; default the centre of the
    bounding box, normal to y) cuts the tetrahedra exactly; one polygon per cut tetrahedron,
    coloured by the mean of the P1 field at its corners. ``log=None`` chooses the scale
    (:func:`auto_log`). Returns the Axes; the colour collection is ``ax.collections[0]``.
    """
    b = _bias_index(ds, bias)
    v = _node_values(ds, field, b)
    log = auto_log(v) if log is None else bool(log)
    dim = ds.sizes["dim"]
    ax = _new_axes(ax, _map_figsize(ds, mirror, slice_axis))
    at = _bias_title(ds, b) if "bias" in ds[field].dims else ""
    if dim == 1:
        line = _Line(ds)
        _shade_regions(ax, line.pos, line.interval_region, _region_names(ds))
        ax.plot(line.pos, v[line.node], color="C0", lw=1.4, gid=field)
        if log:
            norm = _norm(v, True)
            ax.set_yscale("log")
            ax.set_ylim(norm.vmin, norm.vmax * 3)
        ax.set_xlim(float(line.pos[0]), float(line.pos[-1]))
        ax.set_xlabel(line.xlabel)
        ax.set_ylabel(_label(ds, field))
        ax.set_title(f"{field}, {at}" if at else field, fontsize=9)
        return ax
    from matplotlib.colors import LogNorm

    if dim == 2:
        coll, where = _map_2d(ds, v, ax, log, mirror, cmap)
    else:
        coll, where = _map_3d(ds, v, ax, log, cmap, slice_axis, slice_at)
    ax.set_aspect("equal")
    extend = "min" if isinstance(coll.norm, LogNorm) else "neither"
    ax.figure.colorbar(coll, ax=ax, label=_label(ds, field), extend=extend, shrink=0.9)
    head = ", ".join(s for s in (field, where) if s)
    ax.set_title("\n".join([head] + at.split(": ")) if at else head, fontsize=8)
    return ax


def _map_figsize(ds, mirror: bool, slice_axis) -> tuple[float, float]:
    """A figure shaped like the mapped domain (plus room for the colour bar)."""
    x = np.asarray(ds["x"].values, float)
    if x.shape[1] == 1:
        return (6.4, 4.0)
    if x.shape[1] == 3:
        axis = "xyz".index(slice_axis) if isinstance(slice_axis, str) else int(slice_axis)
        x = x[:, [a for a in range(3) if a != axis]]
    w, h = np.ptp(x[:, 0]) * (2 if mirror else 1), np.ptp(x[:, 1])
    height = 4.6
    width = float(np.clip(height * 0.8 * w / h if h > 0 else 6.0, 1.6, 9.0)) + 2.0
    return (width, height)


# ------------------------------------------------------------------------- command line
def _load(path):
    import xarray as xr

    if isinstance(path, xr.Dataset):
        return path
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()


def _sweep_contact(ds) -> str:
    names = [str(c) for c in ds["contact"].values]
    if "anode" in names:
        return "anode"
    v = np.asarray(ds["voltage"].values)
    return names[int(np.ptp(v, axis=0).argmax())] if v.size else names[0]


def cli_plot(path, iv: bool = False, band: bool = False, maps=(), bias: int = -1,
             output_dir: str | Path = ".", fmt: str = "png") -> list[Path]:
    """Write the requested figures of a NetCDF result (or a Dataset); return their paths.

    Files ``<stem>_iv.<fmt>``, ``<stem>_band.<fmt>`` and ``<stem>_<field>.<fmt>`` for each
    field in ``maps``, in ``output_dir`` (created). With nothing requested, the I-V curve and
    the band diagram. The I-V curve is of the contact ``anode``, else the contact whose
    voltage varies most; ``bias`` selects the point of the band diagram and the maps.
    """
    ds = _load(path)
    stem = Path(path).stem if not hasattr(path, "data_vars") else "result"
    fmt = fmt.lower().lstrip(".")
    out = Path(output_dir)
    maps = [maps] if isinstance(maps, str) else list(maps)
    for field in maps:
        _node_values(ds, field, 0)  # unknown fields fail before any figure is written
    _bias_index(ds, bias)
    if not (iv or band or maps):
        iv = band = True
    written = []
    if iv:
        written.append(save_figure(plot_iv(ds, contact=_sweep_contact(ds)), out / f"{stem}_iv.{fmt}"))
    if band:
        written.append(save_figure(plot_band(ds, bias=bias), out / f"{stem}_band.{fmt}"))
    for field in maps:
        written.append(save_figure(plot_map(ds, field, bias=bias), out / f"{stem}_{field}.{fmt}"))
    return written
