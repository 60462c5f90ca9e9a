"""Finite-volume discretisation on the simplex mesh: sites, edges, weights, volumes.

Box method with edge weights from the P1 stiffness matrix (EAFE; Xu & Zikatanov, Math.
Comp. 68, 1999): for an element with barycentric gradients g_k, the weight of edge (i, j)
is w_ij = -|K| g_i . g_j, summed over the region's elements sharing the edge, and the lumped
(barycentric) control volume of each corner is |K| / (d + 1). A flux F along the edge then
enters the balance of node i as w_ij F_ij. In 1D this is w = 1/h and V = h/2; in 2D
w_ij = cot(theta_k)/2.

Axisymmetric (r, z) meshes (DESIGN.md): weights are the planar ones times 2 pi r at the
element centroid; the lumped volume of corner i of a triangle of area A is
2 pi A (2 r_i + r_j + r_k) / 12 (non-zero on the axis).

**Sites.** Every (region, node) pair is a *site*: a node on an interface between k regions
has k sites, each with its own part of the control volume and the parameters of its region.
Edges belong to one region and join two sites of that region. Carrier unknowns live on
sites (see :mod:`pvsim.layout`), so an interface node can carry one set of carrier unknowns
per adjacent region.

Weights and volumes are computed in JAX from the node coordinates (scaled by L_ref), so the
same code can later give shape derivatives.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from itertools import combinations

import jax.numpy as jnp
import numpy as np

from .mesh import Mesh

log = logging.getLogger(__name__)


def element_geometry(x, axisymmetric: bool = False, xp=jnp):
    """Edge weights and lumped corner volumes of simplices.

    Parameters
    ----------
    x : (M, d+1, d) corner coordinates.
    xp : array module, ``jax.numpy`` (differentiable) or ``numpy`` (static set-up).
    Returns
    -------
    pair_weight : (M, P) weights of the corner pairs in ``combinations(range(d+1), 2)`` order
    corner_volume : (M, d+1) lumped control-volume parts
    """
    d = x.shape[-1]
    edges = x[:, 1:, :] - x[:, :1, :]  # (M, d, d), rows x_k - x_0
    det = xp.linalg.det(edges)
    measure = xp.abs(det) / float(np.prod(np.arange(1, d + 1)))
    g_rest = xp.swapaxes(xp.linalg.inv(edges), -1, -2)  # (M, d, d): row k = grad lambda_{k+1}
    g0 = -xp.sum(g_rest, axis=1, keepdims=True)
    grads = xp.concatenate([g0, g_rest], axis=1)  # (M, d+1, d)
    pairs = list(combinations(range(d + 1), 2))
    ii = np.array([p[0] for p in pairs])
    jj = np.array([p[1] for p in pairs])
    w = -measure[:, None] * xp.sum(grads[:, ii, :] * grads[:, jj, :], axis=-1)  # (M, P)
    vol = xp.repeat(measure[:, None] / (d + 1), d + 1, axis=1)
    if axisymmetric:
        r = x[:, :, 0]  # (M, 3)
        w = w * (2 * xp.pi * xp.mean(r, axis=1))[:, None]
        vol = 2 * xp.pi * measure[:, None] * (r + xp.sum(r, axis=1, keepdims=True)) / 12.0
    return w, vol


def negative_weights(w: np.ndarray) -> np.ndarray:
    """Mask of the edge weights counted as negative: below -1e-12 of the largest |w|.

    Round-off scale: exact zeros (e.g. the diagonals of Kuhn-split bricks) come out as
    +-1e-17 of the largest weight, and may be most of the edges (median |w| ~ 0).
    """
    w = np.asarray(w)
    return w < -1e-12 * np.abs(w).max() if len(w) else np.zeros(0, bool)


def facet_corner_areas(x, axisymmetric: bool = False, xp=jnp):
    """Lumped area of each corner of boundary/interface facets.

    x : (F, d, d) corner coordinates of (d-1)-simplices in d dimensions (points in 1D,
    segments in 2D, triangles in 3D). Returns (F, d): 1 in 1D (per unit area), half the
    length in 2D (2 pi L (2 r_i + r_j) / 6 axisymmetric), a third of the area in 3D.
    """
    n, k = x.shape[0], x.shape[1]
    if k == 1:
        return xp.ones((n, 1))
    if k == 2:
        length = xp.sqrt(xp.sum((x[:, 1] - x[:, 0]) ** 2, axis=-1))
        if axisymmetric:
            r = x[:, :, 0]
            return 2 * xp.pi * length[:, None] * (r + xp.sum(r, axis=1, keepdims=True)) / 6.0
        return xp.repeat(length[:, None] / 2.0, 2, axis=1)
    cross = xp.cross(x[:, 1] - x[:, 0], x[:, 2] - x[:, 0])
    area = 0.5 * xp.sqrt(xp.sum(cross**2, axis=-1))
    return xp.repeat(area[:, None] / 3.0, 3, axis=1)


def region_facets(cells: np.ndarray) -> np.ndarray:
    """Unique facets (sorted node rows) of a region's elements."""
    k = cells.shape[1]
    faces = np.concatenate([np.delete(cells, c, axis=1) for c in range(k)])
    return np.unique(np.sort(faces, axis=1), axis=0)


