"""NC-monolayer LED unit cells (DESIGN.md §1, family 1): 2D cross-sections and 3D cells.

One generator, :func:`nc_monolayer`, two meshers behind it:

* gmsh / OpenCASCADE (cubes or spheres): boxes, disks or balls fragmented into one
  conforming mesh, sized by a background field (fine in the ligand shells);
* ``structured=True`` (cubes only, numpy): a graded tensor-product grid whose grid lines
  contain every planar interface, each box cut into Kuhn simplices. Kuhn simplices of a
  right-angled box are path simplices (orthoschemes), whose dihedral angles are all
  <= 90 degrees for any edge lengths, so every EAFE edge weight is >= 0 (no negative edges,
  whatever the aspect ratio of the boxes).

The geometry as a function of the physical parameters lives in :func:`_layout` (pure,
numpy); both meshers and the shape velocities (:class:`ShapeParameter`) are built from it,
the velocities by differentiating the layout (it is affine in every parameter).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations, permutations
from math import sqrt

import numpy as np

from ..mesh import Mesh, from_arrays
from ..units import LENGTH_UNITS
from .gmsh_tools import (ShapeParameter, Sizes, add_region_groups, boundary_entities, finish,
                         gmsh_session, mend_negative_edges, with_shape)

RESERVED = ("nc", "ligand", "matrix")
GRADING = 0.3  # largest relative growth of neighbouring element sizes
_SQRT3 = sqrt(3.0)


# ----------------------------------------------------------------------------- layout
@dataclass(frozen=True)
class _Config:
    """The discrete choices (everything that is not a continuous geometric parameter)."""

    dim: int
    shape: str  # "cube" | "sphere"
    lattice: str  # "square" | "hexagonal"
    n_x: int
    n_y: int
    nc_layers: int
    below: tuple[str, ...]
    above: tuple[str, ...]


@dataclass(frozen=True)
class _Layout:
    extent: np.ndarray  # (dim,) size of the cell; the last entry is the top of the stack
    bands: tuple[tuple[str, float, float], ...]  # transport layers (name, z0, z1), bottom to top
    slab: tuple[float, float]  # vertical range of the NC layer(s)
    centres: np.ndarray  # (K, dim) NC centres (also those cut by the mirror faces)
    core: float  # half edge (cube) or radius (sphere) of the cores
    shell: float  # same for the outer surface of the ligand shells
    pitch: float  # lateral lattice constant
    pitch_z: float  # vertical distance between NC layers
    keys: tuple[dict, ...]  # per axis: label -> coordinate of a plane the velocity field follows


def _layout(q: Mapping, cfg: _Config) -> _Layout:
    """Positions and sizes of everything, from the continuous parameters ``q`` (length unit)."""
    D, L, o, g = q["nc_size"], q["ligand"], q["overlap"], q["layer_gap"]
    s = D + 2 * L  # outer size of a ligand shell (edge or diameter)
    close = s - 2 * o  # centre distance of neighbours whose shells are pressed together by o
    if q["pitch"] is not None:
        p = q["pitch"]
    elif cfg.shape == "cube" and cfg.lattice == "hexagonal":
        p = 2 * close / _SQRT3  # rows at distance close: shells touch across the rows
    else:
        p = close
    pz = close + g
    bands, z = [], 0.0
    for name in cfg.below:
        bands.append((name, z, z + q[name]))
        z += q[name]
    slab = (z, z + cfg.nc_layers * pz)
    z = slab[1]
    for name in cfg.above:
        bands.append((name, z, z + q[name]))
        z += q[name]
    top = z
    if cfg.dim == 2:
        lateral = [((i + 0.5) * p,) for i in range(cfg.n_x)]
        ext = [cfg.n_x * p]
    elif cfg.lattice == "square":
        lateral = [((i + 0.5) * p, (j + 0.5) * p) for j in range(cfg.n_y) for i in range(cfg.n_x)]
        ext = [cfg.n_x * p, cfg.n_y * p]
    else:  # rectangular cell p x sqrt(3) p: corners and centre, 2 NCs per cell
        row = _SQRT3 * p
        lateral = [(i * p, j * row) for j in range(cfg.n_y + 1) for i in range(cfg.n_x + 1)]
        lateral += [((i + 0.5) * p, (j + 0.5) * row) for j in range(cfg.n_y) for i in range(cfg.n_x)]
        ext = [cfg.n_x * p, cfg.n_y * row]
    zc = [slab[0] - o + s / 2 + k * pz for k in range(cfg.nc_layers)]
    centres = np.array([(*xy, zk) for zk in zc for xy in lateral], dtype=float)
    extent = np.array([*ext, top], dtype=float)

    tol = 1e-9 * max(top, ext[0])
    keys = []
    for a in range(cfg.dim):
        vertical = a == cfg.dim - 1
        k = {("lo",): 0.0, ("hi",): float(extent[a])}
        lo, hi = (slab if vertical else (0.0, extent[a]))
        if vertical:
            for name, z0, z1 in bands:
                k[("band", name, 0)], k[("band", name, 1)] = z0, z1
            k[("slab", 0)], k[("slab", 1)] = slab
        for n, c in enumerate(centres[:, a]):
            if cfg.shape == "sphere":
                k[("centre", n)] = float(c)
                continue
            for label, half in (("core", D / 2), ("shell", s / 2)):
                for side in (-1, 1):
                    x = float(c + side * half)
                    if lo - tol <= x <= hi + tol:
                        k[(label, n, side)] = x
        keys.append(k)
    return _Layout(extent, tuple(bands), slab, centres, D / 2, s / 2, p, pz, tuple(keys))


def _merged(keys: dict, tol: float) -> list[list]:
    """Labels of the distinct planes: groups of labels whose coordinates agree within tol."""
    items = sorted(keys.items(), key=lambda kv: kv[1])
    groups = [[items[0]]]
    for label, x in items[1:]:
        if x - groups[-1][-1][1] <= tol:
            groups[-1].append((label, x))
        else:
            groups.append([(label, x)])
    return [[label for label, _ in grp] for grp in groups]


# ------------------------------------------------------------------------ checks
def _as_layers(value, what: str) -> tuple[tuple[str, float], ...]:
    items = list(value.items()) if isinstance(value, Mapping) else list(value)
    out = []
    for item in items:
        try:
            name, t = item
            t = float(t)
        except (TypeError, ValueError):
            raise ValueError(f"nc_monolayer: {what} takes (name, thickness) pairs, got {item!r}") from None
        if not isinstance(name, str) or not name or not name.replace("_", "a").isalnum():
            raise ValueError(f"nc_monolayer: layer name {name!r} in {what} must be a non-empty word "
                             "(letters, digits, '_'): it names a region and its interfaces")
        if not t > 0:
            raise ValueError(f"nc_monolayer: layer '{name}' in {what} needs a positive thickness, got {t}")
        out.append((name, t))
    return tuple(out)


def _as_count(value, name: str) -> int:
    if isinstance(value, bool) or not float(value) == int(value) or int(value) < 1:
        raise ValueError(f"nc_monolayer: {name} must be a whole number >= 1, got {value!r}")
    return int(value)


def _check(q: Mapping, cfg: _Config, lay: _Layout) -> None:
    D, L, o, g = q["nc_size"], q["ligand"], q["overlap"], q["layer_gap"]
    s, p, pz = D + 2 * L, lay.pitch, lay.pitch_z
    if o > L / 2:
        raise ValueError(f"nc_monolayer: overlap ({o}) may be at most ligand/2 ({L / 2}): the ligand "
                         "between two cores would get thinner than the shell itself")
    # closest cores: lateral neighbours (cubes in a hexagonal lattice: rows sqrt(3)/2 p apart,
    # the box-distance), vertical neighbours
    lateral = _SQRT3 / 2 * p if (cfg.shape == "cube" and cfg.lattice == "hexagonal") else p
    seps = [("pitch", lateral)] + ([("vertical pitch", pz)] if cfg.nc_layers > 1 else [])
    for what, sep in seps:
        if sep < D + L - 1e-9 * s:
            raise ValueError(
                f"nc_monolayer: {what} {sep:.6g} leaves less than one ligand thickness between the "
                f"cores (needs >= nc_size + ligand = {D + L:.6g}); the NCs would overlap")
    if cfg.shape == "sphere":
        # tangent spheres (or a sphere tangent to a plane) are degenerate for the mesher
        tol = 0.01 * L
        tangent = [("neighbouring ligand shells (pitch - nc_size - 2 ligand)", p - s),
                   ("the ligand shell and the layer below (overlap)", o)]
        if cfg.nc_layers > 1:
            tangent.append(("stacked ligand shells (layer_gap - 2 overlap)", g - 2 * o))
        tangent.append(("the top ligand shells and the layer above (layer_gap - overlap)", g - o))
        for what, gap in tangent:
            if abs(gap) < tol:
                raise ValueError(
                    f"nc_monolayer: {what} = {gap:.3g}: spheres must not touch tangentially; choose a "
                    f"gap or an overlap of at least {tol:.3g} (0.01 ligand) in magnitude")
    else:
        for a, keys in enumerate(lay.keys):
            coords = sorted(set(np.round(list(keys.values()), 12)))
            gaps = np.diff(coords)
            thin = gaps[(gaps > 1e-9 * s) & (gaps < 0.01 * L)]
            if thin.size:
                raise ValueError(
                    f"nc_monolayer: the faces leave a sliver {thin.min():.3g} thick along axis {a}; "
                    "change pitch, overlap or layer_gap by more than 0.01 ligand")


# --------------------------------------------------------------------- generator
def nc_monolayer(*, dim: int = 2, below=(("hil", 30.0), ("htl", 30.0)), above=(("etl", 40.0),),
                 nc_shape: str = "cube", nc_size: float = 9.0, ligand: float = 1.5,
                 overlap: float | None = None, lattice: str = "square", pitch: float | None = None,
                 n_x: int = 1, n_y: int = 1, nc_layers: int = 1, layer_gap: float = 0.0,
                 resolution: float = 1.0, h_nc: float | None = None, h_ligand: float | None = None,
                 h_layer: float | None = None, structured: bool = False, msh_path=None,
                 length_unit: str = "nm") -> Mesh:
    """NC-monolayer LED unit cell: transport layers / NC layer(s) with ligand shells / layers.

    Coordinates (x, y) in 2D, (x, y, z) in 3D; the vertical axis is the last one, 0 at the
    anode. The lateral faces are mirror planes of the NC lattice (zero-flux), so the cell
    stands for the whole film. Lengths in ``length_unit`` (nm by default).

    **Stack**, bottom to top: ``below`` ((name, thickness) pairs, e.g. PEDOT:PSS and the HTL),
    the NC layer, ``above`` (e.g. the ETL). The NC layer is a slab of thickness
    ``nc_layers * pitch_z`` filled with the region ``matrix`` (the ligand/organic matrix
    between the particles) in which sit the NC cores (region ``nc``: cubes of edge
    ``nc_size`` or spheres of diameter ``nc_size``; in 2D squares or disks, the cross-section)
    each wrapped in a ligand shell of thickness ``ligand`` (region ``ligand``; for a cube the
    shell is the cube grown by ``ligand`` on every face, edges not rounded).

    **Packing.** ``overlap`` o is how far each ligand shell is pressed into its neighbours
    and into the layers below and above (negative: a gap of |o| filled with matrix). The
    default centre distance is ``close = nc_size + 2 ligand - 2 o``:

    * cubes (default o = 0): shells of neighbours meet face to face, the bottom faces of the
      shells lie on the layer below and, with ``layer_gap = 0``, the top faces on the layer
      above. Close-packed cubes leave no matrix: the region ``matrix`` is then absent.
    * spheres (default o = ligand/4): touching spheres would meet at points (degenerate), so
      the shells are fused with their neighbours (the ligand between two cores is
      2 ligand - 2 o thick at the neck) and flattened against the layers below and above
      by o (the shell is cut by the plane). |o| < 0.01 ligand, or any other tangency, is
      rejected; o <= ligand/2.

    ``lattice``: 2D: a row of ``n_x`` NCs (cross-section of a square lattice). 3D
    ``"square"``: ``n_x`` x ``n_y`` cells of ``pitch`` x ``pitch``, one whole NC in each.
    3D ``"hexagonal"``: ``n_x`` x ``n_y`` rectangular mirror cells of ``pitch`` x
    sqrt(3) ``pitch``, NCs at the corners (quarters) and the centre: 2 NCs per cell. Default
    ``pitch`` = close; for cubes on a hexagonal lattice 2 close / sqrt(3) (the rows are then
    ``close`` apart and the shells touch across the rows, not along them). NC layers are stacked
    straight above each other (AA) ``pitch_z = close + layer_gap`` apart; ``layer_gap`` is
    the matrix between the shells of consecutive layers and above the top layer. The NCs of
    the bottom layer sit on the layer below (shell pressed into it by o).

    **Groups.** Regions: every layer name, ``nc``, ``ligand`` and ``matrix`` (if any).
    Interfaces ``"<a>_<b>"`` for every pair of touching regions, a before b in the order
    [*below, nc, ligand, matrix, *above] (e.g. ``htl_ligand``, ``nc_ligand``,
    ``ligand_matrix``, ``ligand_etl``). Outer faces: ``anode`` (bottom), ``cathode`` (top),
    ``xmin``, ``xmax`` (and ``ymin``, ``ymax`` in 3D) and their union ``mirror``.

    **Mesh size** (before ``resolution``, which divides them all): ``h_ligand`` (ligand/2:
    two elements across the shell) in and near the ligand, ``h_nc`` (nc_size/6) in the cores
    and the matrix, ``h_layer`` ((nc_size + 2 ligand)/2, at most thickness/3 per layer) in
    the bulk of the transport layers, graded from the interfaces (growth 1.3). gmsh meshes
    use the OpenCASCADE kernel and a ``fragment``, so the mesh conforms at every interface.

    ``structured=True`` (cubes only): graded tensor-product grid through every planar
    interface, each box split into Kuhn simplices (2D: 2 right triangles, 3D: 6 tetrahedra
    around the main diagonal), built with numpy. Zero negative EAFE edge weights for any box
    aspect ratio (Kuhn simplices of right-angled boxes are non-obtuse). Same group names.
    In 3D the face and body diagonals (4 of the 7 edges per node) carry weight exactly 0, which
    round-off turns into +-1e-17: a negative-weight count taken relative to the median |w|
    (itself ~0 here) flags them; relative to max |w| there are none. The gmsh meshes are not
    Delaunay across interfaces: in 2D the edges with a negative weight are flipped inside their
    surface, or split at their middle, after meshing
    (:func:`~pvsim.geometry.gmsh_tools.mend_negative_edges`), which leaves none; in 3D about
    15-25 % of the region edges have negative weight (no repair).

    **Shape parameters** (``Mesh.shape``): ``nc_size``, ``ligand``, ``overlap``,
    ``layer_gap``, one per transport layer named after the layer (its thickness) and
    ``pitch`` when a pitch is given. Each moves the nodes of the physical groups by the
    derivative of the layout the generator would build: a piecewise-linear map per axis
    between the planes of the layout (layer boundaries, cell faces, cube faces, sphere
    centres), plus, on sphere surfaces, the radial motion. So with the default pitch (which
    follows nc_size, ligand and overlap), d/d nc_size moves a cube's faces by +-1/2 about its
    centre, the centre of NC i by i + 1/2 laterally and by 1/2 vertically, the mirror faces
    x = n_x pitch by n_x, the top of the NC layer by nc_layers, and every node above it by
    nc_layers; a sphere's surface moves radially by 1/2 about its moving centre. With an
    explicit ``pitch`` the lattice stays put. A layer thickness moves every plane above the
    layer's bottom by +1 (linearly inside the layer). A parameter whose derivative is
    one-sided at the given values (it would open or close a sliver: e.g. ``layer_gap`` at 0
    for cubes, ``overlap`` at 0 for cubes, ``nc_size`` with an explicit close-packed pitch) is
    left out of ``Mesh.shape``. On ``structured`` meshes the velocities are the exact
    derivative of the node positions (fixed grid topology), interior nodes included.

    Returns the :class:`~pvsim.mesh.Mesh` in metres; ``msh_path`` also writes the ``.msh``
    (format 2.2, in ``length_unit``). OpenCASCADE works to an absolute tolerance of about 1e-7,
    so give gmsh geometries in nm (the default) or um, not in metres.
    """
    if dim not in (2, 3):
        raise ValueError(f"nc_monolayer: dim must be 2 or 3, got {dim!r}")
    if nc_shape not in ("cube", "sphere"):
        raise ValueError(f"nc_monolayer: nc_shape must be 'cube' or 'sphere', got {nc_shape!r}")
    lattice = {"hex": "hexagonal"}.get(lattice, lattice)
    if lattice not in ("square", "hexagonal"):
        raise ValueError(f"nc_monolayer: lattice must be 'square' or 'hexagonal', got {lattice!r}")
    if lattice == "hexagonal" and dim == 2:
        raise ValueError("nc_monolayer: a hexagonal lattice needs dim=3 (2D is a cross-section of a row)")
    if structured and nc_shape != "cube":
        raise ValueError("nc_monolayer: structured=True needs nc_shape='cube' (planar interfaces)")
    if length_unit not in LENGTH_UNITS:
        raise ValueError(f"nc_monolayer: length unit '{length_unit}' unknown; use one of "
                         f"{sorted(LENGTH_UNITS)}")
    below, above = _as_layers(below, "below"), _as_layers(above, "above")
    names = [n for n, _ in below + above]
    for n in names:
        if n in RESERVED or names.count(n) > 1:
            raise ValueError(f"nc_monolayer: layer name '{n}' is "
                             + ("reserved (nc, ligand, matrix)" if n in RESERVED else "used twice"))
    for name, value in [("nc_size", nc_size), ("ligand", ligand), ("resolution", resolution)]:
        if not value > 0:
            raise ValueError(f"nc_monolayer: {name} must be positive, got {value}")
    if pitch is not None and not pitch > 0:
        raise ValueError(f"nc_monolayer: pitch must be positive, got {pitch}")
    if layer_gap < 0:
        raise ValueError(f"nc_monolayer: layer_gap must be >= 0, got {layer_gap}")
    cfg = _Config(dim, nc_shape, lattice, _as_count(n_x, "n_x"), _as_count(n_y, "n_y") if dim == 3 else 1,
                  _as_count(nc_layers, "nc_layers"), tuple(n for n, _ in below), tuple(n for n, _ in above))
    if overlap is None:
        overlap = 0.25 * ligand if nc_shape == "sphere" else 0.0
    q = {"nc_size": float(nc_size), "ligand": float(ligand), "overlap": float(overlap),
         "pitch": None if pitch is None else float(pitch), "layer_gap": float(layer_gap),
         **{n: t for n, t in below + above}}
    lay = _layout(q, cfg)
    _check(q, cfg, lay)

    h = {"ligand": ligand / 2 if h_ligand is None else float(h_ligand),
         "nc": nc_size / 6 if h_nc is None else float(h_nc),
         "layer": (nc_size + 2 * ligand) / 2 if h_layer is None else float(h_layer)}
    if not all(v > 0 for v in h.values()):
        raise ValueError(f"nc_monolayer: element sizes must be positive, got {h}")
    h = {k: v / resolution for k, v in h.items()}

    if structured:
        mesh = _structured(lay, cfg, h, length_unit)
        if msh_path is not None:
            _write_msh(mesh, msh_path, length_unit)
    else:
        mesh = _gmsh(lay, cfg, h, msh_path, length_unit)
    return with_shape(mesh, _shape_parameters(mesh, q, cfg, lay, length_unit))


def _order(cfg: _Config) -> list[str]:
    return [*cfg.below, "nc", "ligand", "matrix", *cfg.above]


# ------------------------------------------------------------------------ gmsh
def _gmsh(lay: _Layout, cfg: _Config, h: dict, msh_path, length_unit: str) -> Mesh:
    d = cfg.dim
    ext = lay.extent
    cube = cfg.shape == "cube"
    top = float(ext[-1])
    # faces are told apart by their (padded) OCC bounding boxes: a tolerance well above the OCC
    # padding (~1e-7) and well below the thinnest feature (slivers < 0.01 ligand are refused)
    tol = 1e-3 * (lay.shell - lay.core)
    with gmsh_session("nc_monolayer") as gmsh:
        occ = gmsh.model.occ

        def slab_entity(z0, z1):
            if d == 2:
                return occ.addRectangle(0, z0, 0, ext[0], z1 - z0)
            return occ.addBox(0, 0, z0, ext[0], ext[1], z1 - z0)

        def particle(c, half):
            if cube:
                lo = c - half
                if d == 2:
                    return occ.addRectangle(lo[0], lo[1], 0, 2 * half, 2 * half)
                return occ.addBox(*lo, 2 * half, 2 * half, 2 * half)
            if d == 2:
                return occ.addDisk(c[0], c[1], 0, half, half)
            tag = occ.addSphere(*c, half)
            # turn the seam and the poles of the OCC sphere away from the cutting planes
            occ.rotate([(3, tag)], *c, 1.0, 2.0, 3.0, 0.7)
            return tag

        def clipped(objs):  # the part inside the NC slab (cut at the mirror faces and layers)
            out, _ = occ.intersect(objs, [(d, slab_entity(*lay.slab))])
            return [t for dd, t in out if dd == d]

        cores = clipped([(d, particle(c, lay.core)) for c in lay.centres])
        shells = [(d, particle(c, lay.shell)) for c in lay.centres]
        if len(shells) > 1:  # fused first: no lens-shaped slivers where shells overlap
            shells, _ = occ.fuse(shells[:1], shells[1:])
        shells = clipped(shells)
        kinds = [("layer", name) for name, _, _ in lay.bands] + [("slab", "matrix")]
        tags = [slab_entity(z0, z1) for _, z0, z1 in lay.bands] + [slab_entity(*lay.slab)]
        kinds += [("core", "nc")] * len(cores) + [("shell", "ligand")] * len(shells)
        dimtags = [(d, t) for t in tags + cores + shells]
        _, pieces_of = occ.fragment(dimtags[:1], dimtags[1:])
        parents: dict[int, set[int]] = {}
        for i, pieces in enumerate(pieces_of):
            for dd, t in pieces:
                if dd == d:
                    parents.setdefault(t, set()).add(i)
        regions: dict[str, list[int]] = {}
        for t, par in sorted(parents.items()):
            kind = {kinds[i][0]: kinds[i][1] for i in par}
            name = kind.get("layer") or ("nc" if "core" in kind else
                                         "ligand" if "shell" in kind else "matrix")
            regions.setdefault(name, []).append(t)
        occ.synchronize()
        regions = {n: sorted(regions[n]) for n in _order(cfg) if regions.get(n)}
        for n in [*cfg.below, "nc", "ligand", *cfg.above]:
            if n not in regions:
                raise RuntimeError(f"nc_monolayer: no {d}D entity for region '{n}'")
        add_region_groups(gmsh, d, regions, interface_order=_order(cfg))

        # outer faces: every boundary entity of the kept regions lying in a face of the cell
        used = boundary_entities(gmsh, d, [t for ts in regions.values() for t in ts])
        planes = [("anode", d - 1, 0.0), ("cathode", d - 1, top), ("xmin", 0, 0.0), ("xmax", 0, ext[0])]
        if d == 3:
            planes += [("ymin", 1, 0.0), ("ymax", 1, ext[1])]
        faces: dict[str, list[int]] = {}
        for t in sorted(used):
            box = np.array(gmsh.model.getBoundingBox(d - 1, t))
            for name, axis, value in planes:
                if abs(box[axis] - value) < tol and abs(box[axis + 3] - value) < tol:
                    faces.setdefault(name, []).append(t)
        for name, _, _ in planes:
            if name not in faces:
                raise RuntimeError(f"nc_monolayer: no face found for the group '{name}'")
            gmsh.model.addPhysicalGroup(d - 1, faces[name], name=name)
        mirror = sorted({t for n in ("xmin", "xmax", "ymin", "ymax") for t in faces.get(n, [])})
        gmsh.model.addPhysicalGroup(d - 1, mirror, name="mirror")

        # sizes: fine around the ligand, moderate in the NC layer, coarse in the bulk layers
        sizes = Sizes(gmsh, 1.0, GRADING)  # h is already divided by the resolution
        lig_faces = sorted(boundary_entities(gmsh, d, regions["ligand"]))
        sampling = max(20, int(np.ceil(np.pi * 2 * lay.shell / h["ligand"])))
        sizes.near(h["ligand"], h["layer"], **({"curves": lig_faces} if d == 2 else {"surfaces": lig_faces}),
                   sampling=sampling)
        lo = [-tol] * d
        hi = [e + tol for e in ext]
        sizes.box([*lo[:-1], lay.slab[0]], [*hi[:-1], lay.slab[1]], h["nc"], h["layer"])
        for _, z0, z1 in lay.bands:
            sizes.box([*lo[:-1], z0 - tol], [*hi[:-1], z1 + tol], min(h["layer"], (z1 - z0) / 3), h["layer"])
        sizes.apply()
        mend = (lambda g: mend_negative_edges(g, regions, axisymmetric=False)) if d == 2 else None
        return finish(gmsh, d, msh_path, length_unit, after_generate=mend)


# ------------------------------------------------------------------- structured
def _pattern(t: float, h0: float, h1: float, H: float, r: float = 1 + GRADING) -> np.ndarray:
    """Relative cell sizes filling an interval of length t: about h0 at its start and h1 at its
    end, growing by r towards H in the middle. Depends on the lengths only through integer
    counts, so the node positions are affine in the interval's ends for a fixed topology."""
    H = max(H, h0, h1)

    def levels(hend):
        return max(0, int(np.ceil(np.log(H / hend) / np.log(r) - 0.3)))

    n0, n1 = levels(h0), levels(h1)
    while True:
        ramp0 = [r ** -k for k in range(n0, 0, -1)]
        ramp1 = [r ** -k for k in range(1, n1 + 1)]
        m = t / H - sum(ramp0) - sum(ramp1)
        if m >= 0.5 or (n0 == 0 and n1 == 0):
            break
        H /= r  # too short for the whole ramps: a finer middle, one level less on each side
        n0, n1 = max(0, n0 - 1), max(0, n1 - 1)
    n_mid = max(1, int(np.floor(m + 0.5)))
    sizes = np.array(ramp0 + [1.0] * n_mid + ramp1)
    return np.concatenate([[0.0], np.cumsum(sizes)]) / sizes.sum()


