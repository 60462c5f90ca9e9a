"""NC-monolayer unit cells (pvsim.geometry.monolayer): analytic areas and volumes, groups,
conformity, determinism, Kuhn meshes without negative EAFE weights, shape velocities against
finite differences, quality figures of the gmsh meshes."""

import logging
from itertools import combinations

import numpy as np
import pytest

from pvsim.discretize import element_geometry
from pvsim.geometry import mesh_quality, region_measure
from pvsim.geometry.monolayer import nc_monolayer
from pvsim.mesh import read_msh

NM = 1e-9
D, L = 9.0, 1.5  # default core size and ligand thickness
S = D + 2 * L
LAYERS = {"hil": 30.0, "htl": 30.0, "etl": 40.0}
CUBE_GROUPS_2D = {"anode", "cathode", "xmin", "xmax", "mirror", "hil_htl", "htl_ligand", "nc_ligand",
                  "ligand_etl"}


@pytest.fixture(autouse=True)
def quiet_eafe_warning():
    """mesh_quality logs the negative-weight warning of gmsh 3D meshes; the counts are asserted."""
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


def measure(m, region):
    return region_measure(m, region) / NM ** m.dim


def measures(m):
    return {r: measure(m, r) for r in m.regions}


# ----------------------------------------------------------------- analytic sphere packing
def segment(a, h, dim):
    """Area (2D) or volume (3D) of the part of a disk/ball of radius a beyond a chord at depth h."""
    if h <= 0:
        return 0.0
    if dim == 2:
        return a * a * np.arccos((a - h) / a) - (a - h) * np.sqrt(2 * a * h - h * h)
    return np.pi * h * h * (3 * a - h) / 3


def sphere_union(dim, pitch, overlap, layer_gap=0.0, nc_layers=1, lateral_neighbours=None):
    """Ligand+core area/volume of one NC of each layer, summed over the layers: the ball of radius
    a = D/2 + L less the caps beyond the mid-planes to its neighbours and the flattened contacts."""
    a = S / 2
    neighbours = lateral_neighbours or (2 if dim == 2 else 4)
    ball = np.pi * a * a if dim == 2 else 4 / 3 * np.pi * a ** 3
    pz = S - 2 * overlap + layer_gap
    total = 0.0
    for k in range(nc_layers):
        cut = neighbours * segment(a, a - pitch / 2, dim)
        cut += segment(a, overlap, dim) if k == 0 else segment(a, a - pz / 2, dim)
        cut += segment(a, overlap - layer_gap, dim) if k == nc_layers - 1 else segment(a, a - pz / 2, dim)
        total += ball - cut
    return total


def core(dim):
    return np.pi * D * D / 4 if dim == 2 else np.pi * D ** 3 / 6


# ------------------------------------------------------------------------- helpers
def region_weights(m):
    """EAFE weight of every region edge, summed over the region's elements (as discretize does)."""
    out = []
    pairs = list(combinations(range(m.dim + 1), 2))
    for cells in m.regions.values():
        w, _ = element_geometry(m.points[cells] / NM, xp=np)
        a = cells[:, [p[0] for p in pairs]].ravel()
        b = cells[:, [p[1] for p in pairs]].ravel()
        key = np.minimum(a, b) * m.n_nodes + np.maximum(a, b)
        uniq, inv = np.unique(key, return_inverse=True)
        out.append(np.bincount(inv.ravel(), weights=w.ravel(), minlength=len(uniq)))
    return np.concatenate(out)


def nodes_on(m, region, axis, value, tol=1e-6):
    n = m.region_nodes(region)
    return n[np.abs(m.points[n, axis] / NM - value) < tol]


