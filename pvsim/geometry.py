"""Mesh generators: 1D layer stacks (numpy) and gmsh-built 2D/3D devices.

gmsh is imported only inside the functions that need it. Every generator returns a
checked :class:`~pvsim.mesh.Mesh`; the gmsh ones can also write the ``.msh`` file (format
2.2, readable by meshio and DEVSIM) so that a peer code can run on the identical mesh.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from .mesh import Mesh, from_arrays, from_gmsh_model


# ------------------------------------------------------------------------------- 1D
@dataclass(frozen=True)
class Layer:
    region: str
    thickness_m: float
    spacing_m: float | None = None  # largest cell; default thickness/100
    min_spacing_m: float | None = None  # cell size at both faces (geometric grading)


def _graded(t: float, h_max: float, h_min: float, ratio: float = 1.2) -> np.ndarray:
    """Cell sizes filling [0, t], h_min at both ends growing by ``ratio`` up to h_max."""
    if h_min >= h_max:
        n = max(1, int(np.ceil(t / h_max)))
        return np.full(n, t / n)
    ramp = [h_min]
    while ramp[-1] * ratio < h_max and 2 * (sum(ramp) + ramp[-1] * ratio) < t:
        ramp.append(ramp[-1] * ratio)
    ramp = np.array(ramp)
    middle = t - 2 * ramp.sum()
    n_mid = max(1, int(np.ceil(middle / h_max))) if middle > 0 else 0
    sizes = np.concatenate([ramp, np.full(n_mid, middle / n_mid) if n_mid else [], ramp[::-1]])
    return sizes * t / sizes.sum()


def layer_stack(layers: list[Layer], left_contact: str | None = None,
                right_contact: str | None = None) -> Mesh:
    """A 1D mesh of consecutive layers along x, starting at x = 0 (metres)."""
    x = [0.0]
    regions = {}
    for layer in layers:
        if layer.thickness_m <= 0:
            raise ValueError(f"layer '{layer.region}': thickness must be positive")
        h = layer.spacing_m or layer.thickness_m / 100
        sizes = _graded(layer.thickness_m, h, layer.min_spacing_m or h)
        start = len(x) - 1
        x.extend(x[-1] + np.cumsum(sizes))
        idx = np.arange(start, len(x) - 1)
        cells = np.stack([idx, idx + 1], axis=1)
        regions[layer.region] = np.concatenate([regions[layer.region], cells]) \
            if layer.region in regions else cells
    boundaries = {}
    if left_contact:
        boundaries[left_contact] = [[0]]
    if right_contact:
        boundaries[right_contact] = [[len(x) - 1]]
    return from_arrays(np.array(x), regions, boundaries, source="layer stack")


# ------------------------------------------------------------------------------- gmsh
@contextmanager
def gmsh_session(name: str = "pvsim"):
    """Initialise gmsh quietly, yield the module, always finalise."""
    import gmsh

    gmsh.initialize(["-noenv"]) if not gmsh.isInitialized() else None
    gmsh.option.setNumber("General.Terminal", 0)
    gmsh.model.add(name)
    try:
        yield gmsh
    finally:
        gmsh.finalize()


def _finish(gmsh, dim: int, msh_path, length_unit: str, axisymmetric: bool = False) -> Mesh:
    gmsh.model.mesh.generate(dim)
    if msh_path is not None:
        gmsh.option.setNumber("Mesh.MshFileVersion", 2.2)
        gmsh.write(str(msh_path))
    return from_gmsh_model(length_unit=length_unit, axisymmetric=axisymmetric)


def diode_2d(width: float = 2.0, height: float = 1.0, contact_fraction: float = 0.5,
             h: float = 0.05, h_junction: float = 0.01, msh_path=None,
             length_unit: str = "um") -> Mesh:
    """Planar pn diode: p side x < width/2, n side x > width/2 (lengths in ``length_unit``).

    The anode covers only the lower ``contact_fraction`` of the left face (a partial
    contact: current crowds at its edge); the cathode covers the whole right face.
    Physical groups: surfaces p_side, n_side; lines anode, cathode, junction.
    """
    with gmsh_session("diode_2d") as gmsh:
        g = gmsh.model.geo
        xm, yc = width / 2, contact_fraction * height
        pts = [g.addPoint(0, 0, 0, h), g.addPoint(xm, 0, 0, h_junction),
               g.addPoint(width, 0, 0, h), g.addPoint(width, height, 0, h),
               g.addPoint(xm, height, 0, h_junction), g.addPoint(0, height, 0, h),
               g.addPoint(0, yc, 0, h_junction)]
        p0, p1, p2, p3, p4, p5, p6 = pts
        bottom_p, bottom_n = g.addLine(p0, p1), g.addLine(p1, p2)
        right = g.addLine(p2, p3)
        top_n, top_p = g.addLine(p3, p4), g.addLine(p4, p5)
        left_free, anode = g.addLine(p5, p6), g.addLine(p6, p0)
        junction = g.addLine(p1, p4)
        sp = g.addPlaneSurface([g.addCurveLoop([bottom_p, junction, top_p, left_free, anode])])
        sn = g.addPlaneSurface([g.addCurveLoop([bottom_n, right, top_n, -junction])])
        g.synchronize()
        for d, tags, name in [(2, [sp], "p_side"), (2, [sn], "n_side"), (1, [anode], "anode"),
                              (1, [right], "cathode"), (1, [junction], "junction")]:
            gmsh.model.addPhysicalGroup(d, tags, name=name)
        return _finish(gmsh, 2, msh_path, length_unit)


def box(lengths=(1.0, 1.0), h: float = 0.1, msh_path=None, length_unit: str = "m",
        axisymmetric: bool = False, region: str = "domain") -> Mesh:
    """Unstructured triangle (2D) or tetrahedron (3D) mesh of [0, Lx] x [0, Ly] (x [0, Lz]).

    Boundary groups: ``xmin``, ``xmax``, ``ymin``, ``ymax`` (and ``zmin``, ``zmax``).
    """
    dim = len(lengths)
    with gmsh_session("box") as gmsh:
        occ = gmsh.model.occ
        tag = occ.addRectangle(0, 0, 0, *lengths) if dim == 2 else occ.addBox(0, 0, 0, *lengths)
        occ.synchronize()
        gmsh.option.setNumber("Mesh.MeshSizeMax", h)
        gmsh.option.setNumber("Mesh.MeshSizeMin", h)
        gmsh.model.addPhysicalGroup(dim, [tag], name=region)
        faces = gmsh.model.getBoundary([(dim, tag)], oriented=False)
        for axis, name in enumerate("xyz"[:dim]):
            for side, target in (("min", 0.0), ("max", lengths[axis])):
                sel = [f[1] for f in faces
                       if abs(gmsh.model.occ.getCenterOfMass(*f)[axis] - target) < 1e-9]
                gmsh.model.addPhysicalGroup(dim - 1, sel, name=f"{name}{side}")
        return _finish(gmsh, dim, msh_path, length_unit, axisymmetric)
