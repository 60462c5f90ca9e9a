"""Dielectric micro-aperture LEDs (gmsh, OpenCASCADE): 2D axisymmetric and 3D.

An insulating layer (SiO2, Al2O3: 20-50 nm) with a circular opening (radius 20 nm - 2 um)
sits at the HTL/NC interface (``position="htl_eml"``) or at the NC/ETL interface
(``position="eml_etl"``) and funnels the current into the few nanocrystals under the
opening, or into one (``emitter="single"``: the single-photon LED). Both generators take
the same physical parameters and give the same regions and groups, so that the 3D mesh
(a cylinder of radius ``outer_radius``, or a quarter of it) is the body of revolution of
the axisymmetric one; see :func:`micro_aperture_axisym` for the layout.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np

from ..mesh import Mesh
from ..units import LENGTH_UNITS
from .gmsh_tools import (ShapeParameter, Sizes, add_region_groups, finish, gmsh_session,
                         mend_negative_edges, with_shape)

POSITIONS = ("htl_eml", "eml_etl")
EMITTERS = ("layer", "single")
GRADING = 0.3  # largest growth of the element size per unit distance
NC_RADIUS, NC_GAP = 5.0, 1.0  # defaults of the single nanocrystal (nm)


@dataclass(frozen=True)
class _NC:
    """The single nanocrystal: core radius, outer radius (with ligand), centre on the axis."""

    core: float
    outer: float
    gap: float  # distance from the outer surface to the anchor plane (< 0: truncated flat)
    anchor: float  # z of the interface the NC faces through the opening
    sense: int  # +1: the NC lies above the anchor plane, -1: below
    ligand: bool

    @property
    def zc(self) -> float:
        return self.anchor + self.sense * (self.outer + self.gap)


@dataclass(frozen=True)
class _Layout:
    """Everything both generators need, in ``length_unit``; validated."""

    R: float
    r0: float
    bands: tuple  # (band, region, z0, z1) bottom to top; band "insulator" holds the opening
    fill: str  # region in the opening
    emit: str  # region of the emitting layer: "eml" or "matrix"
    order: tuple  # region names, bottom to top (interface names "<a>_<b>")
    thickness: dict  # shape parameter -> (z0, z1, shift): its band, -1 when the band grows downward
    nc: _NC | None
    z_anode: float
    z_cathode: float
    h_edge: float
    h_max: float
    h_nc: float
    cells_across: float
    tol: float
    scale: float  # metres per length unit

    @property
    def ins(self) -> tuple[float, float]:
        return next((z0, z1) for band, _, z0, z1 in self.bands if band == "insulator")

    @property
    def z_bottom(self) -> float:
        return self.bands[0][2]

    @property
    def z_top(self) -> float:
        return self.bands[-1][3]


def _layout(who, *, opening_radius, outer_radius, htl, eml, etl, insulator, substrate, cathode_metal,
            position, emitter, nc_radius, ligand, nc_gap, h_max, h_edge, h_nc, cells_across,
            length_unit) -> _Layout:
    if position not in POSITIONS:
        raise ValueError(f"{who}: position must be one of {POSITIONS}, got {position!r}")
    if emitter not in EMITTERS:
        raise ValueError(f"{who}: emitter must be one of {EMITTERS}, got {emitter!r}")
    if length_unit not in LENGTH_UNITS:
        raise ValueError(f"{who}: length_unit must be one of {sorted(LENGTH_UNITS)}, got {length_unit!r}")
    for name, value in [("opening_radius", opening_radius), ("outer_radius", outer_radius),
                        ("htl", htl), ("eml", eml), ("etl", etl), ("insulator", insulator),
                        ("cells_across", cells_across)]:
        if not value > 0:
            raise ValueError(f"{who}: {name} must be positive, got {value}")
    for name, value in [("substrate", substrate), ("cathode_metal", cathode_metal), ("ligand", ligand)]:
        if not value >= 0:
            raise ValueError(f"{who}: {name} must be >= 0 (0: no layer), got {value}")
    if opening_radius >= outer_radius:
        raise ValueError(f"{who}: opening_radius ({opening_radius}) must be smaller than outer_radius "
                         f"({outer_radius})")
    R, r0 = float(outer_radius), float(opening_radius)
    emit = "eml" if emitter == "layer" else "matrix"

    # bands (band, region, z0, z1) bottom to top
    bands, z = [], 0.0
    if substrate > 0:
        bands.append(("substrate", "substrate", -float(substrate), 0.0))
    stack = [("htl", "htl", htl), ("insulator", "insulator", insulator), ("eml", emit, eml),
             ("etl", "etl", etl)]
    if position == "eml_etl":
        stack[1], stack[2] = stack[2], stack[1]
    for band, region, t in stack:
        bands.append((band, region, z, z + float(t)))
        z += float(t)
    z_cathode = z
    if cathode_metal > 0:
        bands.append(("cathode_metal", "metal", z, z + float(cathode_metal)))
    fill = emit if position == "htl_eml" else "etl"
    z_ins = next((z0, z1) for band, _, z0, z1 in bands if band == "insulator")
    z_eml = next((z0, z1) for band, _, z0, z1 in bands if band == "eml")

    nc = None
    features = [b[3] - b[2] for b in bands] + [r0, R - r0]
    if emitter == "single":
        if not nc_radius > 0:
            raise ValueError(f"{who}: nc_radius must be positive, got {nc_radius}")
        outer = float(nc_radius) + float(ligand)
        gap = float(nc_gap)
        if gap == 0 or gap <= -2 * outer:
            raise ValueError(f"{who}: nc_gap must be nonzero (0 is a tangent contact) and larger than "
                             f"-2 (nc_radius + ligand) = {-2 * outer}; got {nc_gap}")
        if position == "htl_eml":  # NC at the bottom of the opening, on the HTL, inside the film
            anchor, sense, room = z_ins[0], 1, z_eml[1] - z_ins[0]
            if outer >= r0:
                raise ValueError(f"{who}: the nanocrystal (nc_radius + ligand = {outer}) must fit in the "
                                 f"opening (opening_radius {r0}) for position 'htl_eml'")
        else:  # NC at the top of the film, under the opening, facing the ETL in it
            anchor, sense, room = z_eml[1], -1, eml
        if gap + 2 * outer >= room:
            raise ValueError(f"{who}: the nanocrystal (2 (nc_radius + ligand) + nc_gap = {gap + 2 * outer}) "
                             f"does not fit in the {room} of emitting layer it sits in: thicken 'eml'")
        nc = _NC(float(nc_radius), outer, gap, anchor, sense, ligand > 0)
        features += [float(nc_radius), abs(gap), room - gap - 2 * outer] + ([float(ligand)] if ligand else [])
    elif ligand or nc_gap != NC_GAP or nc_radius != NC_RADIUS:
        raise ValueError(f"{who}: nc_radius, ligand and nc_gap describe emitter='single'")

    order = ["substrate", "htl"]
    middle = ["insulator", emit] if position == "htl_eml" else [emit, "insulator"]
    single = ["ligand", "nc"] if (nc and nc.ligand) else ["nc"] if nc else []
    if position == "htl_eml":
        order += middle + single
    else:
        order += [emit] + single + ["insulator"]
    order += ["etl", "metal"]

    thickness = {band: (z0, z1, -1.0 if band == "substrate" else 0.0) for band, _, z0, z1 in bands}
    h_max = float(h_max) if h_max is not None else R / 15
    h_edge = float(h_edge) if h_edge is not None else insulator / 4
    if h_nc is None:  # (unused without a nanocrystal)
        h_nc = min([nc.core / 4, abs(nc.gap)] + ([float(ligand) / 2] if ligand else [])) if nc else 1.0
    h_nc = float(h_nc)
    if not (h_max > 0 and h_edge > 0 and h_nc > 0):
        raise ValueError(f"{who}: h_max, h_edge and h_nc must be positive")
    return _Layout(R=R, r0=r0, bands=tuple(bands), fill=fill, emit=emit, order=tuple(order),
                   thickness=thickness, nc=nc, z_anode=0.0, z_cathode=z_cathode, h_edge=h_edge,
                   h_max=h_max, h_nc=h_nc, cells_across=float(cells_across),
                   tol=1e-6 * min(features), scale=LENGTH_UNITS[length_unit])


def _layout_of(who: str, args: dict) -> _Layout:
    """:func:`_layout` from a generator's arguments (its ``locals()`` before anything else)."""
    return _layout(who, **{k: args[k] for k in _LAYOUT_ARGS})


