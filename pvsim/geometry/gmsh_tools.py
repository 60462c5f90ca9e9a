"""Shared machinery of the gmsh generators: session, physical groups, size fields, shape data.

Conventions every generator in :mod:`pvsim.geometry` follows:

* physical parameters are keyword arguments in ``length_unit`` (nm by default); the mesh
  returned is in metres, and ``msh_path`` also writes the ``.msh`` (format 2.2, in
  ``length_unit``) so that a peer code can read the identical mesh;
* one ``resolution`` knob divides every element size (2 = twice as fine), and per-feature
  sizes (``h_*``) override the defaults before ``resolution`` applies;
* a named physical group for every region, every interface between two regions
  (``"<a>_<b>"``, in the order the generator documents) and every contact or outer face;
* ``Mesh.shape`` maps each geometric parameter to a :class:`ShapeParameter`: the surface
  nodes that parameter moves and their velocity, the input of the shape gradients;
* a 2D or axisymmetric gmsh mesh goes through :func:`mend_negative_edges` (``finish``'s
  ``after_generate`` hook): edge flips and splits until no EAFE edge weight is negative.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import combinations

import numpy as np

from ..mesh import Mesh, from_gmsh_model


@dataclass(frozen=True)
class ShapeParameter:
    """How one geometric parameter moves the mesh boundary.

    ``nodes`` (K,) are the indices of the surface nodes that move; ``velocity`` (K, dim) is
    d x_node / d parameter (metres per metre, so dimensionless): moving every node by
    ``delta * velocity`` gives, to first order, the mesh the generator would build at
    ``parameter + delta`` (same length unit). Nodes not listed stay fixed on the boundary;
    extending the motion into the interior (e.g. by a Laplace solve) is the caller's job.
    """

    name: str
    nodes: np.ndarray
    velocity: np.ndarray
    description: str = ""


def shape_parameter(mesh: Mesh, name: str, nodes, velocity_of, description: str = "") -> ShapeParameter:
    """ShapeParameter from node indices and a function (K, dim) points -> (K, dim) velocity."""
    nodes = np.unique(np.asarray(nodes, dtype=np.int64))
    vel = np.asarray(velocity_of(mesh.points[nodes]), dtype=float).reshape(len(nodes), mesh.dim)
    return ShapeParameter(name, nodes, vel, description)


def nodes_where(mesh: Mesh, predicate, groups=None) -> np.ndarray:
    """Indices of the nodes (of the named boundary groups, or all) where predicate(points) holds."""
    cand = np.unique(np.concatenate([mesh.boundaries[g].ravel() for g in groups])) \
        if groups else np.arange(mesh.n_nodes)
    return cand[np.asarray(predicate(mesh.points[cand]), dtype=bool)]


@contextmanager
def gmsh_session(name: str = "pvsim"):
    """Initialise gmsh quietly and single-threaded (deterministic meshes), always finalise."""
    import gmsh

    gmsh.initialize(["-noenv"]) if not gmsh.isInitialized() else None
    gmsh.option.setNumber("General.Terminal", 0)
    gmsh.option.setNumber("General.NumThreads", 1)
    gmsh.option.setNumber("Mesh.RandomSeed", 1)
    gmsh.model.add(name)
    try:
        yield gmsh
    finally:
        gmsh.finalize()


def finish(gmsh, dim: int, msh_path, length_unit: str, axisymmetric: bool = False,
           optimize: bool = True, after_generate=None) -> Mesh:
    """Generate (and, in 3D, optimise) the mesh, run ``after_generate(gmsh)`` (a node repair
    pass, say) if given, write ``msh_path`` if given, return the mesh in metres."""
    gmsh.model.mesh.generate(dim)
    if dim == 3 and optimize:
        gmsh.model.mesh.optimize("Netgen")
    if after_generate is not None:
        after_generate(gmsh)
    if msh_path is not None:
        gmsh.option.setNumber("Mesh.MshFileVersion", 2.2)
        gmsh.write(str(msh_path))
    return from_gmsh_model(length_unit=length_unit, axisymmetric=axisymmetric)


def with_shape(mesh: Mesh, params: list[ShapeParameter]) -> Mesh:
    return replace(mesh, shape={p.name: p for p in params})


# ------------------------------------------------------------------- entities and groups
def center(gmsh, dim: int, tag: int) -> np.ndarray:
    return np.array(gmsh.model.occ.getCenterOfMass(dim, tag))


def boundary_entities(gmsh, dim: int, tags) -> set[int]:
    """Tags of the (dim-1) entities bounding the given dim-entities."""
    return {t for _, t in gmsh.model.getBoundary([(dim, t) for t in tags], combined=False,
                                                 oriented=False)}


def add_region_groups(gmsh, dim: int, regions: dict[str, list[int]],
                      interface_order: list[str] | None = None) -> dict[str, list[int]]:
    """Physical groups for regions and for every interface between two of them.

    ``regions`` maps a region name to its dim-entities. Each pair of regions sharing
    (dim-1) entities gets a group named ``"<a>_<b>"`` with a before b in
    ``interface_order`` (default: the order of ``regions``). Returns the interface groups.
    """
    order = interface_order or list(regions)
    faces = {name: boundary_entities(gmsh, dim, tags) for name, tags in regions.items()}
    for name, tags in regions.items():
        if not tags:
            raise RuntimeError(f"geometry: region '{name}' has no {dim}D entity")
        gmsh.model.addPhysicalGroup(dim, sorted(tags), name=name)
    interfaces = {}
    for a, b in combinations(sorted(regions, key=order.index), 2):
        shared = sorted(faces[a] & faces[b])
        if shared:
            interfaces[f"{a}_{b}"] = shared
            gmsh.model.addPhysicalGroup(dim - 1, shared, name=f"{a}_{b}")
    return interfaces


def faces_on_plane(gmsh, dim: int, axis: int, value: float, tol: float) -> list[int]:
    """(dim-1) entities whose bounding box lies in the plane coordinate[axis] = value."""
    out = []
    for _, tag in gmsh.model.getEntities(dim - 1):
        box = np.array(gmsh.model.getBoundingBox(dim - 1, tag))
        lo, hi = box[axis], box[axis + 3]
        if abs(lo - value) < tol and abs(hi - value) < tol:
            out.append(tag)
    return out


# ------------------------------------------------------------------------- size fields
class Sizes:
    """Background size field built as the minimum of simple pieces (gmsh ``Min`` field).

    Every size is divided by ``resolution``. ``grading`` is the largest growth of the
    element size per unit distance (0.3: an element 1.3x its neighbour at most, roughly).
    """

    def __init__(self, gmsh, resolution: float = 1.0, grading: float = 0.3):
        if not resolution > 0:
            raise ValueError(f"resolution must be positive, got {resolution}")
        self.gmsh, self.res, self.grading = gmsh, float(resolution), grading
        self.fields: list[int] = []

    def near(self, size: float, far: float, points=(), curves=(), surfaces=(), sampling: int = 20):
        """``size`` within ``2 size`` of the entities, growing by ``grading`` to ``far``."""
        fld = self.gmsh.model.mesh.field
        dist = fld.add("Distance")
        if points:
            fld.setNumbers(dist, "PointsList", list(points))
        if curves:
            fld.setNumbers(dist, "CurvesList", list(curves))
        if surfaces:
            fld.setNumbers(dist, "SurfacesList", list(surfaces))
        fld.setNumber(dist, "Sampling", sampling)
        return self._threshold(dist, size, far)

    def near_expression(self, size: float, far: float, distance: str):
        """Like :meth:`near`, with the distance given as a gmsh MathEval expression of x, y, z."""
        fld = self.gmsh.model.mesh.field
        dist = fld.add("MathEval")
        fld.setString(dist, "F", distance)
        return self._threshold(dist, size, far)

    def _threshold(self, dist: int, size: float, far: float) -> int:
        """``size`` (over ``resolution``) where the distance field ``dist`` is below ``2 size``,
        growing by ``grading`` to ``far``; added to the pieces."""
        fld = self.gmsh.model.mesh.field
        size, far = size / self.res, far / self.res
        thr = fld.add("Threshold")
        fld.setNumber(thr, "InField", dist)
        fld.setNumber(thr, "SizeMin", size)
        fld.setNumber(thr, "SizeMax", max(far, size))
        fld.setNumber(thr, "DistMin", 2 * size)
        fld.setNumber(thr, "DistMax", 2 * size + max(far - size, 0.0) / self.grading)
        self.fields.append(thr)
        return thr

    def box(self, lo, hi, inside: float, outside: float):
        """``inside`` in the axis-aligned box [lo, hi], graded out to ``outside``."""
        fld = self.gmsh.model.mesh.field
        inside, outside = inside / self.res, outside / self.res
        b = fld.add("Box")
        fld.setNumber(b, "VIn", inside)
        fld.setNumber(b, "VOut", max(outside, inside))
        fld.setNumber(b, "Thickness", max(outside - inside, 0.0) / self.grading)
        for key, v in zip(("XMin", "YMin", "ZMin"), lo):
            fld.setNumber(b, key, v)
        for key, v in zip(("XMax", "YMax", "ZMax"), hi):
            fld.setNumber(b, key, v)
        self.fields.append(b)
        return b

    def apply(self):
        """Make the minimum of all pieces the background mesh; no sizes from points/curvature."""
        fld = self.gmsh.model.mesh.field
        m = fld.add("Min")
        fld.setNumbers(m, "FieldsList", self.fields)
        fld.setAsBackgroundMesh(m)
        for opt in ("Mesh.MeshSizeExtendFromBoundary", "Mesh.MeshSizeFromPoints",
                    "Mesh.MeshSizeFromCurvature"):
            self.gmsh.option.setNumber(opt, 0)


# ------------------------------------------------ 2D repair: negative EAFE edge weights
def _corner_weights(pts: np.ndarray, tri: np.ndarray, axisymmetric: bool) -> np.ndarray:
    """(M, 3): each triangle's EAFE weight of the side opposite each corner, from
    :func:`~pvsim.discretize.element_geometry` (axisymmetric: times 2 pi r at the centroid)."""
    from ..discretize import element_geometry

    w, _ = element_geometry(pts[tri], axisymmetric, xp=np)
    return w[:, ::-1]  # its pairs (0, 1), (0, 2), (1, 2) lie opposite corners 2, 1, 0


def _signed_area(pts: np.ndarray, tri: np.ndarray) -> np.ndarray:
    u, v = pts[tri[:, 1]] - pts[tri[:, 0]], pts[tri[:, 2]] - pts[tri[:, 0]]
    return 0.5 * (u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0])


def _edge_weights(pts, tri, region, axisymmetric):
    """Region edges of a triangulation and their summed weights, as ``discretize`` sums them.

    Returns (corner, inv, w): ``corner`` (M, 3) the triangles' weights of the side opposite
    each corner, ``inv`` (M, 3) the edge of that side, ``w`` the summed weight per edge."""
    n = len(pts)
    a, b = tri[:, [1, 2, 0]], tri[:, [2, 0, 1]]
    key = (region[:, None].astype(np.int64) * n + np.minimum(a, b)) * n + np.maximum(a, b)
    keys, inv = np.unique(key.ravel(), return_inverse=True)
    corner = _corner_weights(pts, tri, axisymmetric)
    return corner, inv.reshape(tri.shape), np.bincount(inv, corner.ravel(), len(keys))


def _negative(w: np.ndarray) -> np.ndarray:
    """Edges counted as negative, by the test of ``Discretization.negative_weight_report``."""
    from ..discretize import negative_weights

    return np.nonzero(negative_weights(w))[0]


def flip_negative_edges(pts: np.ndarray, tri: np.ndarray, entity: np.ndarray, region: np.ndarray,
                        axisymmetric: bool, max_sweeps: int = 50) -> tuple[np.ndarray, int]:
    """Flip diagonals to remove negative EAFE edge weights from a 2D triangulation.

    An edge's weight (summed over the triangles of its region) is negative when the two
    angles facing it add up to more than 180 degrees; axisymmetric, where each triangle's
    cotangent is weighted by its centroid radius, also when the pair is nearly cocircular
    and the obtuse side lies farther from the axis. Such an edge shared by two triangles of
    one ``entity`` (a gmsh surface: never an interface or boundary line) is replaced by the
    other diagonal of their quadrilateral when that is convex and the smallest weight of the
    five edges involved grows; sweeps repeat until nothing changes. Deterministic. Returns
    the new (M, 3) triangles (same orientation) and the number of flips.
    """
    tri = tri.copy()
    orient = np.sign(_signed_area(pts, tri))
    total = 0
    for _ in range(max_sweeps):
        half, inv, w = _edge_weights(pts, tri, region, axisymmetric)
        bad = _negative(w)
        if not len(bad):
            break

        def weight(t, p, q):
            k = next(k for k in range(3) if tri[t, k] not in (p, q))
            return w[inv[t, k]]

        busy, flips = set(), 0
        for e in bad[np.argsort(w[bad], kind="stable")]:
            sides = np.argwhere(inv == e)
            if len(sides) != 2:
                continue
            (t1, k1), (t2, k2) = (int(i) for i in sides[0]), (int(i) for i in sides[1])
            if entity[t1] != entity[t2] or {t1, t2} & busy:
                continue
            c, p, q = tri[t1, k1], tri[t1, (k1 + 1) % 3], tri[t1, (k1 + 2) % 3]
            d = tri[t2, k2]
            new = np.array([[c, p, d], [c, d, q]])
            area = _signed_area(pts, new) * orient[t1]
            if not np.all(area > 1e-9 * np.abs(_signed_area(pts, tri[[t1, t2]])).max()):
                continue  # not strictly convex
            h1, h2 = dict(zip(tri[t1], half[t1])), dict(zip(tri[t2], half[t2]))
            h_new = _corner_weights(pts, new, axisymmetric)
            h3, h4 = dict(zip(new[0], h_new[0])), dict(zip(new[1], h_new[1]))
            old = [w[e], weight(t1, c, p), weight(t1, q, c), weight(t2, p, d), weight(t2, d, q)]
            after = [h3[p] + h4[q], old[1] - h1[q] + h3[d], old[2] - h1[p] + h4[d],
                     old[3] - h2[q] + h3[c], old[4] - h2[p] + h4[c]]
            if min(after) > min(old) + 1e-12 * abs(min(old)):
                # no other flip this sweep may rely on the weights of these five edges
                busy |= {int(t) for t in np.nonzero(np.isin(tri, [c, d, p, q]).sum(axis=1) >= 2)[0]}
                tri[t1], tri[t2] = new
                flips += 1
        total += flips
        if not flips:
            break
    return tri, total


def _split_negative_edges(pts, tri, entity, region, segments, split_point, axisymmetric):
    """Split at their middle the negative edges that no flip could mend.

    ``segments`` maps a line's tag to its list of [a, b] node pairs (the 1D elements), and
    ``split_point(line, a, b)`` gives the point of the line between points a and b; an
    edge on no line is split at its midpoint, inside its surface. Every triangle on the
    edge is cut in two through the new node. Returns the new points, triangles, the parent
    of every triangle (an index into the old ones) and the new nodes as (dim, entity,
    index); ``segments`` is updated in place.
    """
    _, inv, w = _edge_weights(pts, tri, region, axisymmetric)
    line_of = {frozenset(seg): line for line, segs in segments.items() for seg in segs}
    orient = np.sign(_signed_area(pts, tri))
    pts, tri, parent, added, busy = list(pts), tri.tolist(), list(range(len(tri))), [], set()
    for e in _negative(w):
        t, k = (int(i) for i in np.argwhere(inv == e)[0])
        p, q = tri[t][(k + 1) % 3], tri[t][(k + 2) % 3]
        line = line_of.get(frozenset((p, q)))
        on_edge = [i for i, c in enumerate(tri) if p in c and q in c]
        if busy & set(on_edge):
            continue
        m = len(pts)
        point = 0.5 * (pts[p] + pts[q]) if line is None else split_point(line, pts[p], pts[q])
        cand = np.asarray(pts + [point])
        halves = [[m if v == q else v for v in tri[i]] for i in on_edge] + \
            [[m if v == p else v for v in tri[i]] for i in on_edge]
        if not np.all(np.sign(_signed_area(cand, np.array(halves))) == np.tile(orient[on_edge], 2)):
            continue  # the point of a curved line falls outside a triangle: leave it
        pts = list(cand)
        for j, i in enumerate(on_edge):
            tri[i] = halves[j]
            tri.append(halves[len(on_edge) + j])
            parent.append(parent[i])
        orient = np.concatenate([orient, orient[on_edge]])
        busy |= set(on_edge) | set(range(len(tri) - len(on_edge), len(tri)))
        if line is None:
            added.append((2, int(entity[on_edge[0]]), m))
            continue
        segs = segments[line]
        i = next(i for i, s in enumerate(segs) if set(s) == {p, q})
        a, b = segs[i]
        segs[i:i + 1] = [[a, m], [m, b]]
        line_of[frozenset((a, m))] = line_of[frozenset((m, b))] = line
        added.append((1, line, m))
    return np.asarray(pts), np.asarray(tri, dtype=np.int64), np.asarray(parent, dtype=np.int64), added


def mend_negative_edges(gmsh, regions: dict[str, list[int]], axisymmetric: bool, rounds: int = 8) -> int:
    """Remove negative EAFE edge weights from the current 2D gmsh mesh, in place.

    ``regions`` maps each region to its surfaces (weights are summed per region edge, as
    :func:`~pvsim.discretize.discretize` does; ``axisymmetric``: coordinates (r, z), each
    triangle's weights times 2 pi r at its centroid). Rounds of :func:`flip_negative_edges`
    inside each surface, then splits at their middle of the edges left (on a line: a new
    node on that line), until none is left or ``rounds`` is spent; the gmsh model's nodes,
    line and triangle elements are updated. Use as ``finish``'s ``after_generate`` hook, so
    that the ``.msh`` written is the repaired mesh. Returns the number of negative edges
    left, by the test of ``mesh_quality``.
    """
    node_tags, coords, _ = gmsh.model.mesh.getNodes()
    order = np.argsort(node_tags)
    pts = coords.reshape(-1, 3)[:, :2]

    def indices(tags):
        return order[np.searchsorted(node_tags[order], tags)]

    tri, entity, region = [], [], []
    for r, tags in enumerate(regions.values()):
        for ent in tags:
            types, _, nodes = gmsh.model.mesh.getElements(2, ent)
            if list(types) != [2]:
                raise RuntimeError(f"mend_negative_edges: surface {ent} is not meshed with first-order "
                                   "triangles only")
            tri.append(indices(nodes[0]).reshape(-1, 3))
            entity.append(np.full(len(tri[-1]), ent))
            region.append(np.full(len(tri[-1]), r))
    tri, entity, region = np.concatenate(tri), np.concatenate(entity), np.concatenate(region)
    segments = {}
    for _, line in gmsh.model.getEntities(1):
        types, _, nodes = gmsh.model.mesh.getElements(1, line)
        segments[line] = indices(nodes[0]).reshape(-1, 2).tolist() if len(types) else []
    original = {line: [list(s) for s in segs] for line, segs in segments.items()}

    def split_point(line, a, b):
        point, _ = gmsh.model.getClosestPoint(1, line, [0.5 * (a[0] + b[0]), 0.5 * (a[1] + b[1]), 0.0])
        return point[:2]

    tri0, entity0, added = tri.copy(), entity.copy(), []
    for _ in range(rounds):
        tri, _ = flip_negative_edges(pts, tri, entity, region, axisymmetric)
        pts, tri, parent, new = _split_negative_edges(pts, tri, entity, region, segments, split_point,
                                                      axisymmetric)
        entity, region = entity[parent], region[parent]
        added += new
        if not new:
            break
    else:
        tri, _ = flip_negative_edges(pts, tri, entity, region, axisymmetric)

    tag_of = np.concatenate([node_tags, gmsh.model.mesh.getMaxNodeTag() + 1 + np.arange(len(added))])
    for dim, ent, m in added:
        xyz = [float(pts[m][0]), float(pts[m][1]), 0.0]
        uv = gmsh.model.getParametrization(dim, ent, xyz)
        gmsh.model.mesh.addNodes(dim, ent, [int(tag_of[m])], xyz, list(uv))
    for line, segs in segments.items():
        if segs != original[line]:
            gmsh.model.mesh.removeElements(1, line)
            gmsh.model.mesh.addElementsByType(line, 1, [], tag_of[np.array(segs)].ravel())
    for ent in np.unique(entity):
        mine = tri[entity == ent]
        if len(mine) != np.sum(entity0 == ent) or not np.array_equal(mine, tri0[entity0 == ent]):
            gmsh.model.mesh.removeElements(2, int(ent))
            gmsh.model.mesh.addElementsByType(int(ent), 2, [], tag_of[mine].ravel())
    return len(_negative(_edge_weights(pts, tri, region, axisymmetric)[2]))
