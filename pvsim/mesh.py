"""Simplex meshes with named regions and boundaries.

A :class:`Mesh` holds node coordinates in metres, one connectivity array per region (the
gmsh physical groups of the top dimension) and one facet array per named boundary (the
physical groups one dimension lower: contacts, interfaces, later thermal boundaries).
Supported: 1D (lines), 2D (triangles), 2D axisymmetric (coordinates (r, z), r >= 0) and
3D (tetrahedra). Meshes come from gmsh ``.msh`` files (2.2 and 4.x, read by meshio), from
the live gmsh Python API model (:func:`from_gmsh_model`) or from arrays (:func:`from_arrays`).

Checks (done once, in numpy, before anything is built on the mesh); each is a
:class:`MeshError` that says what is wrong and where:

* a coordinate that is NaN or infinite (names the node and the axis);
* an element that refers to a node that does not exist (names the region and element);
* a degenerate element (measure below 1e-12 of the mean element measure) or an inverted one
  (orientation opposite to the rest of its region): names the region, the count, and the first
  such element by its index in the region, its nodes and its centroid.

A case that names a region or boundary the mesh does not have is reported by
:func:`pvsim.case.build_device`, with the names the mesh does have.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import factorial
from pathlib import Path

import numpy as np

from .units import LENGTH_UNITS

_TOP_CELL = {1: "line", 2: "triangle", 3: "tetra"}
_FACET_CELL = {1: "vertex", 2: "line", 3: "triangle"}


class MeshError(ValueError):
    """A mesh that cannot be simulated; the message names the region or group and the fix."""


@dataclass(frozen=True)
class Mesh:
    points: np.ndarray  # (N, dim) float64, metres
    regions: dict[str, np.ndarray]  # name -> (M, dim+1) int node indices
    boundaries: dict[str, np.ndarray]  # name -> (F, dim) int node indices
    axisymmetric: bool = False
    source: str = "arrays"
    # geometric parameter -> ShapeParameter (pvsim.geometry): the surface nodes that a
    # generator parameter moves, and how; empty for meshes read from files
    shape: dict = field(default_factory=dict, compare=False)

    @property
    def dim(self) -> int:
        return self.points.shape[1]

    @property
    def n_nodes(self) -> int:
        return self.points.shape[0]

    def boundary_nodes(self, name: str) -> np.ndarray:
        if name not in self.boundaries:
            raise MeshError(
                f"mesh has no boundary group '{name}'; it has {sorted(self.boundaries)}. "
                "Name the contact after a gmsh physical group of dimension dim-1."
            )
        return np.unique(self.boundaries[name])

    def region_nodes(self, name: str) -> np.ndarray:
        return np.unique(self.regions[name])

    def summary(self) -> str:
        regs = ", ".join(f"{k}: {len(v)}" for k, v in self.regions.items())
        kind = "axisymmetric (r, z)" if self.axisymmetric else f"{self.dim}D"
        return f"{kind} mesh, {self.n_nodes} nodes; elements per region {{{regs}}}"


def signed_measures(points: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Signed length/area/volume of each simplex (numpy), shape (M,)."""
    x = points[cells]  # (M, d+1, d)
    d = points.shape[1]
    edges = x[:, 1:, :] - x[:, :1, :]  # (M, d, d)
    return np.linalg.det(edges) / factorial(d)


def check_elements(mesh: Mesh, length_unit: str = "m") -> None:
    """Raise :class:`MeshError` on degenerate or inverted elements.

    Element positions in the messages are centroids in ``length_unit`` (the file's unit).
    """
    if mesh.axisymmetric:
        if mesh.dim != 2:
            raise MeshError("an axisymmetric mesh must be 2D with coordinates (r, z)")
        rmin = mesh.points[:, 0].min()
        if rmin < -1e-12 * np.ptp(mesh.points[:, 0]):
            raise MeshError(f"axisymmetric mesh has r < 0 (min r = {rmin:g} m); put the axis at r = 0")
    all_meas = [signed_measures(mesh.points, c) for c in mesh.regions.values()]
    scale = np.mean(np.abs(np.concatenate(all_meas)))
    if not np.isfinite(scale) or scale <= 0:
        raise MeshError(f"{mesh.source}: every element has zero measure (all nodes coincide or "
                        "lie on a lower-dimensional set); check the coordinates and their unit")

    def where(cells, k):
        c = mesh.points[cells[k]].mean(axis=0) / _unit(length_unit)
        xyz = ", ".join(f"{v:.6g}" for v in c)
        return f"element {k} of the region (nodes {cells[k].tolist()}, centroid ({xyz}) {length_unit})"

    for (name, cells), meas in zip(mesh.regions.items(), all_meas):
        degenerate = np.abs(meas) <= 1e-12 * scale
        if degenerate.any():
            raise MeshError(
                f"region '{name}': {degenerate.sum()} degenerate element(s) (zero measure), "
                f"first {where(cells, int(np.argmax(degenerate)))}; remesh or remove "
                "duplicate/collinear nodes."
            )
        if mesh.dim > 1:
            majority = np.sign(np.sum(np.sign(meas)))
            inverted = np.sign(meas) != (majority if majority != 0 else 1.0)
            if inverted.any():
                raise MeshError(
                    f"region '{name}': {inverted.sum()} inverted element(s) (orientation opposite "
                    f"to the other {len(meas) - inverted.sum()}), first "
                    f"{where(cells, int(np.argmax(inverted)))}; regenerate the mesh."
                )