def _axis_targets(lay: _Layout, cfg: _Config, h: dict, a: int, lo: float, hi: float) -> float:
    """Element size wanted between two neighbouring planes along axis a."""
    mid = 0.5 * (lo + hi)
    if a == cfg.dim - 1 and not lay.slab[0] < mid < lay.slab[1]:
        for _, z0, z1 in lay.bands:
            if z0 < mid < z1:
                return min(h["layer"], (z1 - z0) / 3)
    dist = np.abs(lay.centres[:, a] - mid)
    if np.any((dist > lay.core) & (dist < lay.shell)):
        return h["ligand"]
    return h["nc"]


def _grid(lay: _Layout, cfg: _Config, h: dict) -> list[np.ndarray]:
    """Per axis: the grid coordinates (all planes of the layout are grid lines)."""
    tol = 1e-9 * float(lay.extent.max())
    out = []
    for a, keys in enumerate(lay.keys):
        planes = np.array([np.mean([keys[lab] for lab in grp]) for grp in _merged(keys, tol)])
        targets = [_axis_targets(lay, cfg, h, a, x0, x1) for x0, x1 in zip(planes[:-1], planes[1:])]
        ends = [targets[0]] + [min(u, v) for u, v in zip(targets[:-1], targets[1:])] + [targets[-1]]
        coords = [planes[:1]]
        for i, (x0, x1) in enumerate(zip(planes[:-1], planes[1:])):
            frac = _pattern(x1 - x0, ends[i], ends[i + 1], targets[i])
            coords.append(x0 + (x1 - x0) * frac[1:])
            coords[-1][-1] = x1
        out.append(np.concatenate(coords))
    return out