# ------------------------------------------------------------------ structured (exact)
def test_structured_2d_default_exact():
    m = nc_monolayer(structured=True)
    assert m.dim == 2 and set(m.regions) == {"hil", "htl", "nc", "ligand", "etl"}  # close packed: no matrix
    assert set(m.boundaries) == CUBE_GROUPS_2D
    got = measures(m)
    want = {"hil": 30 * S, "htl": 30 * S, "etl": 40 * S, "nc": D * D, "ligand": S * S - D * D}
    for r, v in want.items():
        assert got[r] == pytest.approx(v, rel=1e-12), r
    top = sum(LAYERS.values()) + S
    assert np.allclose(m.points[m.boundary_nodes("cathode"), 1] / NM, top)
    assert np.allclose(m.points[m.boundary_nodes("anode"), 1], 0.0)
    assert np.array_equal(m.boundary_nodes("mirror"),
                          np.union1d(m.boundary_nodes("xmin"), m.boundary_nodes("xmax")))
    # at least two elements across the ligand shell: grid lines inside it
    x = np.unique(m.points[:, 0] / NM)
    assert np.sum((x > 0) & (x < L)) >= 1 and np.sum((x > D + L) & (x < S)) >= 1


def test_structured_3d_square_two_layers_exact():
    pitch, gap = 14.0, 1.0
    m = nc_monolayer(dim=3, structured=True, n_x=2, pitch=pitch, nc_layers=2, layer_gap=gap, resolution=0.5)
    assert set(m.regions) == {"hil", "htl", "nc", "ligand", "matrix", "etl"}
    assert {"htl_ligand", "htl_matrix", "nc_ligand", "ligand_matrix", "matrix_etl", "ymin",
            "ymax"} <= set(m.boundaries)
    assert "ligand_etl" not in m.boundaries  # layer_gap: matrix above the top shells
    area = 2 * pitch * pitch
    slab = 2 * (S + gap) * area
    got = measures(m)
    n = 4  # 2 x 1 cells, 2 layers
    for r, v in {"hil": 30 * area, "htl": 30 * area, "etl": 40 * area, "nc": n * D ** 3,
                 "ligand": n * (S ** 3 - D ** 3), "matrix": slab - n * S ** 3}.items():
        assert got[r] == pytest.approx(v, rel=1e-12), r


def test_structured_hexagonal_cell_holds_two_ncs():
    m = nc_monolayer(dim=3, structured=True, lattice="hexagonal", resolution=0.5)
    p = 2 * S / np.sqrt(3)  # default: rows S apart, shells touching across the rows
    box = np.ptp(m.points, axis=0) / NM
    assert box[0] == pytest.approx(p) and box[1] == pytest.approx(np.sqrt(3) * p)
    got = measures(m)
    assert got["nc"] == pytest.approx(2 * D ** 3, rel=1e-12)
    assert got["ligand"] == pytest.approx(2 * (S ** 3 - D ** 3), rel=1e-12)
    assert got["matrix"] == pytest.approx(S * np.sqrt(3) * p * p - 2 * S ** 3, rel=1e-12)
    # two cells side by side: twice everything
    m2 = nc_monolayer(dim=3, structured=True, lattice="hexagonal", resolution=0.5, n_x=2)
    assert measure(m2, "nc") == pytest.approx(4 * D ** 3, rel=1e-12)


# ----------------------------------------------------------------- gmsh versus analytic
def test_gmsh_cubes_exact_and_named_like_structured():
    for dim, kw in [(2, {}), (2, {"n_x": 2, "pitch": 13.0, "nc_layers": 2, "layer_gap": 0.8}),
                    (3, {"resolution": 0.5})]:
        g = nc_monolayer(dim=dim, **kw)
        s = nc_monolayer(dim=dim, structured=True, **kw)
        assert set(g.regions) == set(s.regions) and set(g.boundaries) == set(s.boundaries), kw
        mg, ms = measures(g), measures(s)
        for r in ms:
            assert mg[r] == pytest.approx(ms[r], rel=1e-9), (dim, kw, r)


def test_ligand_resolved_and_units():
    """Two elements across the ligand by default; the same cell in um is the same mesh in metres."""
    m = nc_monolayer()
    x = m.points[m.region_nodes("ligand"), 0] / NM
    assert np.any((x > 0.2 * L) & (x < 0.8 * L))  # nodes inside the 1.5 nm side walls of the shell
    kw = {"below": (("htl", 30.0),), "above": (("etl", 40.0),)}
    um = {"length_unit": "um", "nc_size": D * 1e-3, "ligand": L * 1e-3, "below": (("htl", 0.03),),
          "above": (("etl", 0.04),)}
    for structured in (False, True):
        a, b = nc_monolayer(structured=structured, **kw), nc_monolayer(structured=structured, **um)
        for r in a.regions:
            assert region_measure(b, r) == pytest.approx(region_measure(a, r), rel=1e-9), r
        assert set(a.boundaries) == set(b.boundaries) and set(a.shape) == set(b.shape)