_LAYOUT_ARGS = tuple(inspect.signature(_layout).parameters)[1:]  # all but ``who``


# ------------------------------------------------------------------------ construction
_PRIORITY = ("nc", "ligand", "opening")  # a piece in several inputs takes the first of these


def _fragment_regions(gmsh, dim: int, shapes: list[tuple[str, int]], L: _Layout) -> dict[str, list[int]]:
    """Fragment the overlapping shapes (role, tag) into a conforming set, name every piece.

    Roles: a region name, ``"opening"`` (the hole in the insulator: region ``L.fill``),
    ``"nc"``, ``"ligand"``. Where shapes overlap, the nanocrystal wins over its shell, the
    shell over the opening, the opening over the band.
    """
    occ = gmsh.model.occ
    dimtags = [(dim, t) for _, t in shapes]
    _, pieces_of = occ.fragment(dimtags[:1], dimtags[1:])
    occ.synchronize()
    roles = [role for role, _ in shapes]
    rank = {role: _PRIORITY.index(role) if role in _PRIORITY else len(_PRIORITY) for role in roles}
    owner: dict[int, tuple[int, str]] = {}
    for role, pieces in zip(roles, pieces_of):
        for d, tag in pieces:
            if d == dim and (tag not in owner or rank[role] < owner[tag][0]):
                owner[tag] = (rank[role], role)
    regions: dict[str, list[int]] = {}
    for tag, (_, role) in sorted(owner.items()):
        name = {"opening": L.fill}.get(role, role)
        regions.setdefault(name, []).append(tag)
    every = {t for _, t in gmsh.model.getEntities(dim)}
    if every != set(owner):
        raise RuntimeError(f"micro-aperture: pieces {sorted(every - set(owner))} belong to no region")
    return {name: regions[name] for name in L.order if name in regions}