def _kuhn(shape: tuple[int, ...]) -> np.ndarray:
    """(n_boxes * d!, d+1) simplices of the grid with `shape` nodes per axis (x fastest),
    each box cut around its main diagonal, all positively oriented, faces conforming."""
    d = len(shape)
    strides = np.cumprod((1,) + shape[:-1])
    corner = np.stack(np.meshgrid(*[np.arange(n - 1) for n in shape], indexing="ij"), axis=-1)
    base = (corner.reshape(-1, d) * strides).sum(axis=1)  # lowest node of every box
    simplices = []
    for perm in permutations(range(d)):
        offsets = [0]
        for axis in perm:
            offsets.append(offsets[-1] + strides[axis])
        # sign of the permutation: an odd one is mirrored, swap its first two steps back
        inversions = sum(1 for i, j in combinations(range(d), 2) if perm[i] > perm[j])
        if inversions % 2:
            offsets[1], offsets[2] = offsets[2], offsets[1]
        simplices.append(base[:, None] + np.array(offsets)[None, :])
    return np.stack(simplices, axis=1).reshape(-1, d + 1)


def _structured(lay: _Layout, cfg: _Config, h: dict, length_unit: str) -> Mesh:
    d = cfg.dim
    axes = _grid(lay, cfg, h)
    shape = tuple(len(x) for x in axes)
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)  # [i, j, (k)] -> point
    pts = pts.transpose(*range(d - 1, -1, -1), d).reshape(-1, d)  # node i + nx (j + ny k)
    cells = _kuhn(shape)
    centroid = pts[cells].mean(axis=1)
    # region of each simplex from its centroid (each box lies in one region)
    names = _order(cfg)
    region = np.full(len(cells), names.index("matrix"))
    z = centroid[:, -1]
    for name, z0, z1 in lay.bands:
        region[(z > z0) & (z < z1)] = names.index(name)
    in_slab = (z > lay.slab[0]) & (z < lay.slab[1])
    for half, name in ((lay.shell, "ligand"), (lay.core, "nc")):
        for c in lay.centres:
            inside = np.all(np.abs(centroid - c) < half, axis=1) & in_slab
            if name == "ligand":
                inside &= region != names.index("nc")
            region[inside] = names.index(name)
    regions = {n: cells[region == i] for i, n in enumerate(names) if np.any(region == i)}

    # facets: one side only -> outer face, two different regions -> interface
    local = list(combinations(range(d + 1), d))
    facets = np.sort(cells[:, local].reshape(-1, d), axis=1)
    owner = np.repeat(region, len(local))
    uniq, inv, count = np.unique(facets, axis=0, return_inverse=True, return_counts=True)
    by_facet = np.argsort(inv.ravel(), kind="stable")
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    first, second = owner[by_facet[start]], owner[by_facet[start + count - 1]]
    boundaries: dict[str, np.ndarray] = {}
    two = (count == 2) & (first != second)
    lo_r, hi_r = np.minimum(first, second), np.maximum(first, second)
    for a, b in sorted({(int(x), int(y)) for x, y in zip(lo_r[two], hi_r[two])}):
        sel = two & (lo_r == a) & (hi_r == b)
        boundaries[f"{names[a]}_{names[b]}"] = uniq[sel]
    outer = uniq[count == 1]
    xo = pts[outer]  # (F, d, d)
    tol = 1e-9 * float(lay.extent.max())
    planes = [("anode", d - 1, 0.0), ("cathode", d - 1, lay.extent[-1]), ("xmin", 0, 0.0),
              ("xmax", 0, lay.extent[0])]
    if d == 3:
        planes += [("ymin", 1, 0.0), ("ymax", 1, lay.extent[1])]
    for name, axis, value in planes:
        boundaries[name] = outer[np.all(np.abs(xo[:, :, axis] - value) < tol, axis=1)]
    boundaries["mirror"] = np.concatenate([boundaries[n] for n in ("xmin", "xmax", "ymin", "ymax")
                                           if n in boundaries])
    return from_arrays(pts, regions, boundaries, length_unit=length_unit,
                       source="nc_monolayer (structured Kuhn grid)")