def test_gmsh_spheres_2d_areas_converge_like_h2():
    errors = []
    for res in (1.0, 2.0, 4.0):
        m = nc_monolayer(nc_shape="sphere", resolution=res)
        got = measures(m)
        p = S - 2 * 0.25 * L
        union = sphere_union(2, p, 0.25 * L)
        slab = p * p
        for r, v in {"hil": 30 * p, "htl": 30 * p, "etl": 40 * p}.items():
            assert got[r] == pytest.approx(v, rel=1e-9), r
        assert got["nc"] + got["ligand"] + got["matrix"] == pytest.approx(slab, rel=1e-9)
        errors.append([abs(got["nc"] - core(2)) / core(2),
                       abs(got["nc"] + got["ligand"] - union) / union])
    errors = np.array(errors)
    assert errors[-1].max() < 2e-3
    # polygons inscribed in circles: the area error falls like h^2 (factor 4 per halving of h)
    assert np.all(errors[:-1] / errors[1:] > 2.8), errors


def test_gmsh_spheres_2d_stacked_layers_and_gap():
    m = nc_monolayer(nc_shape="sphere", nc_layers=2, layer_gap=0.2, n_x=2, resolution=2.0)
    o, p = 0.25 * L, S - 0.5 * L
    got = measures(m)
    union = 2 * sphere_union(2, p, o, layer_gap=0.2, nc_layers=2)
    assert got["nc"] == pytest.approx(4 * core(2), rel=3e-3)
    assert got["nc"] + got["ligand"] == pytest.approx(union, rel=3e-3)
    assert sum(got[r] for r in ("nc", "ligand", "matrix")) == pytest.approx(2 * p * 2 * (S - 2 * o + 0.2))
    # a gap instead of an overlap: the shells float in the matrix
    m = nc_monolayer(nc_shape="sphere", overlap=-0.3, resolution=2.0)
    assert "htl_ligand" not in m.boundaries and "htl_matrix" in m.boundaries
    assert measure(m, "nc") + measure(m, "ligand") == pytest.approx(np.pi * S * S / 4, rel=3e-3)


def test_gmsh_spheres_3d_square_and_hexagonal():
    o = 0.25 * L
    p = S - 2 * o
    m = nc_monolayer(dim=3, nc_shape="sphere", resolution=0.5)
    assert set(m.regions) == {"hil", "htl", "nc", "ligand", "matrix", "etl"}
    assert {"htl_ligand", "htl_matrix", "nc_ligand", "ligand_matrix", "ligand_etl", "matrix_etl", "xmin",
            "xmax", "ymin", "ymax", "mirror", "anode", "cathode"} <= set(m.boundaries)
    got = measures(m)
    assert got["htl"] == pytest.approx(30 * p * p, rel=1e-9)
    assert got["nc"] + got["ligand"] + got["matrix"] == pytest.approx(p ** 3, rel=1e-9)
    assert got["nc"] == pytest.approx(core(3), rel=0.05)  # coarse: ~4 elements per core radius
    assert got["nc"] + got["ligand"] == pytest.approx(sphere_union(3, p, o), rel=0.03)

    h = nc_monolayer(dim=3, nc_shape="sphere", lattice="hexagonal", resolution=0.5)
    got = measures(h)
    assert got["nc"] == pytest.approx(2 * core(3), rel=0.05)  # 4 quarters + 1 whole
    assert got["nc"] + got["ligand"] == pytest.approx(2 * sphere_union(3, p, o, lateral_neighbours=6),
                                                      rel=0.03)
    assert got["nc"] + got["ligand"] + got["matrix"] == pytest.approx(np.sqrt(3) * p * p * p, rel=1e-9)