def _check_arrays(pts: np.ndarray, regions: dict, boundaries: dict, source: str) -> None:
    """Finite coordinates, and element/facet node indices that exist (before any use)."""
    bad = ~np.isfinite(pts)
    if bad.any():
        node, axis = (int(i) for i in np.argwhere(bad)[0])
        raise MeshError(
            f"{source}: {int(bad.any(axis=1).sum())} node(s) with a NaN or infinite coordinate, "
            f"first node {node} (0-based, in file order) has {'xyz'[axis]} = {pts[node, axis]}; "
            "fix or regenerate the mesh file."
        )
    n = len(pts)
    for kind, groups in (("region", regions), ("boundary group", boundaries)):
        for name, cells in groups.items():
            out = (cells < 0) | (cells >= n)
            if out.any():
                k = int(np.argwhere(out)[0, 0])
                raise MeshError(
                    f"{source}: {kind} '{name}': element {k} refers to node(s) "
                    f"{cells[k][out[k]].tolist()} but the mesh has {n} nodes (0 to {n - 1}); the file "
                    "is truncated or inconsistent."
                )


def from_arrays(points, regions, boundaries=None, *, length_unit="m", axisymmetric=False,
                source="arrays") -> Mesh:
    """Build and check a mesh from arrays (coordinates in ``length_unit``)."""
    scale = _unit(length_unit)
    pts = np.asarray(points, dtype=float)
    if pts.ndim == 1:
        pts = pts[:, None]
    regions = {k: np.asarray(v, dtype=np.int64) for k, v in regions.items()}
    boundaries = {k: np.asarray(v, dtype=np.int64).reshape(len(v), -1)
                  for k, v in (boundaries or {}).items()}
    if not regions:
        raise MeshError("mesh has no regions: add gmsh physical groups of the top dimension")
    for name, cells in regions.items():
        if cells.ndim != 2 or cells.shape[1] != pts.shape[1] + 1:
            raise MeshError(
                f"region '{name}': cells of shape {cells.shape} do not match {pts.shape[1]}D "
                f"simplices (expected (M, {pts.shape[1] + 1}))"
            )
    _check_arrays(pts, regions, boundaries, source)
    # keep only the nodes used by region cells
    used = np.unique(np.concatenate([c.ravel() for c in regions.values()]))
    remap = -np.ones(len(pts), dtype=np.int64)
    remap[used] = np.arange(len(used))
    regions = {k: remap[v] for k, v in regions.items()}
    kept = {}
    for k, v in boundaries.items():
        mapped = remap[v]
        if (mapped < 0).any():
            raise MeshError(f"boundary group '{k}' has nodes that belong to no region")
        kept[k] = mapped
    mesh = Mesh(pts[used] * scale, regions, kept, axisymmetric, source)
    check_elements(mesh, length_unit)
    return mesh


