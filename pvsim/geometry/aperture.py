"""Dielectric micro-aperture LEDs (gmsh, OpenCASCADE)."""

from __future__ import annotations

import numpy as np

from ..mesh import Mesh
from .gmsh_tools import finish, gmsh_session


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
        return finish(gmsh, 2, msh_path, length_unit, axisymmetric=True)