@pytest.mark.slow
def test_gmsh_spheres_3d_volume_converges():
    errors = []
    for res in (0.5, 1.0, 2.0):
        m = nc_monolayer(dim=3, nc_shape="sphere", resolution=res)
        errors.append(abs(measure(m, "nc") - core(3)) / core(3))
    print("3D sphere core volume error at resolution 0.5, 1, 2:", errors)
    assert errors[0] / errors[1] > 2.5 and errors[1] / errors[2] > 2.5


# ------------------------------------------------------------- conformity, determinism
def test_interfaces_conform_and_mirror_faces():
    m = nc_monolayer(nc_shape="sphere", n_x=2)
    z = LAYERS["hil"] + LAYERS["htl"]
    below = nodes_on(m, "htl", 1, z)
    above = np.union1d(nodes_on(m, "ligand", 1, z), nodes_on(m, "matrix", 1, z))
    assert np.array_equal(below, above) and len(below) > 10
    for name, value in (("xmin", 0.0), ("xmax", 2 * (S - 0.5 * L))):
        assert np.allclose(m.points[m.boundary_nodes(name), 0] / NM, value, atol=1e-9)
    # the core surface is one closed curve shared by nc and ligand
    ring = m.boundary_nodes("nc_ligand")
    assert np.array_equal(np.intersect1d(m.region_nodes("nc"), m.region_nodes("ligand")), ring)


def test_deterministic():
    for kw in [{"nc_shape": "sphere"}, {"dim": 3, "resolution": 0.5}, {"dim": 3, "structured": True,
                                                                         "resolution": 0.5}]:
        a, b = nc_monolayer(**kw), nc_monolayer(**kw)
        assert np.array_equal(a.points, b.points), kw
        for r in a.regions:
            assert np.array_equal(a.regions[r], b.regions[r]), (kw, r)
        for g in a.boundaries:
            assert np.array_equal(a.boundaries[g], b.boundaries[g]), (kw, g)


def test_msh_round_trip(tmp_path):
    for kw in [{"structured": True, "dim": 3, "resolution": 0.5}, {"nc_shape": "sphere"}]:
        path = tmp_path / "cell.msh"
        m = nc_monolayer(msh_path=path, **kw)
        back = read_msh(path, length_unit="nm")
        assert back.n_nodes == m.n_nodes
        assert set(back.regions) == set(m.regions) and set(back.boundaries) == set(m.boundaries)
        for r in m.regions:
            assert measure(back, r) == pytest.approx(measure(m, r), rel=1e-9), r
        for g in m.boundaries:
            assert len(back.boundaries[g]) == len(m.boundaries[g]), g


# ------------------------------------------------------------------------ EAFE signs
@pytest.mark.parametrize("kw", [{}, {"h_layer": 20.0, "h_ligand": 0.3}, {"n_x": 2, "pitch": 12.5}])
def test_kuhn_meshes_have_no_negative_weights(kw):
    m2 = nc_monolayer(structured=True, **kw)
    assert mesh_quality(m2)["negative_edges"] == 0
    w = region_weights(m2)
    assert w.min() >= -1e-12 * w.max()
    m3 = nc_monolayer(dim=3, structured=True, resolution=0.5, **kw)
    w = region_weights(m3)
    # Kuhn tetrahedra of right-angled boxes are non-obtuse: every weight >= 0. The face and body
    # diagonals (4 of the 7 edges per node) have weight exactly 0, so they come out as +-1e-17
    # round-off: negative only at the round-off level, whatever the box aspect ratio.
    assert w.min() >= -1e-12 * w.max()
    zero = np.abs(w) < 1e-12 * w.max()
    assert zero.mean() > 0.5  # most edges are exact zeros: a median-relative round-off test misfires
    assert mesh_quality(m3)["negative_edges"] == 0