def _band_shapes(gmsh, L: _Layout, slab, dim: int) -> list[tuple[str, int]]:
    """The layers as (role, tag), ``slab(z0, z1, radius)`` making one: the insulator is a
    ring around the opening, and the layer above it is fused with the opening's slab (role
    ``"opening"``), so that the region filling the opening has no line or face across it."""
    shapes, opening = [], None
    for band, region, z0, z1 in L.bands:
        tag = slab(z0, z1, L.R)
        if opening is not None:
            fused, _ = gmsh.model.occ.fuse([(dim, tag)], [(dim, opening)])
            if len(fused) != 1:
                raise RuntimeError("micro-aperture: the opening and the layer above did not fuse")
            shapes.append(("opening", fused[0][1]))
            opening = None
            continue
        if band == "insulator":
            opening = slab(z0, z1, L.r0)
            ring, _ = gmsh.model.occ.cut([(dim, tag)], [(dim, opening)], removeTool=False)
            tag = ring[0][1]
        shapes.append((region, tag))
    return shapes


def _samples(gmsh, dim: int, tag: int, k: int = 5) -> np.ndarray:
    """Points (k^dim, 3) of a curve or surface on a grid over its parameter range."""
    lo, hi = (np.asarray(b, dtype=float) for b in gmsh.model.getParametrizationBounds(dim, tag))
    axes = [np.linspace(lo[i], hi[i], k) for i in range(dim)]
    params = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, dim)
    return np.asarray(gmsh.model.getValue(dim, tag, params.ravel().tolist())).reshape(-1, 3)


def _nc_shapes(gmsh, L: _Layout, dim: int, quarter: bool) -> list[tuple[str, int]]:
    """Core (and shell) as half disks (2D) or spheres (3D), cut flat at the anchor plane."""
    occ, nc = gmsh.model.occ, L.nc
    out = []
    for role, rad in ([("ligand", nc.outer)] if nc.ligand else []) + [("nc", nc.core)]:
        lo, hi = (L.nc.anchor, nc.zc + 2 * rad) if nc.sense > 0 else (nc.zc - 2 * rad, L.nc.anchor)
        if dim == 2:
            shape = occ.addDisk(0, nc.zc, 0, rad, rad)
            keep = occ.addRectangle(0, lo, 0, 2 * rad, hi - lo)
        else:
            shape = occ.addSphere(0, 0, nc.zc, rad)
            x0 = 0.0 if quarter else -2 * rad
            keep = occ.addBox(x0, x0, lo, 2 * rad - x0, 2 * rad - x0, hi - lo)
        cut, _ = occ.intersect([(dim, shape)], [(dim, keep)])
        if len(cut) != 1:
            raise RuntimeError("micro-aperture: the nanocrystal did not come out as one piece")
        out.append((role, cut[0][1]))
    return out


