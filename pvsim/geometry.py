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


def micro_aperture_axisym(opening_radius: float = 100.0, outer_radius: float = 600.0,
                          htl: float = 40.0, eml: float = 20.0, etl: float = 40.0,
                          insulator: float = 20.0, substrate: float = 0.0,
                          cathode_metal: float = 0.0, h_max: float | None = None,
                          h_edge: float | None = None, msh_path=None,
                          length_unit: str = "nm") -> Mesh:
    """Dielectric micro-aperture LED, 2D axisymmetric: coordinates (r, z), r >= 0, z upward.

    A dielectric (``insulator``) layer with a circular opening of radius ``opening_radius``
    separates the hole-transport layer from the nanocrystal emitting film: the current
    is funnelled through the opening into the NC film, so that only the few nanocrystals
    above the opening (down to a single one) are driven - the single/few-NC quantum LED.
    Outside the opening the film sits on the insulator and carries (almost) no current.

    Layers, bottom to top (thicknesses and radii in ``length_unit``, nm by default):

    * ``substrate`` (glass) z in [-substrate, 0], only when ``substrate > 0``;
    * ``htl``       z in [0, htl];
    * aperture layer z in [htl, htl + insulator]: region ``insulator`` for r > opening_radius,
      region ``eml`` for r < opening_radius (the NC film fills the hole and touches the HTL);
    * ``eml``       z in [htl + insulator, htl + insulator + eml], all r;
    * ``etl``       above the film;
    * ``metal`` (cathode metal) above the etl, only when ``cathode_metal > 0``.

    Physical groups: surfaces ``substrate`` (if any), ``htl``, ``insulator``, ``eml``,
    ``etl``, ``metal`` (if any); lines ``anode`` (z = 0, interior when a substrate exists),
    ``cathode`` (top of the etl), ``axis`` (every line on r = 0), ``outer`` (every line on
    r = outer_radius), ``heatsink`` (bottom-most line: bottom of the substrate, else the
    anode line itself) and ``top`` (top-most line: top of the metal, else the cathode line).
    Regions share their interface lines (conforming mesh from an OpenCASCADE fragment).

    Mesh size: ``h_edge`` (default insulator/4) at the rim of the opening (the two corner
    points at r = opening_radius and the wall between them), growing to ``h_max`` (default
    outer_radius/15) away from it; every layer is additionally capped at thickness/3, so
    that it has at least about three elements across, graded into its neighbours (size
    gradient 0.3) so that no size jumps at an interface. The defaults give about 1400
    nodes. Returns the :class:`~pvsim.mesh.Mesh` (metres, ``axisymmetric=True``); with
    ``msh_path`` the ``.msh`` (format 2.2, coordinates in ``length_unit``) is written too.
    """
    for name, value in [("opening_radius", opening_radius), ("outer_radius", outer_radius),
                        ("htl", htl), ("eml", eml), ("etl", etl), ("insulator", insulator)]:
        if not value > 0:
            raise ValueError(f"micro_aperture_axisym: {name} must be positive, got {value}")
    for name, value in [("substrate", substrate), ("cathode_metal", cathode_metal)]:
        if value < 0:
            raise ValueError(f"micro_aperture_axisym: {name} must be >= 0 (0: no layer), got {value}")
    if opening_radius >= outer_radius:
        raise ValueError(f"micro_aperture_axisym: opening_radius ({opening_radius}) must be smaller "
                         f"than outer_radius ({outer_radius})")
    R, r0 = float(outer_radius), float(opening_radius)
    h_max = float(h_max) if h_max is not None else R / 15
    h_edge = float(h_edge) if h_edge is not None else insulator / 4
    if not (h_max > 0 and h_edge > 0):
        raise ValueError("micro_aperture_axisym: h_max and h_edge must be positive")

    # horizontal bands (name, z0, z1); the aperture band is split at r = r0 below
    z_ins = htl
    z_eml = htl + insulator
    z_etl = z_eml + eml
    z_top_etl = z_etl + etl
    bands = []
    if substrate > 0:
        bands.append(("substrate", -float(substrate), 0.0))
    bands += [("htl", 0.0, z_ins), ("aperture", z_ins, z_eml), ("eml", z_eml, z_etl),
              ("etl", z_etl, z_top_etl)]
    if cathode_metal > 0:
        bands.append(("metal", z_top_etl, z_top_etl + cathode_metal))
    z_bottom, z_top = bands[0][1], bands[-1][2]
    grading = 0.3  # largest growth of the element size per unit distance
    tol = 1e-6 * min(min(b[2] - b[1] for b in bands), r0, R - r0)

    with gmsh_session("micro_aperture_axisym") as gmsh:
        occ = gmsh.model.occ
        rects = []
        for name, z0, z1 in bands:
            if name == "aperture":
                rects.append(occ.addRectangle(0, z0, 0, r0, z1 - z0))
                rects.append(occ.addRectangle(r0, z0, 0, R - r0, z1 - z0))
            else:
                rects.append(occ.addRectangle(0, z0, 0, R, z1 - z0))
        occ.fragment([(2, t) for t in rects[:1]], [(2, t) for t in rects[1:]])
        occ.synchronize()

        # regions: by the centre of mass of each surface
        surfaces: dict[str, list[int]] = {}
        for _, tag in gmsh.model.getEntities(2):
            rc, zc, _ = occ.getCenterOfMass(2, tag)
            band = next(b for b in bands if b[1] < zc < b[2])[0]
            if band == "aperture":
                band = "eml" if rc < r0 else "insulator"
            surfaces.setdefault(band, []).append(tag)
        for name in [b[0] for b in bands if b[0] != "aperture"] + ["insulator"]:
            if name not in surfaces:
                raise RuntimeError(f"micro_aperture_axisym: no surface found for region '{name}'")

        # lines (all straight): classified by their end points (OCC bounding boxes are padded)
        horizontal: dict[float, list[int]] = {}
        axis, outer, wall = [], [], []
        for _, tag in gmsh.model.getEntities(1):
            ends = gmsh.model.getBoundary([(1, tag)], oriented=False)
            (x0, y0, _), (x1, y1, _) = [gmsh.model.getValue(0, p, []) for _, p in ends]
            if abs(y1 - y0) < tol:
                horizontal.setdefault(0.5 * (y0 + y1), []).append(tag)
            elif abs(x1 - x0) < tol:
                xm = 0.5 * (x0 + x1)
                if abs(xm) < tol:
                    axis.append(tag)
                elif abs(xm - R) < tol:
                    outer.append(tag)
                elif abs(xm - r0) < tol:
                    wall.append(tag)

        def lines_at(z):
            found = [t for zz, tags in horizontal.items() if abs(zz - z) < tol for t in tags]
            if not found:
                raise RuntimeError(f"micro_aperture_axisym: no horizontal line at z = {z}")
            return found

        for name, tags in surfaces.items():
            gmsh.model.addPhysicalGroup(2, sorted(tags), name=name)
        for name, tags in [("anode", lines_at(0.0)), ("cathode", lines_at(z_top_etl)),
                           ("axis", axis), ("outer", outer), ("heatsink", lines_at(z_bottom)),
                           ("top", lines_at(z_top))]:
            gmsh.model.addPhysicalGroup(1, sorted(tags), name=name)

        # mesh size: fine at the rim of the opening, thickness/3 per layer, h_max elsewhere
        rim = [tag for _, tag in gmsh.model.getEntities(0)
               if np.allclose(gmsh.model.getValue(0, tag, []), [r0, z_ins, 0], atol=tol)
               or np.allclose(gmsh.model.getValue(0, tag, []), [r0, z_eml, 0], atol=tol)]
        fld = gmsh.model.mesh.field
        dist = fld.add("Distance")
        fld.setNumbers(dist, "PointsList", rim)
        fld.setNumbers(dist, "CurvesList", wall)
        fld.setNumber(dist, "Sampling", 20)
        thr = fld.add("Threshold")
        fld.setNumber(thr, "InField", dist)
        fld.setNumber(thr, "SizeMin", h_edge)
        fld.setNumber(thr, "SizeMax", h_max)
        fld.setNumber(thr, "DistMin", 2 * h_edge)
        fld.setNumber(thr, "DistMax", 2 * h_edge + max(h_max - h_edge, 0.0) / grading)
        caps = [thr]
        for _, z0, z1 in bands:
            box_field = fld.add("Box")
            inside, outside = min(h_max, (z1 - z0) / 3), max(h_max, h_edge)
            fld.setNumber(box_field, "VIn", inside)
            fld.setNumber(box_field, "VOut", outside)
            # graded into the neighbouring layers (size gradient 0.3): no abrupt jumps in size
            fld.setNumber(box_field, "Thickness", max(outside - inside, 0.0) / grading)
            for key, val in [("XMin", -tol), ("XMax", R + tol), ("YMin", z0 - tol),
                             ("YMax", z1 + tol)]:
                fld.setNumber(box_field, key, val)
            caps.append(box_field)
        size = fld.add("Min")
        fld.setNumbers(size, "FieldsList", caps)
        fld.setAsBackgroundMesh(size)
        gmsh.option.setNumber("Mesh.MeshSizeExtendFromBoundary", 0)
        gmsh.option.setNumber("Mesh.MeshSizeFromPoints", 0)
        gmsh.option.setNumber("Mesh.MeshSizeFromCurvature", 0)
        return _finish(gmsh, 2, msh_path, length_unit, axisymmetric=True)


def mesh_quality(mesh: Mesh) -> dict:
    """Triangle-quality figures of a 2D mesh (numpy): angles in degrees, counts.

    Returns ``min_angle_deg`` and ``max_angle_deg`` over all triangles, the same per region
    (``min_angle_deg_by_region``), ``n_nodes`` and ``n_triangles``.
    """
    if mesh.dim != 2:
        raise ValueError(f"mesh_quality: needs a 2D triangle mesh, got {mesh.dim}D")

    def angles(cells):
        x = mesh.points[cells]  # (M, 3, 2)
        out = []
        for k in range(3):
            a = x[:, (k + 1) % 3] - x[:, k]
            b = x[:, (k + 2) % 3] - x[:, k]
            cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
            out.append(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
        return np.stack(out, axis=1)

    by_region = {name: angles(cells) for name, cells in mesh.regions.items()}
    every = np.concatenate(list(by_region.values()))
    return {
        "min_angle_deg": float(every.min()),
        "max_angle_deg": float(every.max()),
        "min_angle_deg_by_region": {k: float(v.min()) for k, v in by_region.items()},
        "n_nodes": int(mesh.n_nodes),
        "n_triangles": len(every),
    }