def test_quality_figures(capsys):
    rows = {}
    for label, kw in [("2D cube gmsh", {}), ("2D cube Kuhn", {"structured": True}),
                      ("2D sphere gmsh", {"nc_shape": "sphere"}),
                      ("3D cube gmsh r=0.5", {"dim": 3, "resolution": 0.5}),
                      ("3D cube Kuhn r=0.5", {"dim": 3, "structured": True, "resolution": 0.5}),
                      ("3D sphere gmsh r=0.5", {"dim": 3, "nc_shape": "sphere", "resolution": 0.5})]:
        m = nc_monolayer(**kw)
        q = mesh_quality(m)
        rows[label] = q
        with capsys.disabled():
            print(f"\n{label:22s} nodes {q['n_nodes']:6d}  elements {q['n_elements']:6d}  "
                  f"min angle {q['min_angle_deg']:5.1f}  negative EAFE edges {q['negative_edges']}"
                  f" (worst {q['worst_negative_edge']:.3g})", end="")
    assert rows["2D cube gmsh"]["min_angle_deg"] > 25 and rows["2D sphere gmsh"]["min_angle_deg"] > 15
    # 2D gmsh meshes: negative edges flipped or split after meshing (mend_negative_edges)
    assert rows["2D cube gmsh"]["negative_edges"] == 0 and rows["2D sphere gmsh"]["negative_edges"] == 0
    assert rows["2D cube Kuhn"]["negative_edges"] == 0 and rows["3D cube Kuhn r=0.5"]["negative_edges"] == 0
    assert rows["3D cube gmsh r=0.5"]["min_angle_deg"] > 5
    assert rows["3D sphere gmsh r=0.5"]["min_angle_deg"] > 2
    assert all(q["n_nodes"] < 4000 for q in rows.values())


# --------------------------------------------------------------------- shape velocities
def _bumped(kw, name, delta):
    kw = dict(kw)
    below = dict(kw.get("below", (("hil", 30.0), ("htl", 30.0))))
    above = dict(kw.get("above", (("etl", 40.0),)))
    if name in below or name in above:
        (below if name in below else above)[name] += delta
        kw["below"], kw["above"] = tuple(below.items()), tuple(above.items())
    else:
        defaults = {"nc_size": D, "ligand": L, "layer_gap": 0.0,
                    "overlap": 0.25 * L if kw.get("nc_shape") == "sphere" else 0.0}
        kw[name] = kw.get(name, defaults.get(name)) + delta
    return kw


@pytest.mark.parametrize("kw, expected", [
    ({}, {"nc_size", "ligand", "hil", "htl", "etl"}),
    ({"dim": 3, "resolution": 0.5}, {"nc_size", "ligand", "hil", "htl", "etl"}),
    ({"dim": 3, "resolution": 0.5, "lattice": "hexagonal", "overlap": -0.4, "nc_layers": 2, "layer_gap": 1.0},
     {"nc_size", "ligand", "overlap", "layer_gap", "hil", "htl", "etl"}),
    ({"n_x": 2, "pitch": 14.0, "nc_layers": 2, "layer_gap": 1.0},
     {"nc_size", "ligand", "pitch", "layer_gap", "hil", "htl", "etl"}),
])
def test_shape_velocities_match_finite_differences(kw, expected):
    m0 = nc_monolayer(structured=True, **kw)
    assert set(m0.shape) == expected  # one-sided parameters (touching faces) are left out
    listed_boundary = np.unique(np.concatenate([f.ravel() for f in m0.boundaries.values()]))
    delta = 1e-5
    for name, sp in m0.shape.items():
        m1 = nc_monolayer(structured=True, **_bumped(kw, name, delta))
        assert m1.n_nodes == m0.n_nodes
        assert all(np.array_equal(m1.regions[r], m0.regions[r]) for r in m0.regions)
        fd = (m1.points - m0.points) / NM / delta
        assert np.abs(fd[sp.nodes] - sp.velocity).max() < 1e-6, name
        rest = np.setdiff1d(listed_boundary, sp.nodes)
        assert np.abs(fd[rest]).max(initial=0.0) < 1e-6, name  # the others do not move