def _sizes(gmsh, L: _Layout, resolution: float, dim: int) -> Sizes:
    """Caps common to 2D and 3D: every band at most thickness / cells_across."""
    sizes = Sizes(gmsh, resolution=resolution, grading=GRADING)
    t, pad = L.tol, L.R + L.tol
    for _, _, z0, z1 in L.bands:
        inside = min(L.h_max, (z1 - z0) / L.cells_across)
        if dim == 2:
            sizes.box((-t, z0 - t), (pad, z1 + t), inside, L.h_max)
        else:
            sizes.box((-pad, -pad, z0 - t), (pad, pad, z1 + t), inside, L.h_max)
    return sizes


def _build_2d(gmsh, L: _Layout, resolution: float) -> dict[str, list[int]]:
    occ = gmsh.model.occ
    shapes = _band_shapes(gmsh, L, lambda z0, z1, r: occ.addRectangle(0, z0, 0, r, z1 - z0), 2)
    if L.nc is not None:
        shapes += _nc_shapes(gmsh, L, 2, quarter=False)
    regions = _fragment_regions(gmsh, 2, shapes, L)
    add_region_groups(gmsh, 2, regions, list(L.order))

    # lines by points sampled along them (exact, unlike the padded OCC bounding boxes; the
    # type is no guide: a fused line can come out as a "TrimmedCurve")
    t = L.tol
    horizontal: dict[float, list[int]] = {}
    axis, outer, wall = [], [], []
    for _, tag in gmsh.model.getEntities(1):
        r, z = _samples(gmsh, 1, tag)[:, :2].T
        if np.ptp(z) < t:
            horizontal.setdefault(round(z.mean() / t), []).append(tag)
        elif np.ptp(r) < t:
            if abs(r.mean()) < t:
                axis.append(tag)
            elif abs(r.mean() - L.R) < t:
                outer.append(tag)
            elif abs(r.mean() - L.r0) < t and L.ins[0] - t < z.min() and z.max() < L.ins[1] + t:
                wall.append(tag)

    def lines_at(z):
        found = [tag for key, tags in horizontal.items() if abs(key * t - z) < 2 * t for tag in tags]
        if not found:
            raise RuntimeError(f"micro_aperture_axisym: no horizontal line at z = {z}")
        return sorted(found)

    for name, tags in [("anode", lines_at(L.z_anode)), ("cathode", lines_at(L.z_cathode)),
                       ("axis", axis), ("outer", outer), ("heatsink", lines_at(L.z_bottom)),
                       ("top", lines_at(L.z_top))]:
        gmsh.model.addPhysicalGroup(1, sorted(tags), name=name)

    rim = [tag for _, tag in gmsh.model.getEntities(0)
           if any(np.allclose(gmsh.model.getValue(0, tag, []), [L.r0, z, 0], rtol=0, atol=t) for z in L.ins)]
    sizes = _sizes(gmsh, L, resolution, 2)
    # the Distance field samples each curve at this many points: finer than half an element
    sizes.near(L.h_edge, L.h_max, points=rim, curves=wall,
               sampling=max(20, int(np.ceil(2 * (L.ins[1] - L.ins[0]) * resolution / L.h_edge))))
    if L.nc is not None:
        nc_lines = set()
        for name in ("nc", "ligand"):
            nc_lines |= {c for _, c in gmsh.model.getBoundary([(2, s) for s in regions.get(name, [])],
                                                               combined=False, oriented=False)}
        sizes.near(L.h_nc, L.h_max, curves=sorted(nc_lines),
                   sampling=max(20, int(np.ceil(2 * np.pi * L.nc.outer * resolution / L.h_nc))))
    sizes.apply()
    return regions


