"""Small test geometries: a planar 2D pn diode and boxes (gmsh)."""

from __future__ import annotations

from ..mesh import Mesh
from .gmsh_tools import finish, gmsh_session


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
        return finish(gmsh, 2, msh_path, length_unit)


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
        return finish(gmsh, dim, msh_path, length_unit, axisymmetric)