def test_shape_semantics_of_a_cube():
    """d/d nc_size with the default (following) pitch: faces +-1/2 about a centre that moves by 1/2."""
    m = nc_monolayer(structured=True)
    sp = m.shape["nc_size"]
    x = m.points[sp.nodes] / NM
    v = dict(zip(map(int, sp.nodes), sp.velocity))
    z0 = LAYERS["hil"] + LAYERS["htl"]
    for node, (xx, zz) in zip(sp.nodes, x):
        if np.isclose(xx, L) and z0 + L <= zz <= z0 + L + D:  # left face of the core
            assert v[int(node)][0] == pytest.approx(0.5 - 0.5)
        if np.isclose(xx, L + D) and z0 + L <= zz <= z0 + L + D:  # right face
            assert v[int(node)][0] == pytest.approx(0.5 + 0.5)
        if np.isclose(zz, z0 + L + D) and L <= xx <= L + D:  # top face
            assert v[int(node)][1] == pytest.approx(1.0)
        if zz > z0 + S - 1e-9:  # the top of the NC layer and everything above: + nc_layers
            assert v[int(node)][1] == pytest.approx(1.0)
    assert np.all(m.points[np.setdiff1d(m.boundary_nodes("anode"), sp.nodes), 1] == 0)
    # a layer thickness moves everything above its bottom by +1
    t = m.shape["htl"]
    assert np.allclose(t.velocity[:, 0], 0) and np.all(m.points[t.nodes, 1] / NM >= LAYERS["hil"] - 1e-9)
    above = m.points[t.nodes, 1] / NM >= z0 - 1e-9
    assert np.allclose(t.velocity[above, 1], 1.0)


@pytest.mark.parametrize("dim", [2, 3])
def test_sphere_velocities_keep_nodes_on_the_moved_spheres(dim):
    kw = {"dim": dim, "nc_shape": "sphere", "resolution": 0.5 if dim == 3 else 1.0}
    m = nc_monolayer(**kw)
    o = 0.25 * L
    x0 = m.points / NM
    for name in ("nc_size", "ligand", "overlap"):
        sp = m.shape[name]
        residual = []
        for delta in (1e-3, 5e-4):
            q = _bumped(kw, name, delta)
            Dn, Ln, on = q.get("nc_size", D), q.get("ligand", L), q.get("overlap", o)
            pn = Dn + 2 * Ln - 2 * on
            zc = 60.0 - on + Dn / 2 + Ln
            centre = np.array([pn / 2] * (dim - 1) + [zc])
            ring = np.intersect1d(sp.nodes, m.boundary_nodes("nc_ligand"))
            idx = np.searchsorted(sp.nodes, ring)
            moved = x0[ring] + delta * sp.velocity[idx]
            residual.append(np.abs(np.linalg.norm(moved - centre, axis=1) - Dn / 2).max())
            # the mirror face moves with the pitch, the anode stays
            xmax = np.intersect1d(sp.nodes, m.boundary_nodes("xmax"))
            assert np.allclose(x0[xmax, 0] + delta * sp.velocity[np.searchsorted(sp.nodes, xmax), 0], pn)
        assert len(ring) > 10
        # first order: what is left is second order in delta (or round-off for a purely radial motion)
        assert residual[0] < 1e-5 and (residual[1] < residual[0] / 3 or residual[0] < 1e-11), (name, residual)


# ----------------------------------------------------------------------------- inputs
@pytest.mark.parametrize("kw, match", [
    ({"lattice": "hexagonal"}, "dim=3"),
    ({"structured": True, "nc_shape": "sphere"}, "cube"),
    ({"nc_shape": "sphere", "overlap": 0.0}, "tangent"),
    ({"nc_shape": "sphere", "pitch": 12.0}, "tangent"),
    ({"pitch": 10.0}, "overlap"),
    ({"overlap": 1.0}, "ligand/2"),
    ({"below": (("ligand", 10.0),)}, "reserved"),
    ({"below": (("htl", 10.0),), "above": (("htl", 10.0),)}, "twice"),
    ({"below": (("htl", 0.0),)}, "positive"),
    ({"pitch": 12.001}, "sliver"),
    ({"n_x": 0}, "n_x"),
    ({"nc_shape": "rod"}, "nc_shape"),
])
def test_rejects_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        nc_monolayer(**kw)