def _build_3d(gmsh, L: _Layout, resolution: float, quarter: bool) -> None:
    occ = gmsh.model.occ
    angle = np.pi / 2 if quarter else 2 * np.pi
    shapes = _band_shapes(gmsh, L, lambda z0, z1, r: occ.addCylinder(0, 0, z0, 0, 0, z1 - z0, r,
                                                                      angle=angle), 3)
    if L.nc is not None:
        shapes += _nc_shapes(gmsh, L, 3, quarter)
    regions = _fragment_regions(gmsh, 3, shapes, L)
    add_region_groups(gmsh, 3, regions, list(L.order))

    # faces by points sampled on them (the type is no guide after a fuse)
    t = L.tol
    horizontal: dict[int, list[int]] = {}
    groups: dict[str, list[int]] = {"outer": [], "mirror_x": [], "mirror_y": []}
    for _, tag in gmsh.model.getEntities(2):
        x, y, z = _samples(gmsh, 2, tag).T
        if np.ptp(z) < t:
            horizontal.setdefault(round(z.mean() / t), []).append(tag)
        elif np.abs(x).max() < t:
            groups["mirror_x"].append(tag)
        elif np.abs(y).max() < t:
            groups["mirror_y"].append(tag)
        elif np.ptp(np.hypot(x, y)) < t and abs(np.hypot(x, y).mean() - L.R) < t:
            groups["outer"].append(tag)

    def faces_at(z):
        found = [tag for key, tags in horizontal.items() if abs(key * t - z) < 2 * t for tag in tags]
        if not found:
            raise RuntimeError(f"micro_aperture_3d: no horizontal face at z = {z}")
        return sorted(found)

    named = [("anode", faces_at(L.z_anode)), ("cathode", faces_at(L.z_cathode)),
             ("outer", groups["outer"]), ("heatsink", faces_at(L.z_bottom)), ("top", faces_at(L.z_top))]
    if quarter:
        named += [("mirror_x", groups["mirror_x"]), ("mirror_y", groups["mirror_y"]),
                  ("mirror", groups["mirror_x"] + groups["mirror_y"])]
    for name, tags in named:
        if not tags:
            raise RuntimeError(f"micro_aperture_3d: no face found for group '{name}'")
        gmsh.model.addPhysicalGroup(2, sorted(tags), name=name)

    # sizes from exact distances: to the rim of the opening (the wall r = r0, z in the
    # insulator, and its two circles) and to the nanocrystal's spheres
    sizes = _sizes(gmsh, L, resolution, 3)
    zm, half = 0.5 * (L.ins[0] + L.ins[1]), 0.5 * (L.ins[1] - L.ins[0])
    dz = f"0.5*(Fabs(z-({zm!r}))-{half!r}+Fabs(Fabs(z-({zm!r}))-{half!r}))"
    sizes.near_expression(L.h_edge, L.h_max, f"Sqrt((Sqrt(x*x+y*y)-{L.r0!r})^2+({dz})^2)")
    if L.nc is not None:  # (a flat facet's rim lies on the outer sphere)
        for rad in sorted({L.nc.core, L.nc.outer}):
            sizes.near_expression(L.h_nc, L.h_max, f"Fabs(Sqrt(x*x+y*y+(z-({L.nc.zc!r}))^2)-{rad!r})")
    sizes.apply()