def shared_facets(mesh: Mesh, region_a: str, region_b: str) -> np.ndarray:
    """Facets common to two regions (their interface), (F, d) node indices."""
    fa, fb = region_facets(mesh.regions[region_a]), region_facets(mesh.regions[region_b])
    both, count = np.unique(np.concatenate([fa, fb]), axis=0, return_counts=True)
    return both[count == 2]


def area_recipe(facets_by_key: dict, item_key: np.ndarray, item_node: np.ndarray):
    """How to recompute the lumped areas of items (key, node) from node coordinates.

    ``facets_by_key`` maps a key (interface, contact or boundary index) to its facets (F, d);
    item i sits on node ``item_node[i]`` of facet set ``item_key[i]``. Returns (facets,
    slot): every facet corner adds its lumped area to item ``slot`` (``len(item_node)``: to
    no item), so that ``zeros(n).at[slot].add(facet_corner_areas(x[facets]), mode="drop")``
    is each item's area; used for shape gradients (see :func:`recipe_areas`).
    """
    n = len(item_node)
    out_f, out_s = [], []
    size = 1 + max([int(item_node.max(initial=0))] + [int(f.max(initial=0)) for f in facets_by_key.values()])
    for key, facets in facets_by_key.items():
        sel = np.nonzero(item_key == key)[0]
        if len(sel) == 0:
            continue
        lookup = np.full(size, n, dtype=np.int64)
        lookup[item_node[sel]] = sel
        out_f.append(np.asarray(facets, dtype=np.int64))
        out_s.append(lookup[facets])
    if not out_f:
        return np.zeros((0, 1), np.int64), np.zeros((0, 1), np.int64)
    return np.concatenate(out_f), np.concatenate(out_s)


def recipe_areas(points_scaled, facets, slot, n: int, axisymmetric: bool):
    """Item areas (n,) from scaled coordinates and an :func:`area_recipe` (JAX)."""
    corner = facet_corner_areas(points_scaled[facets], axisymmetric)
    return jnp.zeros(n).at[slot.ravel()].add(corner.ravel(), mode="drop")


def node_areas(mesh: Mesh, facets: np.ndarray, L_ref: float) -> tuple[np.ndarray, np.ndarray]:
    """(nodes, lumped area per node, scaled by L_ref^(d_eff - 1)) of a set of facets."""
    corner = facet_corner_areas((mesh.points / L_ref)[facets], mesh.axisymmetric, xp=np)
    nodes, inv = np.unique(facets, return_inverse=True)
    return nodes, np.bincount(inv.ravel(), corner.ravel(), len(nodes))