def _write_msh(mesh: Mesh, path, length_unit: str) -> None:
    """The mesh as gmsh .msh 2.2 (ASCII, coordinates in length_unit), groups as physical names."""
    import meshio

    d = mesh.dim
    pts = np.zeros((mesh.n_nodes, 3))
    pts[:, :d] = mesh.points / LENGTH_UNITS[length_unit]
    top, facet = {2: ("triangle", "line"), 3: ("tetra", "triangle")}[d]
    blocks, tags, field_data = [], [], {}
    for tag, (name, cells) in enumerate([*mesh.regions.items(), *mesh.boundaries.items()], start=1):
        is_region = name in mesh.regions
        blocks.append((top if is_region else facet, cells))
        tags.append(np.full(len(cells), tag))
        field_data[name] = np.array([tag, d if is_region else d - 1])
    m = meshio.Mesh(pts, blocks, cell_data={"gmsh:physical": tags, "gmsh:geometrical": tags},
                    field_data=field_data)
    meshio.write(str(path), m, file_format="gmsh22", binary=False)


# ------------------------------------------------------------------ shape data
def _shape_parameters(mesh: Mesh, q: dict, cfg: _Config, lay: _Layout, length_unit: str):
    """One ShapeParameter per continuous parameter whose derivative is two-sided here."""
    scale = LENGTH_UNITS[length_unit]
    x = mesh.points / scale
    nodes = np.unique(np.concatenate([f.ravel() for f in mesh.boundaries.values()]))
    xn = x[nodes]
    tol = 1e-9 * float(lay.extent.max())
    names = ["nc_size", "ligand", "overlap", "layer_gap", *cfg.below, *cfg.above]
    if q["pitch"] is not None:
        names.append("pitch")
    described = {
        "nc_size": "core edge/diameter (default pitch follows it)",
        "ligand": "ligand shell thickness (default pitch follows it)",
        "overlap": "how far shells are pressed into neighbours and layers (default pitch follows it)",
        "layer_gap": "matrix gap between stacked NC layers and above the top layer",
        "pitch": "lateral lattice constant",
    }
    merged = [_merged(k, tol) for k in lay.keys]
    out = []
    for name in names:
        dp = 1e-4 * (q["nc_size"] + 2 * q["ligand"])
        plus = _layout({**q, name: q[name] + dp}, cfg)
        minus = _layout({**q, name: q[name] - dp}, cfg)
        if any(set(kp) != set(k) or set(km) != set(k) for kp, km, k in zip(plus.keys, minus.keys, lay.keys)):
            continue  # a face leaves or enters the cell: one-sided
        vel_keys = [{lab: (kp[lab] - km[lab]) / (2 * dp) for lab in k}
                    for kp, km, k in zip(plus.keys, minus.keys, lay.keys)]
        # coincident planes must move together, otherwise a sliver opens on one side
        if any(np.ptp([vk[lab] for lab in grp]) > 1e-6 for vk, grps in zip(vel_keys, merged) for grp in grps):
            continue
        v = np.zeros_like(xn)
        for a in range(cfg.dim):
            xs = np.array([lay.keys[a][grp[0]] for grp in merged[a]])
            vs = np.array([vel_keys[a][grp[0]] for grp in merged[a]])
            v[:, a] = np.interp(xn[:, a], xs, vs)
        if cfg.shape == "sphere":
            v = _sphere_correction(xn, v, lay, plus, minus, dp, cfg, tol)
        moving = np.abs(v).max(axis=1) > 1e-12
        desc = described.get(name, f"thickness of the layer '{name}'")
        out.append(ShapeParameter(name, nodes[moving], v[moving], desc))
    return out