# -------------------------------------------------------------------- shape parameters
def _shapes(mesh: Mesh, L: _Layout) -> Mesh:
    """Attach the ShapeParameters (semantics in micro_aperture_axisym's docstring)."""
    d = mesh.dim
    x = mesh.points / L.scale  # in length_unit
    surface = np.unique(np.concatenate([f.ravel() for f in mesh.boundaries.values()]))
    in_nc = np.zeros(mesh.n_nodes, bool)
    for name in ("nc", "ligand"):
        if name in mesh.regions:
            in_nc[mesh.region_nodes(name)] = True
    ez = np.zeros(d)
    ez[-1] = 1.0
    rho = np.linalg.norm(x[:, :-1], axis=1)
    radial = np.zeros_like(x)  # unit vector away from the axis, in the plane z = const
    np.divide(x[:, :-1], rho[:, None], out=radial[:, :-1], where=rho[:, None] > 0)

    params = []
    for name, (z0, z1, shift) in L.thickness.items():
        def lift(z, z0=z0, z1=z1, shift=shift):  # exactly 0 and 1 on the layer's faces
            frac = np.clip((z - z0) / (z1 - z0), 0.0, 1.0)
            return np.where(np.abs(z - z0) < L.tol, 0.0, np.where(np.abs(z - z1) < L.tol, 1.0, frac)) + shift

        v = lift(np.where(in_nc[surface], L.nc.anchor if L.nc else 0.0, x[surface, -1]))
        params.append(ShapeParameter(name, surface[v != 0], v[v != 0, None] * ez,
                                     "layer thickness: surface nodes above the layer move up by 1, "
                                     "those on its sides by the fraction of the layer below them, the "
                                     "nanocrystal (if any) rigidly with its anchor interface"))
    wall = surface[~in_nc[surface] & (np.abs(rho[surface] - L.r0) < L.tol)
                   & (x[surface, -1] > L.ins[0] - L.tol) & (x[surface, -1] < L.ins[1] + L.tol)]
    params.append(ShapeParameter("opening_radius", wall, radial[wall],
                                 "the surface nodes on the wall r = opening_radius (rim included) "
                                 "move radially by 1"))
    if L.nc is not None:
        nc, nodes = L.nc, surface[in_nc[surface]]
        core = np.isin(nodes, mesh.region_nodes("nc"))
        rel = x[nodes] - nc.zc * ez
        dist_c = np.linalg.norm(rel, axis=1)  # from the centre
        n = np.divide(rel, dist_c[:, None], out=np.zeros_like(rel), where=dist_c[:, None] > 0)
        flat = np.abs(x[nodes, -1] - nc.anchor) < L.tol
        dist = nc.outer + nc.gap  # from the centre to the anchor plane

        def moving(d_outer, d_core, d_dist):
            """Velocity of the NC's surface nodes (spheres, and inside them the axis or mirror
            planes) when the outer radius, the core radius and the distance of the centre from
            the anchor plane change at these rates: the centre moves, the core scales about it,
            the shell's radius is interpolated between the core's and the outer one."""
            shell = nc.outer - nc.core
            frac = np.clip((dist_c - nc.core) / shell, 0.0, 1.0) if shell > 0 else np.ones_like(dist_c)
            d_rho = np.where(core, d_core * dist_c / nc.core, d_core + frac * (d_outer - d_core))
            v = nc.sense * d_dist * ez + d_rho[:, None] * n
            if nc.gap < 0:  # the flat facet stays in the plane and scales with its rim radius
                rate = (nc.outer * d_outer - dist * d_dist) / (nc.outer**2 - dist**2)
                v[flat] = radial[nodes[flat]] * (rho[nodes[flat]] * rate)[:, None]
            return v

        params.append(ShapeParameter("nc_radius", nodes, moving(1.0, 1.0, 1.0),
                                     "core radius (ligand and gap kept): the nanocrystal's surface nodes "
                                     "move by n + sense e_z; a flat facet scales in its plane"))
        if nc.ligand:
            params.append(ShapeParameter("ligand", nodes, moving(1.0, 0.0, 1.0),
                                         "ligand thickness (core and gap kept): the shell's outer nodes "
                                         "move by n + sense e_z, the core's by sense e_z"))
        params.append(ShapeParameter("nc_gap", nodes, moving(0.0, 0.0, 1.0),
                                     "gap between the nanocrystal and its anchor interface: the NC moves "
                                     "rigidly by sense e_z; a flat facet scales in its plane"))
    return with_shape(mesh, params)