def read_msh(path: str | Path, *, length_unit: str = "m", axisymmetric: bool = False) -> Mesh:
    """Read a gmsh ``.msh`` file (2.2 or 4.x) through meshio.

    Regions are the physical groups of the highest element dimension, boundaries those one
    dimension lower. Elements outside any physical group are ignored (gmsh's default when
    physical groups exist).
    """
    import meshio

    path = Path(path)
    if not path.exists():
        raise MeshError(f"mesh file '{path}' not found")
    try:
        m = meshio.read(path, file_format="gmsh")
    except IndexError as exc:  # meshio maps element node numbers through the node table
        raise MeshError(f"mesh file '{path}': an element refers to a node number that its $Nodes "
                        f"section does not define ({exc}); the file is inconsistent") from exc
    except Exception as exc:  # meshio raises many types; report them uniformly
        raise MeshError(f"cannot read mesh file '{path}' as gmsh .msh: {exc} (is the file truncated "
                        "or not a gmsh .msh?)") from exc
    if "gmsh:physical" not in m.cell_data or not m.field_data:
        raise MeshError(
            f"mesh file '{path}' has no physical groups: name regions and contacts with "
            "gmsh physical groups (Physical Surface(\"p_side\") = {...};)"
        )
    names = {(int(tag), int(d)): name for name, (tag, d) in m.field_data.items()}
    dims = {"vertex": 0, "line": 1, "triangle": 2, "tetra": 3}
    top = max(dims.get(b.type, -1) for b in m.cells)
    if top < 1:
        raise MeshError(f"mesh file '{path}' has no line, triangle or tetrahedron elements")
    regions: dict[str, list] = {}
    boundaries: dict[str, list] = {}
    for block, tags in zip(m.cells, m.cell_data["gmsh:physical"]):
        d = dims.get(block.type)
        if d is None:
            raise MeshError(
                f"mesh file '{path}': element type '{block.type}' is not supported; use "
                "first-order simplices (Mesh.ElementOrder = 1, no recombination)"
            )
        if d not in (top, top - 1):
            continue
        target = regions if d == top else boundaries
        for tag in np.unique(tags):
            name = names.get((int(tag), d))
            if name is None:
                continue
            target.setdefault(name, []).append(block.data[tags == tag])
    if not regions:
        kind = {1: "Physical Curve", 2: "Physical Surface", 3: "Physical Volume"}[top]
        raise MeshError(
            f"mesh file '{path}': none of its {top}D elements is in a named physical group, so it has "
            f"no regions; its named groups are {sorted(m.field_data)} (dimensions "
            f"{sorted({int(d) for _, d in m.field_data.values()})}). Add {kind}(\"name\") = {{...}};"
        )
    return _from_groups(m.points, top, regions, boundaries, length_unit, axisymmetric, str(path))


def from_gmsh_model(*, length_unit: str = "m", axisymmetric: bool = False) -> Mesh:
    """Take the mesh of the current gmsh model (after ``gmsh.model.mesh.generate``)."""
    import gmsh

    tags, coords, _ = gmsh.model.mesh.getNodes()
    index = {int(t): i for i, t in enumerate(tags)}
    groups = gmsh.model.getPhysicalGroups()
    if not groups:
        raise MeshError("the gmsh model has no physical groups: add them for regions and contacts")
    top = max(d for d, _ in groups)
    regions: dict[str, list] = {}
    boundaries: dict[str, list] = {}
    for d, tag in groups:
        if d not in (top, top - 1):
            continue
        name = gmsh.model.getPhysicalName(d, tag) or f"group_{d}_{tag}"
        target = regions if d == top else boundaries
        for ent in gmsh.model.getEntitiesForPhysicalGroup(d, tag):
            if d == 0:
                node_tags, _, _ = gmsh.model.mesh.getNodes(0, ent, includeBoundary=True)
                conn = np.array([[index[int(t)] for t in node_tags]])
                target.setdefault(name, []).append(conn)
                continue
            etypes, _, enodes = gmsh.model.mesh.getElements(d, ent)
            for et, en in zip(etypes, enodes):
                nper = gmsh.model.mesh.getElementProperties(et)[3]
                if nper != d + 1:
                    raise MeshError(
                        f"gmsh group '{name}': element type {et} is not a first-order simplex"
                    )
                conn = np.vectorize(index.get)(en.astype(np.int64)).reshape(-1, nper)
                target.setdefault(name, []).append(conn)
    return _from_groups(coords.reshape(-1, 3), top, regions, boundaries, length_unit,
                        axisymmetric, "gmsh model")


def _from_groups(points3, top, regions, boundaries, length_unit, axisymmetric, source) -> Mesh:
    """Mesh from 3-column gmsh points and per-group lists of connectivity blocks."""
    if points3.shape[1] > top and np.abs(points3[:, top:]).max() > 0:
        raise MeshError(
            f"{source}: {top}D elements must lie in the first {top} coordinates "
            "(1D along x, 2D in the x-y plane)"
        )
    return from_arrays(
        points3[:, :top],
        {k: np.concatenate(v) for k, v in regions.items()},
        {k: np.concatenate(v) for k, v in boundaries.items()},
        length_unit=length_unit,
        axisymmetric=axisymmetric,
        source=source,
    )


def _unit(length_unit: str) -> float:
    if length_unit not in LENGTH_UNITS:
        raise MeshError(f"length unit '{length_unit}' unknown; use one of {sorted(LENGTH_UNITS)}")
    return LENGTH_UNITS[length_unit]
