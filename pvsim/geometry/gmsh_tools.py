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
  nodes that parameter moves and their velocity, the input of the shape gradients.
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
        size, far = size / self.res, far / self.res
        dist = fld.add("Distance")
        if points:
            fld.setNumbers(dist, "PointsList", list(points))
        if curves:
            fld.setNumbers(dist, "CurvesList", list(curves))
        if surfaces:
            fld.setNumbers(dist, "SurfacesList", list(surfaces))
        fld.setNumber(dist, "Sampling", sampling)
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