# ------------------------------------------------------------------------- generators
def micro_aperture_axisym(opening_radius: float = 100.0, outer_radius: float = 600.0,
                          htl: float = 40.0, eml: float = 20.0, etl: float = 40.0,
                          insulator: float = 20.0, substrate: float = 0.0,
                          cathode_metal: float = 0.0, position: str = "htl_eml",
                          emitter: str = "layer", nc_radius: float = NC_RADIUS, ligand: float = 0.0,
                          nc_gap: float = NC_GAP, h_max: float | None = None,
                          h_edge: float | None = None, h_nc: float | None = None,
                          cells_across: float = 3.0, resolution: float = 1.0, msh_path=None,
                          length_unit: str = "nm") -> Mesh:
    """Dielectric micro-aperture LED, 2D axisymmetric: coordinates (r, z), r >= 0, z upward.

    A dielectric (``insulator``) layer with a circular opening of radius ``opening_radius``
    funnels the current into the nanocrystals (NCs) in or next to the opening, down to a
    single one; elsewhere the NC film sits against the insulator and carries (almost) no
    current. Lengths in ``length_unit`` (nm by default). Layers, bottom to top:

    * ``substrate`` z in [-substrate, 0], only when ``substrate > 0``; ``htl`` z in [0, htl];
    * ``position="htl_eml"`` (default): the aperture layer (thickness ``insulator``) lies
      between the HTL and the emitting layer: region ``insulator`` for r > opening_radius,
      the emitting layer's region for r < opening_radius (it fills the opening and touches
      the HTL), then the emitting layer (thickness ``eml``), then ``etl``;
    * ``position="eml_etl"``: the emitting layer (thickness ``eml``), then the aperture
      layer, whose opening the ETL fills (it touches the NC film through it), then the
      ``etl`` (thickness ``etl`` above the insulator);
    * ``metal`` (cathode metal) above the etl, only when ``cathode_metal > 0``.

    Emitting layer: ``emitter="layer"``: the NC film, region ``eml``. ``emitter="single"``:
    one NC on the axis under the opening: a core of radius ``nc_radius`` (region ``nc``)
    with, when ``ligand > 0``, a shell of that thickness (region ``ligand``), embedded in
    region ``matrix``, which then forms the emitting layer (it replaces ``eml``). The NC
    faces the injecting interface through the opening (its *anchor*: the HTL at the bottom
    of the opening for ``htl_eml``, the ETL in the opening for ``eml_etl``) across a
    ``nc_gap`` of matrix: no tangent contact, which would leave degenerate elements. A
    negative ``nc_gap`` truncates the NC (shell first) flat by the anchor plane, to a depth
    -nc_gap: it then touches that layer over a disk (interface e.g. ``htl_ligand``). The NC
    must fit in the opening (``htl_eml``) and in the emitting layer (both).

    Physical groups: one per region; one per interface ``"<a>_<b>"`` with a below b in the
    order substrate, htl, [insulator, eml | matrix, ligand, nc] (htl_eml) or
    [eml | matrix, ligand, nc, insulator] (eml_etl), etl, metal, e.g. ``htl_insulator``,
    ``htl_eml``, ``insulator_eml``, ``eml_etl`` (htl_eml) or ``eml_insulator``, ``eml_etl``,
    ``insulator_etl`` (eml_etl); and the lines ``anode`` (z = 0, the substrate_htl interface
    when a substrate exists), ``cathode`` (top of the etl), ``axis`` (every line on r = 0),
    ``outer`` (every line on r = outer_radius), ``heatsink`` (bottom-most line: bottom of the
    substrate, else the anode) and ``top`` (top-most line: top of the metal, else the cathode).
    The mesh is conforming (OpenCASCADE fragment): regions share their interface nodes.

    Mesh size: ``h_edge`` (default insulator/4) at the rim of the opening (its two corner
    points and the wall), ``h_nc`` (default min(nc_radius/4, ligand/2, |nc_gap|)) on the NC's
    surfaces, ``h_max`` (default outer_radius/15) elsewhere; every layer at most
    thickness/``cells_across``; sizes grow by at most 0.3 per unit distance (no jumps at
    interfaces); ``resolution`` divides every size. Defaults: about 1400 nodes; the shipped
    example (``scripts/make_meshes.py``) about 3900.

    M-matrix: in (r, z) each triangle's planar EAFE weights are multiplied by 2 pi r at its
    centroid, so a pair of triangles that is Delaunay in the plane can still give its edge
    a negative weight when it is nearly cocircular and the obtuse side lies farther from
    the axis, and an obtuse angle facing a line (interface, contact, axis) always does.
    gmsh's Frontal-Delaunay left 4 such edges in the defaults and 16 in the shipped example
    (MeshAdapt and Delaunay 0-12, depending on the stack). After meshing, the generator
    flips such edges inside each surface and splits at its middle any it cannot flip (on a
    line: a new node on that line), until none is left: the defaults, the shipped example
    and every stack tried (opening 20-400 nm, insulator 5-50 nm, emitting layer 5-40 nm,
    both positions and emitters) have no negative edge (``mesh_quality``), and their smallest
    angles are 24 degrees or more (the repair runs as ``finish``'s ``after_generate`` hook,
    so the ``.msh`` written is the repaired mesh).

    ``Mesh.shape`` (:class:`~pvsim.geometry.ShapeParameter`, velocities d x / d parameter):

    * ``opening_radius``: the nodes on the wall r = opening_radius (between the insulator's
      bottom and top, rim points included) move by (1, 0);
    * the thicknesses ``substrate`` (if > 0), ``htl``, ``insulator``, ``eml``, ``etl``,
      ``cathode_metal`` (if > 0): every surface node (any group: interfaces, axis, outer,
      contacts) moves vertically by clip((z - z0)/(z1 - z0), 0, 1), with [z0, z1] the layer:
      interfaces above it by 1, nodes on its side lines (axis, outer, the wall) by the
      fraction of the layer below them, nodes below not at all (``substrate`` grows
      downward: clip(...) - 1); the NC's nodes move rigidly with its anchor plane;
    * single emitter: ``nc_radius`` (ligand and nc_gap kept: the centre moves away from the
      anchor by 1): the NC's surface nodes move by n + sense e_z (n the outward normal of
      their sphere, sense +1 for htl_eml, -1 for eml_etl), nodes of a flat facet stay in its
      plane and scale radially with its rim; ``ligand`` (if > 0): the same on the shell's
      outer surface, the core translates by sense e_z; ``nc_gap``: the NC translates by
      sense e_z. The NC's nodes on the axis scale about its centre with the radii.

    Nodes on no group (interior nodes) never move: extending the motion inside is the
    caller's job (see :class:`~pvsim.geometry.ShapeParameter`). Returns the :class:`~pvsim.mesh.Mesh` (metres,
    ``axisymmetric=True``); with ``msh_path`` the ``.msh`` (format 2.2, coordinates in
    ``length_unit``) is written too.
    """
    L = _layout_of("micro_aperture_axisym", locals())  # first: locals() holds the arguments only
    with gmsh_session("micro_aperture_axisym") as gmsh:
        regions = _build_2d(gmsh, L, resolution)
        mesh = finish(gmsh, 2, msh_path, length_unit, axisymmetric=True,
                      after_generate=lambda g: mend_negative_edges(g, regions, axisymmetric=True))
    return _shapes(mesh, L)