@dataclass(frozen=True)
class Discretization:
    """Sites, region edges and their (scaled) geometry for one mesh.

    All index arrays are numpy; ``edge_weight`` and ``site_volume`` are float arrays in
    units of L_ref^(d_eff - 2) and L_ref^d_eff.
    """

    mesh: Mesh
    region_names: tuple[str, ...]
    site_node: np.ndarray  # (S,)
    site_region: np.ndarray  # (S,)
    edge_sites: np.ndarray  # (E, 2) site indices, same region
    edge_region: np.ndarray  # (E,)
    edge_weight: np.ndarray  # (E,)
    site_volume: np.ndarray  # (S,)
    # maps used to recompute geometry from coordinates (shape derivatives)
    elem_nodes: np.ndarray  # (M, d+1) all elements, region-major order
    elem_pair_edge: np.ndarray  # (M, P) -> edge index
    elem_corner_site: np.ndarray  # (M, d+1) -> site index
    L_ref: float

    @property
    def n_sites(self) -> int:
        return len(self.site_node)

    @property
    def n_edges(self) -> int:
        return len(self.edge_region)

    def sites_of_region(self, r: int) -> np.ndarray:
        return np.nonzero(self.site_region == r)[0]

    def site_at(self, r: int, nodes: np.ndarray) -> np.ndarray:
        """Site of region ``r`` at each of ``nodes`` (which must belong to the region)."""
        sites = self.sites_of_region(r)  # node-sorted within a region (np.unique order)
        return sites[np.searchsorted(self.site_node[sites], nodes)]

    def geometry(self, points_scaled):
        """(edge_weight, site_volume) from scaled node coordinates (JAX, differentiable)."""
        w, v = element_geometry(points_scaled[self.elem_nodes], self.mesh.axisymmetric)
        ew = jnp.zeros(self.n_edges).at[self.elem_pair_edge.ravel()].add(w.ravel())
        sv = jnp.zeros(self.n_sites).at[self.elem_corner_site.ravel()].add(v.ravel())
        return ew, sv

    def edge_lengths(self, points_scaled, xp=jnp):
        """(E,) lengths of the region edges from scaled node coordinates."""
        nodes = self.site_node[self.edge_sites]
        return xp.sqrt(xp.sum((points_scaled[nodes[:, 0]] - points_scaled[nodes[:, 1]]) ** 2, axis=-1))

    def negative_weight_report(self) -> tuple[int, float]:
        """(count of edges with w < 0, worst w relative to the median |w|)."""
        w = self.edge_weight
        neg = negative_weights(w)
        scale = np.median(np.abs(w[np.abs(w) > 1e-12 * np.abs(w).max()]))
        worst = float(w.min() / scale) if neg.any() else 0.0
        return int(neg.sum()), worst


def discretize(mesh: Mesh, L_ref: float = 1e-8) -> Discretization:
    """Build sites, edges, weights and volumes (once per mesh)."""
    names = tuple(mesh.regions)
    d = mesh.dim
    pairs = np.array(list(combinations(range(d + 1), 2)))
    site_node, site_region, edge_keys, elem_nodes, elem_edge, elem_site = [], [], [], [], [], []
    n_sites = n_edges = 0
    for r, name in enumerate(names):
        cells = mesh.regions[name]
        nodes, local = np.unique(cells, return_inverse=True)
        local = local.reshape(cells.shape)  # region-local site index of each corner
        site_node.append(nodes)
        site_region.append(np.full(len(nodes), r))
        a = local[:, pairs[:, 0]].ravel()
        b = local[:, pairs[:, 1]].ravel()
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        keys, inv = np.unique(lo * len(nodes) + hi, return_inverse=True)
        edge_keys.append(np.stack([keys // len(nodes), keys % len(nodes)], axis=1) + n_sites)
        elem_nodes.append(cells)
        elem_edge.append(inv.reshape(len(cells), len(pairs)) + n_edges)
        elem_site.append(local + n_sites)
        n_sites += len(nodes)
        n_edges += len(keys)
    disc = Discretization(
        mesh=mesh,
        region_names=names,
        site_node=np.concatenate(site_node),
        site_region=np.concatenate(site_region),
        edge_sites=np.concatenate(edge_keys),
        edge_region=np.concatenate([np.full(len(k), r) for r, k in enumerate(edge_keys)]),
        edge_weight=np.zeros(0),
        site_volume=np.zeros(0),
        elem_nodes=np.concatenate(elem_nodes),
        elem_pair_edge=np.concatenate(elem_edge),
        elem_corner_site=np.concatenate(elem_site),
        L_ref=L_ref,
    )
    w, v = element_geometry((mesh.points / L_ref)[disc.elem_nodes], mesh.axisymmetric, xp=np)
    disc = replace(
        disc,
        edge_weight=np.bincount(disc.elem_pair_edge.ravel(), w.ravel(), disc.n_edges),
        site_volume=np.bincount(disc.elem_corner_site.ravel(), v.ravel(), disc.n_sites),
    )
    count, worst = disc.negative_weight_report()
    if count:
        log.warning(
            "%d edge(s) with negative EAFE weight (worst %.3g x median |w|): the discrete "
            "operator is not an M-matrix there; refine or improve the mesh (Delaunay).",
            count, worst,
        )
    return disc