def _sphere_correction(xn, v, lay, plus, minus, dp, cfg, tol):
    """On sphere surfaces: give every node the normal speed of each surface it lies on
    (spheres and the planes of the cell), changing v as little as possible."""
    dc = (plus.centres - minus.centres) / (2 * dp)
    speeds = {"core": (plus.core - minus.core) / (2 * dp), "shell": (plus.shell - minus.shell) / (2 * dp)}
    d = cfg.dim
    rel = 1e-7 * lay.shell
    planes = [(a, 0.0) for a in range(d - 1)] + [(a, lay.extent[a]) for a in range(d - 1)]
    zs = sorted({0.0, float(lay.extent[-1]), *lay.slab, *[z for _, z0, z1 in lay.bands for z in (z0, z1)]})
    planes += [(d - 1, z) for z in zs]
    r = np.linalg.norm(xn[:, None, :] - lay.centres[None, :, :], axis=2)  # (nodes, NCs)
    hits = {kind: np.abs(r - radius) < rel for kind, radius in (("core", lay.core), ("shell", lay.shell))}
    for i in np.flatnonzero(hits["core"].any(axis=1) | hits["shell"].any(axis=1)):
        p = xn[i]
        rows, rhs = [], []
        for kind in ("core", "shell"):
            for k in np.flatnonzero(hits[kind][i]):
                n = (p - lay.centres[k]) / r[i, k]
                rows.append(n)
                rhs.append(speeds[kind] + n @ dc[k])
        for a, value in planes:
            if abs(p[a] - value) < tol:
                n = np.zeros(d)
                n[a] = 1.0
                rows.append(n)
                rhs.append(v[i, a])
        N = np.array(rows)
        v[i] = v[i] + np.linalg.lstsq(N, np.array(rhs) - N @ v[i], rcond=None)[0]
    return v