def micro_aperture_3d(opening_radius: float = 100.0, outer_radius: float = 600.0,
                      htl: float = 40.0, eml: float = 20.0, etl: float = 40.0,
                      insulator: float = 20.0, substrate: float = 0.0,
                      cathode_metal: float = 0.0, position: str = "htl_eml",
                      emitter: str = "layer", nc_radius: float = NC_RADIUS, ligand: float = 0.0,
                      nc_gap: float = NC_GAP, quarter: bool = True, h_max: float | None = None,
                      h_edge: float | None = None, h_nc: float | None = None,
                      cells_across: float = 3.0, resolution: float = 1.0, msh_path=None,
                      length_unit: str = "nm") -> Mesh:
    """Dielectric micro-aperture LED in 3D: the body of revolution of :func:`micro_aperture_axisym`.

    Same parameters, layers, regions and interface groups: a cylindrical cell of radius
    ``outer_radius`` about the z axis (the opening and the single NC centred on it), so that
    each region's volume equals the axisymmetric volume of revolution up to the polygonal
    approximation of the circles and spheres. ``quarter=True`` (default) meshes only
    x >= 0, y >= 0, with the mirror planes as zero-flux faces ``mirror_x`` (the plane x = 0)
    and ``mirror_y`` (y = 0), and their union ``mirror``: a quarter of the nodes; volumes,
    currents and powers are then a quarter of the device's. ``quarter=False``: the full
    cylinder (no mirror groups).

    Face groups: ``anode`` (z = 0), ``cathode`` (top of the etl), ``heatsink``, ``top``,
    ``outer`` (the lateral face r = outer_radius), ``mirror_x``, ``mirror_y``, ``mirror``
    (quarter), and the interfaces ``"<a>_<b>"`` as in the axisymmetric generator (no
    ``axis``). Mesh sizes as there,
    with exact (analytic) distances to the rim of the opening (the wall and its two
    circles) and to the NC's spheres; tetrahedra optimised with Netgen. ``Mesh.shape``: as
    in :func:`micro_aperture_axisym`, with the radial direction (x, y, 0)/r; nodes on the
    mirror planes move within them.

    Size and quality: the defaults (quarter) give about 60 000 nodes (half a minute of
    gmsh), dihedral angles 17-149 degrees; the shipped example's parameters (opening
    400 nm, cell radius 1.5 um, 100 nm substrate) about 385 000. As in any gmsh
    tetrahedral mesh (a plain box meshed by gmsh is no better), about 17 % of the edges
    have a negative EAFE weight (worst about -3 x the median |w|): no flip or split
    repair is attempted in 3D, ``mesh_quality`` reports them; coarsen with
    ``resolution`` < 1 or ``cells_across`` < 3 for quick runs.
    """
    L = _layout_of("micro_aperture_3d", locals())  # first: locals() holds the arguments only
    with gmsh_session("micro_aperture_3d") as gmsh:
        _build_3d(gmsh, L, resolution, bool(quarter))
        mesh = finish(gmsh, 3, msh_path, length_unit)
    return _shapes(mesh, L)
