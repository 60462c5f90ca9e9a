"""Core/shell perovskite nanocrystals (gmsh, OpenCASCADE): one particle in an LED stack, or alone.

A type-I core/shell NC (DESIGN.md section 1): a narrow-gap perovskite core (CsPbBr3) inside a
wide-gap shell (Cs4PbBr6, SiO2, Al2O3 or an organic shell), optionally wrapped in an organic
ligand layer. The shell thickness is the design variable, so both generators return in
``Mesh.shape`` the velocities of the particle surfaces for the shell thickness, the core
radius and the ligand thickness (and, in the LED, of every transport-layer thickness).

Geometry shared by both generators (lengths in ``length_unit``, nm by default):

* ``core_shape="sphere"``: concentric spheres of radii ``a = core_radius``, ``a + shell``,
  ``a + shell + ligand``; 2D axisymmetric (coordinates (r, z), r >= 0, the axis r = 0) or 3D.
* ``core_shape="cube"`` (3D only: a cube is not a body of revolution): concentric
  axis-aligned cubes of half-edges ``a``, ``a + shell``, ``a + shell + ligand``, i.e. a
  cubic shell of thickness ``shell`` on every face.

Interface groups are named ``"<a>_<b>"`` with a before b in the order core, shell, ligand,
then the surrounding regions (bottom to top in the LED): ``core_shell``, ``shell_ligand``,
``shell_matrix`` (or ``ligand_matrix``), ``shell_htl``, ``htl_matrix``, ``matrix_etl``, ...

:func:`core_shell_led` puts the particle in the emitting layer of an LED stack (its outermost
layer cut flat where it touches the transport layers); :func:`core_shell_particle` puts it
alone in a ball of medium.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..mesh import Mesh
from ..units import LENGTH_UNITS
from .gmsh_tools import (ShapeParameter, Sizes, add_region_groups, boundary_entities, faces_on_plane,
                         finish, gmsh_session, mend_negative_edges, with_shape)

_PARTICLE = ("core", "shell", "ligand")
_GRADING = 0.3  # largest growth of the element size per unit distance


@dataclass(frozen=True)
class _Particle:
    """Concentric particle layers: (region, outer radius or half-edge), inside-out."""

    shape: str
    layers: tuple[tuple[str, float], ...]
    centre: float  # z of the centre; the centre lies on the axis x = y = 0 (r = 0)

    @property
    def outer(self) -> tuple[str, float]:
        return self.layers[-1]

    @property
    def lateral(self) -> float:
        """Largest distance of the particle from the axis."""
        return self.outer[1] * (np.sqrt(2.0) if self.shape == "cube" else 1.0)

    def radius_rates(self, param: str) -> dict[str, float]:
        """d(outer radius of each layer)/d(param) for the particle parameters."""
        held = {"core_radius": _PARTICLE, "shell": _PARTICLE[1:], "ligand": _PARTICLE[2:]}[param]
        return {name: float(name in held) for name, _ in self.layers}


def _particle(fn: str, core_radius, shell, ligand, core_shape, axisymmetric, centre=0.0) -> _Particle:
    if core_shape not in ("sphere", "cube"):
        raise ValueError(f"{fn}: core_shape must be 'sphere' or 'cube', got {core_shape!r}")
    if core_shape == "cube" and axisymmetric:
        raise ValueError(f"{fn}: core_shape='cube' needs axisymmetric=False (a cube is not a body "
                         "of revolution; use the 3D mesh or core_shape='sphere')")
    for name, value in (("core_radius", core_radius), ("shell", shell)):
        if not value > 0:
            raise ValueError(f"{fn}: {name} must be positive, got {value}")
    if not ligand >= 0:
        raise ValueError(f"{fn}: ligand must be >= 0 (0: no ligand layer), got {ligand}")
    a, s, lig = float(core_radius), float(shell), float(ligand)
    layers = [("core", a), ("shell", a + s)] + ([("ligand", a + s + lig)] if lig > 0 else [])
    return _Particle(core_shape, tuple(layers), float(centre))


def _feature_sizes(fn, p: _Particle, h_core, h_shell, h_ligand):
    """Per-region sizes (before ``resolution``): core a/4, shell and ligand thickness/3."""
    radii = dict(p.layers)
    sizes = {"core": h_core if h_core is not None else radii["core"] / 4,
             "shell": h_shell if h_shell is not None else (radii["shell"] - radii["core"]) / 3}
    if "ligand" in radii:
        sizes["ligand"] = h_ligand if h_ligand is not None else (radii["ligand"] - radii["shell"]) / 3
    for name, h in sizes.items():
        if not h > 0:
            raise ValueError(f"{fn}: h_{name} must be positive, got {h}")
    return sizes


def _solid(occ, dim: int, shape: str, radius: float, zc: float) -> int:
    """A disc (2D, centre (0, zc)), ball or cube (3D, centre (0, 0, zc)); returns its tag."""
    if dim == 2:
        return occ.addDisk(0, zc, 0, radius, radius)
    if shape == "sphere":
        return occ.addSphere(0, 0, zc, radius)
    return occ.addBox(-radius, -radius, zc - radius, 2 * radius, 2 * radius, 2 * radius)


def _clip(occ, dim: int, tag: int, keep: int) -> int:
    """The part of entity ``tag`` inside ``keep`` (``tag`` is replaced, ``keep`` kept)."""
    out, _ = occ.intersect([(dim, tag)], [(dim, keep)], removeObject=True, removeTool=False)
    if len(out) != 1:
        raise RuntimeError(f"core/shell geometry: clipping gave {len(out)} pieces, expected 1")
    return out[0][1]


def _fragment(gmsh, dim: int, named: list[tuple[str, int]], cuts=()) -> dict[str, list[int]]:
    """Conforming fragment of all entities; each piece goes to the first region containing it.

    ``named`` lists (region, tag) by priority: particle layers inside-out, then the rest;
    ``cuts`` are (dim-1) entities that split the regions they cross.
    """
    dimtags = [(dim, t) for _, t in named]
    _, pieces = gmsh.model.occ.fragment(dimtags[:1], dimtags[1:] + [(dim - 1, t) for t in cuts])
    gmsh.model.occ.synchronize()
    owner: dict[int, str] = {}
    for (region, _), out in zip(named, pieces):
        for _, t in out:
            owner.setdefault(t, region)
    regions: dict[str, list[int]] = {region: [] for region, _ in named}
    for t, region in sorted(owner.items()):
        regions[region].append(t)
    return regions


def _entities_where(gmsh, dim: int, predicate, n: int = 5) -> list[int]:
    """Tags of the dim-entities whose underlying point/curve/surface satisfies predicate at samples."""
    out = []
    for _, tag in gmsh.model.getEntities(dim):
        if dim == 0:
            xyz = np.asarray(gmsh.model.getValue(0, tag, [])).reshape(1, 3)
        else:
            lo, hi = gmsh.model.getParametrizationBounds(dim, tag)
            axes = [np.linspace(lo[k], hi[k], n) for k in range(dim)]
            params = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1)
            xyz = np.asarray(gmsh.model.getValue(dim, tag, params)).reshape(-1, 3)
        if np.all(predicate(xyz)):
            out.append(tag)
    return out


def _add_boundary_groups(gmsh, fn: str, dim: int, groups: dict[str, list[int]], tol: float) -> None:
    """Physical groups of the (dim-1) entities in ``groups`` and, in 2D, ``axis`` (r = 0)."""
    if dim == 2:
        groups["axis"] = _entities_where(gmsh, 1, lambda q: np.abs(q[:, 0]) < tol)
    for name, tags in groups.items():
        if not tags:
            raise RuntimeError(f"{fn}: no boundary found for group '{name}'")
        gmsh.model.addPhysicalGroup(dim - 1, sorted(tags), name=name)


def _size_particle(gmsh, resolution: float, dim: int, p: _Particle, regions, h: dict, far: float) -> Sizes:
    """The size field's pieces of the particle: fine sizes at the shell (and ligand) surfaces
    graded to ``far``, the core capped at h_core; add the rest, then ``apply``."""
    sizes = Sizes(gmsh, resolution, _GRADING)
    R = p.outer[1]
    for name in ("shell", "ligand"):
        if name in h:
            ents = sorted(boundary_entities(gmsh, dim, regions[name]))
            # Distance field sampling: about one sample per element along the circumference
            sampling = int(np.clip(np.ceil(2 * np.pi * R * sizes.res / h[name]), 20, 160))
            where = {"curves": ents} if dim == 2 else {"surfaces": ents}
            sizes.near(h[name], far, sampling=sampling, **where)
    a = p.layers[0][1]
    lo = [-a] * (dim - 1) + [p.centre - a]
    if dim == 2:
        lo[0] = 0.0
    sizes.box(lo, [a] * (dim - 1) + [p.centre + a], inside=h["core"], outside=far)
    return sizes


class _Ladder:
    """A structured mesh of the two matrix wedges at the contact rims (2D axisymmetric).

    Between the layer plane and the sphere the matrix forms a wedge of angle
    arccos(1 - c/R) at the rim; a free mesher puts obtuse triangles against its sides
    (negative EAFE weights). Here the wedge is split, up to where it is about one element
    wide, into rungs joining plane and sphere points at equal distances ``k h`` from the
    rim, each quadrilateral cut by its Delaunay diagonal, every curve one segment.
    """

    def __init__(self, p: _Particle, c: float, z_b: float, z_t: float, Rc: float, h: float):
        R, zc = p.outer[1], p.centre
        theta_rim = np.arcsin(np.sqrt(2 * R * c - c * c) / R)  # from the pole to the rim
        self.rows = []  # per wedge: [(plane point, sphere point)] for k = 0 (rim), 1, ...
        for z_plane, sign in ((z_b, -1.0), (z_t, 1.0)):
            rim = np.array([R * np.sin(theta_rim), z_plane])
            row = [(rim, rim)]
            for k in range(1, 16):
                theta = theta_rim + k * h / R
                plane = rim + [k * h, 0.0]
                sphere = np.array([R * np.sin(theta), zc + sign * R * np.cos(theta)])
                if theta > 0.4 * np.pi or plane[0] > Rc - h:
                    break
                row.append((plane, sphere))
                if np.linalg.norm(plane - sphere) > 0.9 * h:
                    break
            self.rows.append(row)
        self.points: list[np.ndarray] = []
        self.tol = 1e-3 * h

    @staticmethod
    def _angle(at, a, b) -> float:
        u, v = a - at, b - at
        return float(np.arccos(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v))))

    def add(self, occ) -> list[int]:
        """Rungs and diagonals as OCC lines (fragment tools); the points kept for :meth:`mesh`."""
        lines = []
        for row in self.rows:
            for k in range(1, len(row)):
                (a, d), (b, cc) = row[k - 1], row[k]
                pairs = [(b, cc)]
                if k > 1:  # quadrilateral a b cc d: the diagonal whose opposite angles sum <= pi
                    ac = self._angle(b, a, cc) + self._angle(d, cc, a) <= np.pi
                    pairs.append((a, cc) if ac else (b, d))
                for u, v in pairs:
                    lines.append(occ.addLine(occ.addPoint(u[0], u[1], 0), occ.addPoint(v[0], v[1], 0)))
                self.points += [a, b, cc, d]
        return lines

    def mesh(self, gmsh) -> None:
        """One segment on every ladder curve, one triangle in every ladder surface."""
        pts = np.array(self.points)

        def on_ladder(tag):
            xyz = np.array(gmsh.model.getValue(0, tag, []))[:2]
            return np.min(np.linalg.norm(pts - xyz, axis=1)) < self.tol

        vertices = {t for _, t in gmsh.model.getEntities(0) if on_ladder(t)}
        curves = set()
        for _, t in gmsh.model.getEntities(1):
            ends = {e for _, e in gmsh.model.getBoundary([(1, t)], oriented=False)}
            if ends <= vertices:
                curves.add(t)
                gmsh.model.mesh.setTransfiniteCurve(t, 2)
        for _, t in gmsh.model.getEntities(2):
            edges = {e for _, e in gmsh.model.getBoundary([(2, t)], combined=False, oriented=False)}
            if edges <= curves:
                corners = {v for _, v in gmsh.model.getBoundary([(2, t)], recursive=True)}
                gmsh.model.mesh.setTransfiniteSurface(t, cornerTags=sorted(corners & vertices))


def _finish(gmsh, dim: int, regions, msh_path, length_unit: str, axisymmetric: bool) -> Mesh:
    """:func:`finish`, with :func:`mend_negative_edges` between generation and output in 2D."""
    if dim == 3:
        return finish(gmsh, 3, msh_path, length_unit, axisymmetric)
    gmsh.option.setNumber("Mesh.Smoothing", 5)
    return finish(gmsh, 2, msh_path, length_unit, axisymmetric,
                  after_generate=lambda g: mend_negative_edges(g, regions, axisymmetric))


def _node_sets(mesh: Mesh, names) -> np.ndarray:
    parts = [mesh.boundaries[n].ravel() for n in names if n in mesh.boundaries]
    return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)


# ----------------------------------------------------------------------------- the LED
def core_shell_led(*, axisymmetric: bool = True, core_radius: float = 4.5, shell: float = 2.0,
                   ligand: float = 0.0, core_shape: str = "sphere",
                   below=(("htl", 30.0),), above=(("etl", 40.0),), cell_radius: float | None = None,
                   contact_depth: float = 0.5, resolution: float = 1.0, h_core: float | None = None,
                   h_shell: float | None = None, h_ligand: float | None = None,
                   h_layer: float | None = None, msh_path=None, length_unit: str = "nm") -> Mesh:
    """One core/shell NC in the emitting layer of an LED, in a cylindrical cell around it.

    Stack, bottom to top (z upward, z = 0 at the anode, the bottom of the first ``below``
    layer): the ``below`` layers ((region, thickness) pairs, bottom to top, e.g. PEDOT:PSS
    and an HTL; may be empty), the NC layer, the ``above`` layers (ETL, ...). The NC layer
    holds the particle (regions ``core``, ``shell`` and, when ``ligand > 0``, ``ligand``),
    centred on the axis, in region ``matrix`` that fills the rest of the layer. The cell is
    a cylinder of radius ``cell_radius`` (default 1.5 R for spheres, (sqrt(2) + 0.5) R for
    cubes; R = core_radius + shell + ligand, the outer radius or half-edge): in 2D
    axisymmetric (r, z) the rectangle [0, cell_radius] x [0, z_top], in 3D the cylinder
    itself, so that both describe the same device and give the same region volumes. The
    lateral face carries zero flux: the cell stands for one particle of a monolayer (the
    cylinder of the lattice cell's area: cell_radius = pitch / sqrt(pi) on a square lattice).

    **How the particle touches the transport layers.** The NC layer is ``T = 2 (R - c)``
    thick, ``c = contact_depth``, and the particle's outermost layer (the shell, or the
    ligand when present) is cut flat by the two layer planes: it touches the layer below
    and the layer above through contact discs of radius sqrt(2 R c - c^2) (cube: through
    its faces), so carriers reach the shell without crossing the matrix, and there is no
    tangent-point contact (a zero-angle wedge of matrix). The matrix meets a layer plane at
    the disc rim with the wedge angle arccos(1 - c / R) (22.6 degrees with the defaults).
    Only the outermost layer is cut: ``0 < c <= thickness(outermost) / 2`` (cube: c = 0
    allowed), so the inner layers stay whole; the barrier between the core and a transport
    layer on the axis is ``shell + ligand - c``.

    Physical groups: regions ``core``, ``shell``, (``ligand``), ``matrix`` and the layer
    names; every interface between two regions (``add_region_groups``, order core, shell,
    ligand, below layers bottom to top, matrix, above layers), e.g. ``core_shell``,
    ``shell_matrix``, ``shell_htl`` and ``shell_etl`` (the contact discs), ``htl_matrix``,
    ``matrix_etl``, ``pedot_htl``; ``anode`` (z = 0), ``cathode`` (the top face), ``outer``
    (the lateral face, r = cell_radius) and, axisymmetric, ``axis`` (r = 0).

    Mesh size (each divided by ``resolution``): ``h_shell`` (default shell/3: three
    elements across the shell) within two elements of the shell's surfaces, ``h_ligand``
    (ligand/3) likewise, ``h_core`` (core_radius/4) in the core, ``h_layer`` (default R/2)
    in the bulk of the matrix and the transport layers, each layer capped at a third of its
    thickness; sizes grow by at most 0.3 per unit distance away from the surfaces. 2D: each
    matrix wedge at a contact rim is meshed as a ladder (rungs joining plane and sphere
    points at equal distances from the rim, Delaunay diagonals) up to where it is one
    element wide, and after generation an edge with a negative EAFE weight is flipped inside
    its surface, or split at its middle (:func:`~pvsim.geometry.gmsh_tools.mend_negative_edges`):
    the axisymmetric meshes come out with no negative EAFE edge (smallest angle about 20
    degrees, at the rims). 3D tetrahedra (Netgen
    optimised) keep about one edge in six with a negative EAFE weight, as unstructured
    tetrahedral meshes do; :func:`~pvsim.geometry.mesh_quality` reports them.

    ``Mesh.shape`` (first order in the parameter for the geometry the generator builds;
    velocities in length per length): for each parameter, every node of every boundary
    group that moves, with d x / d parameter. Parameters ``core_radius`` (shell and ligand
    thicknesses held), ``shell``, ``ligand`` (when present) and each transport-layer
    thickness under the layer's name (``htl``, ``etl``, ...); ``contact_depth`` and
    ``cell_radius`` are held. Growing the particle by dR thickens the NC layer by 2 dR: the
    anode side stays, the particle centre rises by dR = dzc and everything above the NC
    layer by 2 dR. With F(z) the piecewise-linear interpolation over z of the plane
    velocities (each layer stretched uniformly), the velocities are

    * an uncut particle surface of outer radius R_k: ``dzc e_z + dR_k (x - c) / R_k``, c the
      centre: a translation plus the radial unit vector times dR_k (on cube faces, the face
      normal);
    * the cut outermost surface, sphere part: ``F(z) e_z + w e_rho``, w such that the normal
      velocity is the exact ``dzc n_z + dR``; its contact discs: ``F(z) e_z`` plus the radial
      stretch of the disc that follows the rim (cube: ``F(z) e_z + dR x_h / R`` on every
      face, x_h the horizontal position);
    * every other boundary node (layer planes, contacts, axis, lateral face): ``F(z) e_z``.

    A transport-layer thickness moves everything above the top of that layer by +1
    (vertical, particle included) and stretches the layer's own lateral/axis nodes; the
    planes below stay. Interior nodes are not listed (extend the motion, e.g. by a Laplace
    solve). With the defaults the axisymmetric mesh has about 520 nodes, the 3D one 9000.

    Returns the checked :class:`~pvsim.mesh.Mesh` in metres (``axisymmetric`` as asked);
    ``msh_path`` also writes the ``.msh`` (format 2.2, in ``length_unit``).
    """
    fn = "core_shell_led"
    p = _particle(fn, core_radius, shell, ligand, core_shape, axisymmetric)
    dim = 2 if axisymmetric else 3
    stack = [(str(name), float(t)) for name, t in below] + [("matrix", 0.0)] + \
        [(str(name), float(t)) for name, t in above]
    names = [n for n, _ in stack]
    for name, t in stack:
        if name in _PARTICLE or (name == "matrix" and t != 0.0) or names.count(name) > 1:
            raise ValueError(f"{fn}: layer name {name!r} is reserved or repeated; the particle "
                             "regions are core/shell/ligand and the NC layer is 'matrix'")
        if name != "matrix" and not t > 0:
            raise ValueError(f"{fn}: layer {name!r} must have a positive thickness, got {t}")
    outer_name, R = p.outer
    t_outer = R - p.layers[-2][1]
    c = float(contact_depth)
    if not (0.0 <= c <= 0.5 * t_outer) or (c == 0.0 and p.shape == "sphere"):
        raise ValueError(f"{fn}: contact_depth must be in (0, {0.5 * t_outer:g}] (at most half the "
                         f"{outer_name} thickness {t_outer:g}; >= 0 for cubes), got {contact_depth}")
    T = 2 * (R - c)
    stack[len(below)] = ("matrix", T)
    planes = np.concatenate([[0.0], np.cumsum([t for _, t in stack])])
    z_b, z_t = planes[len(below)], planes[len(below) + 1]
    p = _Particle(p.shape, p.layers, z_b + R - c)
    default_cell = R * (1.5 if p.shape == "sphere" else np.sqrt(2.0) + 0.5)
    Rc = float(cell_radius) if cell_radius is not None else default_cell
    if not Rc > p.lateral:
        raise ValueError(f"{fn}: cell_radius ({Rc:g}) must exceed the particle's lateral extent "
                         f"({p.lateral:g})")
    h = _feature_sizes(fn, p, h_core, h_shell, h_ligand)
    h_far = float(h_layer) if h_layer is not None else R / 2
    if not h_far > 0:
        raise ValueError(f"{fn}: h_layer must be positive, got {h_layer}")
    # OCC pads bounding boxes by its tolerance (1e-7 in model units): stay well above that
    tol = 1e-3 * min(c if c > 0 else t_outer, min(h.values()))

    with gmsh_session(fn) as gmsh:
        occ = gmsh.model.occ
        slabs = []
        for (_, t), z0 in zip(stack, planes):
            slabs.append(occ.addRectangle(0, z0, 0, Rc, t) if dim == 2
                         else occ.addCylinder(0, 0, z0, 0, 0, t, Rc))
        nc = slabs[len(below)]
        solids = [_clip(occ, dim, _solid(occ, dim, p.shape, r, p.centre), nc) for _, r in p.layers]
        named = list(zip([n for n, _ in p.layers], solids)) + list(zip(names, slabs))
        ladder = _Ladder(p, c, z_b, z_t, Rc, h[outer_name] / resolution) \
            if dim == 2 and p.shape == "sphere" else None
        regions = _fragment(gmsh, dim, named, ladder.add(occ) if ladder else ())
        if ladder:
            ladder.mesh(gmsh)
        order = [n for n, _ in p.layers] + names
        add_region_groups(gmsh, dim, regions, order)

        radial = (lambda q: np.abs(q[:, 0])) if dim == 2 else (lambda q: np.hypot(q[:, 0], q[:, 1]))
        groups = {"anode": faces_on_plane(gmsh, dim, dim - 1, 0.0, tol),
                  "cathode": faces_on_plane(gmsh, dim, dim - 1, planes[-1], tol),
                  "outer": _entities_where(gmsh, dim - 1, lambda q: np.abs(radial(q) - Rc) < tol)}
        _add_boundary_groups(gmsh, fn, dim, groups, tol)

        sizes = _size_particle(gmsh, resolution, dim, p, regions, h, h_far)
        for (_, t), z0 in zip(stack, planes):
            lo = [0.0 if dim == 2 else -Rc] + [-Rc] * (dim - 2) + [z0 - tol]
            sizes.box(lo, [Rc] * (dim - 1) + [z0 + t + tol], inside=min(h_far, t / 3), outside=h_far)
        sizes.apply()
        mesh = _finish(gmsh, dim, regions, msh_path, length_unit, axisymmetric)

    return with_shape(mesh, _led_shape(mesh, p, c, planes, stack, len(below), LENGTH_UNITS[length_unit]))


def _led_shape(mesh: Mesh, p: _Particle, c: float, planes, stack, n_below: int, scale: float):
    """The ShapeParameters of :func:`core_shell_led` (see its docstring)."""
    x = mesh.points / scale
    z, xh = x[:, -1], x[:, :-1]
    rho = np.linalg.norm(xh, axis=1)
    centre = np.zeros(mesh.dim)
    centre[-1] = p.centre
    outer_name, R = p.outer
    layer_names = [n for n, _ in p.layers]
    stack_names = [n for n, _ in stack]
    idx = np.arange(len(planes))
    nc_top = n_below + 1
    z_b, z_t = planes[n_below], planes[nc_top]
    rim = np.sqrt(max(2 * R * c - c * c, 0.0))
    tol = 1e-3 * max(c, 1e-3 * R)  # model units; nodes lie on the planes to rounding

    every = np.unique(np.concatenate([b.ravel() for b in mesh.boundaries.values()]))
    closed = {name: _node_sets(mesh, [f"{name}_{nxt}"]) for name, nxt in zip(layer_names, layer_names[1:])}
    cut = _node_sets(mesh, [f"{outer_name}_{s}" for s in stack_names])
    on_contacts = _node_sets(mesh, ["anode", "cathode"])
    cut = np.union1d(cut, np.intersect1d(on_contacts, np.unique(mesh.regions[outer_name])))
    on_plane = np.isclose(z[cut], z_b, atol=tol) | np.isclose(z[cut], z_t, atol=tol)

    grow = (idx >= nc_top).astype(float) * 2.0
    rates = [("core_radius", grow), ("shell", grow)] + ([("ligand", grow)] if len(p.layers) == 3 else [])
    for k, (name, _) in enumerate(stack):
        if name != "matrix":
            rates.append((name, (idx >= k + 1).astype(float)))

    out = []
    for param, v in rates:
        particle_param = param in _PARTICLE + ("core_radius",)
        dR = p.radius_rates(param) if particle_param else dict.fromkeys(layer_names, 0.0)
        dzc = 0.5 * (v[n_below] + v[nc_top])
        vel = np.zeros_like(x)
        vel[every, -1] = np.interp(z[every], planes, v)
        # the cut outermost surface: vertical stack stretch, horizontal part from its normal speed
        F = np.interp(z[cut], planes, v)
        if p.shape == "cube":
            horiz = dR[outer_name] * xh[cut] / R
        else:
            dist = np.linalg.norm(x[cut] - centre, axis=1)
            n_z = (z[cut] - p.centre) / dist
            w = (dzc * n_z + dR[outer_name] - F * n_z) / np.maximum(rho[cut] / dist, 1e-300)
            # on the contact discs: the radial stretch that follows the rim
            nz_rim = np.where(z[cut] > p.centre, 1.0, -1.0) * (R - c) / R
            w_rim = (dzc * nz_rim + dR[outer_name] - F * nz_rim) / (rim / R)
            w = np.where(on_plane, w_rim * rho[cut] / rim, w)
            horiz = w[:, None] * xh[cut] / np.maximum(rho[cut], 1e-300)[:, None]
        vel[cut, :-1] = horiz
        vel[cut, -1] = F
        for name, nodes in closed.items():
            vel[nodes] = dR[name] * (x[nodes] - centre) / dict(p.layers)[name]
            vel[nodes, -1] += dzc
        moving = every[np.linalg.norm(vel[every], axis=1) > 0]
        what = (f"{param} (contact_depth and the other particle thicknesses held)" if particle_param
                else f"thickness of layer '{param}'")
        out.append(ShapeParameter(param, moving, vel[moving],
                                  f"{what}: boundary nodes that move, d x / d {param}"))
    return out


# ------------------------------------------------------------------- particle in a medium
def core_shell_particle(*, axisymmetric: bool = True, core_radius: float = 4.5, shell: float = 2.0,
                        ligand: float = 0.0, core_shape: str = "sphere",
                        medium_radius: float | None = None, resolution: float = 1.0,
                        h_core: float | None = None, h_shell: float | None = None,
                        h_ligand: float | None = None, h_medium: float | None = None, msh_path=None,
                        length_unit: str = "nm") -> Mesh:
    """A lone core/shell NC centred at the origin in a ball of ``medium`` (confinement, dielectrics).

    Regions ``core``, ``shell``, (``ligand`` when ``ligand > 0``) and ``medium``, which fills
    the ball of radius ``medium_radius`` (default 3 R, R = core_radius + shell + ligand;
    for cubes R is the half-edge and the ball must hold the cube's corners). 2D
    axisymmetric: the half-disc r >= 0 of the (r, z) plane, 3D: the whole ball. Groups:
    every region; interfaces ``core_shell``, ``shell_ligand``, ``shell_medium`` or
    ``ligand_medium``; ``outer`` (the sphere r = medium_radius) and, axisymmetric, ``axis``.

    Mesh size (divided by ``resolution``): ``h_shell`` (shell/3) and ``h_ligand``
    (ligand/3) within two elements of their surfaces, ``h_core`` (core_radius/4) in the
    core, growing by 0.3 per unit distance to ``h_medium`` (default medium_radius/6). 2D:
    edges with a negative EAFE weight are flipped or split after meshing, as in
    :func:`core_shell_led`, so the axisymmetric meshes have no negative EAFE edge.

    ``Mesh.shape``: ``core_radius`` (the core surface and, with the thicknesses held, the
    shell and ligand surfaces), ``shell`` (shell and ligand outer surfaces), ``ligand``
    (when present; its outer surface) move with velocity ``x / R_k`` on the surface of
    outer radius R_k: the outward radial unit vector on spheres, on cubes the motion of a
    cube scaled about its centre (unit normal speed on every face); ``medium_radius``: the
    ``outer`` nodes, radial unit vector. The axis and the medium stay.
    """
    fn = "core_shell_particle"
    p = _particle(fn, core_radius, shell, ligand, core_shape, axisymmetric)
    dim = 2 if axisymmetric else 3
    R = p.outer[1]
    Rm = float(medium_radius) if medium_radius is not None else 3 * R
    reach = R * (np.sqrt(3.0) if p.shape == "cube" else 1.0)
    if not Rm > reach:
        raise ValueError(f"{fn}: medium_radius ({Rm:g}) must exceed the particle's extent ({reach:g})")
    h = _feature_sizes(fn, p, h_core, h_shell, h_ligand)
    h_far = float(h_medium) if h_medium is not None else Rm / 6
    if not h_far > 0:
        raise ValueError(f"{fn}: h_medium must be positive, got {h_medium}")
    tol = 1e-3 * min(h.values())

    with gmsh_session(fn) as gmsh:
        occ = gmsh.model.occ
        ball = _solid(occ, dim, "sphere", Rm, 0.0)
        solids = [_solid(occ, dim, p.shape, r, 0.0) for _, r in p.layers]
        if dim == 2:
            half = occ.addRectangle(0, -Rm, 0, Rm, 2 * Rm)
            solids = [_clip(occ, dim, t, half) for t in solids]
            ball = _clip(occ, dim, ball, half)
            occ.remove([(dim, half)])
        named = list(zip([n for n, _ in p.layers], solids)) + [("medium", ball)]
        regions = _fragment(gmsh, dim, named)
        add_region_groups(gmsh, dim, regions, list(regions))
        groups = {"outer": _entities_where(gmsh, dim - 1,
                                           lambda q: np.abs(np.linalg.norm(q, axis=1) - Rm) < tol)}
        _add_boundary_groups(gmsh, fn, dim, groups, tol)
        sizes = _size_particle(gmsh, resolution, dim, p, regions, h, h_far)
        sizes.box([-Rm] * dim, [Rm] * dim, inside=h_far, outside=h_far)
        sizes.apply()
        mesh = _finish(gmsh, dim, regions, msh_path, length_unit, axisymmetric)

    x = mesh.points / LENGTH_UNITS[length_unit]
    names = [n for n, _ in p.layers]
    surfaces = {name: _node_sets(mesh, [f"{name}_{nxt}"]) for name, nxt in zip(names, names[1:] + ["medium"])}
    params = []
    for param in ["core_radius", "shell"] + (["ligand"] if "ligand" in names else []):
        dR = p.radius_rates(param)
        moving = [(nodes, dR[name] / r) for (name, r), nodes in zip(p.layers, surfaces.values()) if dR[name]]
        nodes = np.concatenate([m for m, _ in moving])
        vel = np.concatenate([x[m] * f for m, f in moving])
        order = np.argsort(nodes)
        params.append(ShapeParameter(param, nodes[order], vel[order], f"{param}: particle surfaces, x / R_k"))
    rim = _node_sets(mesh, ["outer"])
    params.append(ShapeParameter("medium_radius", rim, x[rim] / Rm, "outer sphere, radial unit vector"))
    return with_shape(mesh, params)
