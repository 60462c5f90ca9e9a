"""gmsh generators of the dielectric micro-aperture LED, 2D axisymmetric and 3D: groups, exact
volumes of revolution (Pappus), conformity, element quality and size, the single-NC emitter,
the 3D body of revolution, and the shape parameters."""

import itertools
from pathlib import Path

import numpy as np
import pytest

from pvsim.geometry import mesh_quality, micro_aperture_axisym, region_measure
from pvsim.geometry.aperture import micro_aperture_3d
from pvsim.geometry.gmsh_tools import flip_negative_edges
from pvsim.mesh import read_msh

NM = 1e-9
M_PER_UNIT = {"nm": 1e-9, "um": 1e-6}
EPS = 1e-15  # m: coordinate tolerance (nodes sit exactly on the polygonal geometry)
DEFAULTS = {"opening_radius": 100.0, "outer_radius": 600.0, "htl": 40.0, "eml": 20.0, "etl": 40.0,
            "insulator": 20.0}
OUTER = {"anode", "cathode", "axis", "outer", "heatsink", "top"}
INTERFACES = {"htl_insulator", "htl_eml", "insulator_eml", "eml_etl"}


@pytest.fixture(scope="module")
def plain():
    return micro_aperture_axisym()


@pytest.fixture(scope="module")
def full():
    return micro_aperture_axisym(substrate=100.0, cathode_metal=50.0)


def revolved_volume(mesh, cells):
    """Sum of triangle area x 2 pi r_centroid: exact for straight-sided triangles (Pappus)."""
    x = mesh.points[cells]
    e1, e2 = x[:, 1] - x[:, 0], x[:, 2] - x[:, 0]
    area = 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
    return float(np.sum(area * 2 * np.pi * x[:, :, 0].mean(axis=1)))


def revolved_area(mesh, facets):
    x = mesh.points[facets]
    length = np.linalg.norm(x[:, 1] - x[:, 0], axis=1)
    return float(np.sum(length * 2 * np.pi * x[:, :, 0].mean(axis=1)))


def analytic_volumes(substrate=0.0, cathode_metal=0.0, **kw):
    p = {**DEFAULTS, **kw}
    R, r0 = p["outer_radius"] * NM, p["opening_radius"] * NM
    disk = np.pi * R**2
    hole = np.pi * r0**2 * p["insulator"] * NM
    vols = {"htl": disk * p["htl"] * NM, "etl": disk * p["etl"] * NM,
            "insulator": disk * p["insulator"] * NM - hole, "eml": disk * p["eml"] * NM + hole}
    if substrate:
        vols["substrate"] = disk * substrate * NM
    if cathode_metal:
        vols["metal"] = disk * cathode_metal * NM
    return vols


def test_groups_volumes_and_anode_area(plain):
    m = plain
    assert m.axisymmetric and m.dim == 2
    assert set(m.regions) == {"htl", "insulator", "eml", "etl"}
    assert set(m.boundaries) == OUTER | INTERFACES
    for name, vol in analytic_volumes().items():
        assert revolved_volume(m, m.regions[name]) == pytest.approx(vol, rel=1e-9), name
    R = DEFAULTS["outer_radius"] * NM
    assert revolved_area(m, m.boundaries["anode"]) == pytest.approx(np.pi * R**2, rel=1e-9)
    assert revolved_area(m, m.boundaries["cathode"]) == pytest.approx(np.pi * R**2, rel=1e-9)
    # without substrate / metal the outermost lines are the contacts themselves
    assert np.array_equal(m.boundary_nodes("heatsink"), m.boundary_nodes("anode"))
    assert np.array_equal(m.boundary_nodes("top"), m.boundary_nodes("cathode"))
    # the contacts share no node; axis / outer lie where they should
    assert not np.intersect1d(m.boundary_nodes("anode"), m.boundary_nodes("cathode")).size
    assert np.allclose(m.points[m.boundary_nodes("axis"), 0], 0.0, rtol=0, atol=EPS)
    assert np.allclose(m.points[m.boundary_nodes("outer"), 0], R, rtol=0, atol=EPS)
    assert np.allclose(m.points[m.boundary_nodes("anode"), 1], 0.0, rtol=0, atol=EPS)
    z_cat = sum(DEFAULTS[k] for k in ("htl", "insulator", "eml", "etl")) * NM
    assert np.allclose(m.points[m.boundary_nodes("cathode"), 1], z_cat, rtol=0, atol=EPS)
    height = z_cat
    axis = m.points[m.boundary_nodes("axis"), 1]
    assert axis.min() == pytest.approx(0.0, abs=EPS) and axis.max() == pytest.approx(height)


def test_conforming_interfaces(plain):
    """One node set: the nodes on each interface are the same seen from either side."""
    m = plain
    pts = m.points

    def nodes_on(region, z, rmin=-1.0, rmax=1.0):
        n = m.region_nodes(region)
        r = pts[n, 0]
        return n[np.isclose(pts[n, 1], z, rtol=0, atol=EPS) & (r >= rmin - EPS) & (r <= rmax + EPS)]

    r0 = DEFAULTS["opening_radius"] * NM
    z1 = DEFAULTS["htl"] * NM
    z2 = z1 + DEFAULTS["insulator"] * NM
    below = nodes_on("htl", z1)
    above = np.union1d(nodes_on("eml", z1), nodes_on("insulator", z1))
    assert np.array_equal(below, above) and len(below) > 10
    # the NC film touches the HTL exactly over the opening
    assert np.allclose(pts[nodes_on("eml", z1), 0].max(), r0, rtol=0, atol=EPS)
    assert np.array_equal(nodes_on("insulator", z2), nodes_on("eml", z2, rmin=r0))

    def wall(region):  # nodes on the side wall of the opening, r = r0, z1 <= z <= z2
        n = m.region_nodes(region)
        on = np.isclose(pts[n, 0], r0, rtol=0, atol=EPS) & (pts[n, 1] >= z1 - EPS) & (pts[n, 1] <= z2 + EPS)
        return n[on]

    assert np.array_equal(wall("eml"), wall("insulator")) and len(wall("eml")) >= 4


def test_quality_and_size(plain):
    q = mesh_quality(plain)
    assert q["min_angle_deg"] > 15.0
    assert q["n_nodes"] == plain.n_nodes < 5000
    # at least ~3 elements across every layer: count axis segments per layer
    z = np.sort(plain.points[plain.boundary_nodes("axis"), 1]) / NM
    edges = np.cumsum([0.0, DEFAULTS["htl"], DEFAULTS["insulator"], DEFAULTS["eml"], DEFAULTS["etl"]])
    for lo, hi in itertools.pairwise(edges):
        inside = np.sum((z >= lo - 1e-6) & (z <= hi + 1e-6))
        assert inside - 1 >= 3, (lo, hi)
    # refinement at the rim of the opening: shortest edge there well below h_max
    cells = np.concatenate(list(plain.regions.values()))
    x = plain.points[cells] / NM
    edge_len = np.linalg.norm(x - np.roll(x, 1, axis=1), axis=2).max(axis=1)
    centre = x.mean(axis=1)
    near = np.hypot(centre[:, 0] - 100.0, centre[:, 1] - 40.0) < 10.0
    far = (centre[:, 0] > 450.0) & (centre[:, 1] < 40.0)
    assert edge_len[near].max() < 10.0 and edge_len[far].mean() > 1.5 * edge_len[near].mean()


def test_substrate_and_metal(full):
    m = full
    assert set(m.regions) == {"substrate", "htl", "insulator", "eml", "etl", "metal"}
    assert set(m.boundaries) == OUTER | INTERFACES | {"substrate_htl", "etl_metal"}
    assert np.array_equal(m.boundary_nodes("substrate_htl"), m.boundary_nodes("anode"))
    for name, vol in analytic_volumes(substrate=100.0, cathode_metal=50.0).items():
        assert revolved_volume(m, m.regions[name]) == pytest.approx(vol, rel=1e-9), name
    R = DEFAULTS["outer_radius"] * NM
    for name in ("anode", "cathode", "heatsink", "top"):
        assert revolved_area(m, m.boundaries[name]) == pytest.approx(np.pi * R**2, rel=1e-9), name
    heatsink, top = m.boundary_nodes("heatsink"), m.boundary_nodes("top")
    assert np.allclose(m.points[heatsink, 1], -100.0 * NM, rtol=0, atol=EPS)
    assert np.allclose(m.points[top, 1], 170.0 * NM, rtol=0, atol=EPS)
    for a, b in [("heatsink", "anode"), ("top", "cathode"), ("anode", "cathode")]:
        assert not np.intersect1d(m.boundary_nodes(a), m.boundary_nodes(b)).size, (a, b)
    # the anode is now an interior line between substrate and htl
    anode = m.boundary_nodes("anode")
    assert np.isin(anode, m.region_nodes("substrate")).all() and np.isin(anode, m.region_nodes("htl")).all()
    assert mesh_quality(m)["min_angle_deg"] > 15.0


def test_msh_round_trip_and_example_file(tmp_path):
    m = micro_aperture_axisym(opening_radius=50.0, msh_path=tmp_path / "a.msh")
    back = read_msh(tmp_path / "a.msh", length_unit="nm", axisymmetric=True)
    assert back.n_nodes == m.n_nodes and set(back.boundaries) == set(m.boundaries)
    assert revolved_volume(back, back.regions["eml"]) == pytest.approx(
        analytic_volumes(opening_radius=50.0)["eml"], rel=1e-9)
    example = Path(__file__).resolve().parents[1] / "meshes" / "aperture_axisym.msh"
    ex = read_msh(example, length_unit="nm", axisymmetric=True)
    assert set(ex.regions) == {"substrate", "htl", "insulator", "eml", "etl"}
    assert revolved_volume(ex, ex.regions["substrate"]) == pytest.approx(
        analytic_volumes(substrate=100.0)["substrate"], rel=1e-9)


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="opening_radius"):
        micro_aperture_axisym(opening_radius=700.0)
    with pytest.raises(ValueError, match="insulator"):
        micro_aperture_axisym(insulator=0.0)
    with pytest.raises(ValueError, match="substrate"):
        micro_aperture_axisym(substrate=-1.0)


@pytest.mark.parametrize("kw", [{"insulator": 5.0}, {"eml": 5.0}, {"htl": 200.0, "etl": 200.0},
                                {"length_unit": "um", "opening_radius": 0.1, "outer_radius": 0.6,
                                 "htl": 0.04, "eml": 0.02, "etl": 0.04, "insulator": 0.02}])
def test_other_stacks_stay_well_shaped(kw):
    """Thin or thick layers next to each other: the size grading keeps the angles sane."""
    m = micro_aperture_axisym(**kw)
    q = mesh_quality(m)
    assert q["min_angle_deg"] > 20.0 and m.n_nodes < 6000
    assert set(m.boundaries) == OUTER | INTERFACES
    # no negative EAFE weight (flips, and splits on lines), and the groups still follow the
    # mesh's edges after the splits
    assert q["negative_edges"] == 0
    tri = np.concatenate(list(m.regions.values()))
    edges = {frozenset(e) for t in tri.tolist() for e in ((t[0], t[1]), (t[1], t[2]), (t[2], t[0]))}
    assert all(frozenset(f) in edges for g in m.boundaries.values() for f in g.tolist())
    R = kw.get("outer_radius", DEFAULTS["outer_radius"]) * M_PER_UNIT[kw.get("length_unit", "nm")]
    for name in ("anode", "cathode"):
        assert revolved_area(m, m.boundaries[name]) == pytest.approx(np.pi * R**2, rel=1e-9), name


# ------------------------------------------------------------------ positions and emitters
SHIPPED = {"opening_radius": 400.0, "outer_radius": 1500.0, "htl": 30.0, "substrate": 100.0}
SMALL_3D = {"opening_radius": 50.0, "outer_radius": 150.0}  # few thousand nodes in 3D


def capped_ball(radius, dist):
    """Volume of a ball whose centre lies ``dist`` from a plane, cut flat by that plane."""
    ball = 4 / 3 * np.pi * radius**3
    if dist >= radius:
        return ball
    h = radius - dist
    return ball - np.pi * h**2 * (3 * radius - h) / 3


def device_volumes(position="htl_eml", emitter="layer", nc_radius=5.0, ligand=0.0, nc_gap=1.0,
                   substrate=0.0, cathode_metal=0.0, **kw):
    """Analytic region volumes (m^3) of the axisymmetric device (its 3D body of revolution)."""
    p = {**DEFAULTS, **kw}
    R, r0 = p["outer_radius"] * NM, p["opening_radius"] * NM
    disk, hole = np.pi * R**2, np.pi * r0**2 * p["insulator"] * NM
    emit = "eml" if emitter == "layer" else "matrix"
    vols = {"htl": disk * p["htl"] * NM, "insulator": disk * p["insulator"] * NM - hole,
            emit: disk * p["eml"] * NM, "etl": disk * p["etl"] * NM}
    vols[emit if position == "htl_eml" else "etl"] += hole
    if substrate:
        vols["substrate"] = disk * substrate * NM
    if cathode_metal:
        vols["metal"] = disk * cathode_metal * NM
    if emitter == "single":
        outer, dist = (nc_radius + ligand) * NM, (nc_radius + ligand + nc_gap) * NM
        vols["nc"] = capped_ball(nc_radius * NM, dist)
        if ligand:
            vols["ligand"] = capped_ball(outer, dist) - vols["nc"]
        vols[emit] -= capped_ball(outer, dist)
    return vols


def volume_derivative(param, **kw):
    """d(volume)/d(param) per region, m^3 per m, by central differences of device_volumes."""
    value = {**DEFAULTS, "nc_radius": 5.0, "nc_gap": 1.0, "ligand": 0.0, **kw}[param]
    h = 1e-4 * abs(value)
    hi, lo = device_volumes(**{**kw, param: value + h}), device_volumes(**{**kw, param: value - h})
    return {k: (hi[k] - lo[k]) / (2 * h * NM) for k in hi}


VARIANTS = {
    "htl_eml-layer": {},
    "eml_etl-layer": {"position": "eml_etl"},
    "htl_eml-single": {"emitter": "single"},
    "htl_eml-single-ligand": {"emitter": "single", "ligand": 2.0},
    "eml_etl-single-ligand-truncated": {"emitter": "single", "position": "eml_etl", "ligand": 2.0,
                                        "nc_gap": -1.0},
}
VARIANT_INTERFACES = {
    "htl_eml-layer": INTERFACES,
    "eml_etl-layer": {"htl_eml", "eml_insulator", "eml_etl", "insulator_etl"},
    "htl_eml-single": {"htl_insulator", "htl_matrix", "insulator_matrix", "matrix_nc", "matrix_etl"},
    "htl_eml-single-ligand": {"htl_insulator", "htl_matrix", "insulator_matrix", "matrix_ligand",
                              "ligand_nc", "matrix_etl"},
    "eml_etl-single-ligand-truncated": {"htl_matrix", "matrix_ligand", "ligand_nc", "matrix_insulator",
                                        "matrix_etl", "ligand_etl", "insulator_etl"},
}


@pytest.fixture(scope="module")
def variants():
    return {name: micro_aperture_axisym(**kw) for name, kw in VARIANTS.items()}


@pytest.mark.parametrize("name", VARIANTS)
def test_variants_volumes_and_groups(variants, name):
    """Volumes of revolution against the analytic ones: exact (Pappus) for the flat layers, to
    the polygon's accuracy where a region touches the nanocrystal's circle."""
    m, kw = variants[name], VARIANTS[name]
    exact = device_volumes(**kw)
    assert set(m.regions) == set(exact)
    assert set(m.boundaries) == OUTER | VARIANT_INTERFACES[name]
    for region, vol in exact.items():
        tol = {"nc": 3e-2, "ligand": 3e-2, "matrix": 1e-4}.get(region, 1e-9)
        assert revolved_volume(m, m.regions[region]) == pytest.approx(vol, rel=tol), region
        assert region_measure(m, region) == pytest.approx(revolved_volume(m, m.regions[region]), rel=1e-12)
    q = mesh_quality(m)
    assert q["min_angle_deg"] > 25.0 and q["negative_edges"] == 0 and m.n_nodes < 3000


def test_single_nc_placement():
    """The NC sits on the axis, a gap of matrix from the anchor interface, inside the film."""
    m = micro_aperture_axisym(emitter="single", ligand=2.0, nc_gap=1.5)
    shell = m.points[m.boundary_nodes("matrix_ligand")] / NM
    z0 = DEFAULTS["htl"] + 1.5 + 7.0  # on the HTL, at the bottom of the opening
    assert np.allclose(np.hypot(shell[:, 0], shell[:, 1] - z0), 7.0, rtol=0, atol=1e-9)
    core = m.points[m.boundary_nodes("ligand_nc")] / NM
    assert np.allclose(np.hypot(core[:, 0], core[:, 1] - z0), 5.0, rtol=0, atol=1e-9)
    assert "htl_ligand" not in m.boundaries and "htl_nc" not in m.boundaries
    # truncated: a flat disk on the anchor plane, of radius sqrt(R^2 - d^2)
    m = micro_aperture_axisym(emitter="single", nc_gap=-1.0)
    flat = m.points[m.boundary_nodes("htl_nc")] / NM
    assert np.allclose(flat[:, 1], DEFAULTS["htl"], rtol=0, atol=1e-9)
    assert flat[:, 0].max() == pytest.approx(np.sqrt(5.0**2 - 4.0**2), rel=1e-9)


def test_single_nc_volume_converges_with_resolution():
    errors = []
    for res in (1.0, 2.0, 4.0):
        m = micro_aperture_axisym(emitter="single", ligand=2.0, resolution=res)
        exact = device_volumes(emitter="single", ligand=2.0)
        errors.append([abs(revolved_volume(m, m.regions[r]) / exact[r] - 1) for r in ("nc", "ligand")])
    errors = np.array(errors)
    assert np.all(errors[0] < 2e-2) and np.all(errors[1:] < errors[:-1] / 2.5)  # ~ h^2


def test_resolution_divides_sizes():
    coarse, fine = micro_aperture_axisym(), micro_aperture_axisym(resolution=2.0)
    assert 3.0 < fine.n_nodes / coarse.n_nodes < 5.0
    with pytest.raises(ValueError, match="resolution"):
        micro_aperture_axisym(resolution=0.0)


@pytest.mark.parametrize("kw", [{}, SHIPPED])
def test_default_and_shipped_meshes_have_no_negative_eafe_edge(kw):
    """The axisymmetric weights (planar cotangents x 2 pi r_centroid) are all >= 0 after the
    edge flips and splits: the finite-volume operator is an M-matrix on these meshes."""
    m = micro_aperture_axisym(**kw)
    q = mesh_quality(m)
    assert q["negative_edges"] == 0 and q["min_angle_deg"] > 30.0


def test_flip_negative_edges_fixes_a_bad_diagonal():
    """Two triangles whose shared edge faces angles adding up to more than 180 degrees."""
    pts = np.array([[1.0, 0.0], [3.0, 0.0], [2.0, 0.3], [2.0, -0.3]])
    tri = np.array([[0, 1, 2], [1, 0, 3]])
    same = np.zeros(2, int)
    new, flips = flip_negative_edges(pts, tri, same, same, axisymmetric=True)
    assert flips == 1 and {frozenset(t) for t in new.tolist()} == {frozenset({0, 2, 3}), frozenset({1, 2, 3})}
    # triangles on different surfaces (an edge on a line) stay as they are
    new, flips = flip_negative_edges(pts, tri, np.array([0, 1]), same, axisymmetric=True)
    assert flips == 0 and np.array_equal(new, tri)


def test_deterministic():
    a = micro_aperture_axisym(emitter="single", ligand=2.0)
    b = micro_aperture_axisym(emitter="single", ligand=2.0)
    assert np.array_equal(a.points, b.points)
    assert all(np.array_equal(a.regions[k], b.regions[k]) for k in a.regions)
    assert all(np.array_equal(a.boundaries[k], b.boundaries[k]) for k in a.boundaries)


def test_rejects_bad_geometry_choices():
    with pytest.raises(ValueError, match="position"):
        micro_aperture_axisym(position="eml_htl")
    with pytest.raises(ValueError, match="emitter"):
        micro_aperture_axisym(emitter="dots")
    with pytest.raises(ValueError, match="tangent"):
        micro_aperture_axisym(emitter="single", nc_gap=0.0)
    with pytest.raises(ValueError, match="fit in the opening"):
        micro_aperture_axisym(emitter="single", opening_radius=4.0)
    with pytest.raises(ValueError, match="thicken 'eml'"):
        micro_aperture_axisym(emitter="single", position="eml_etl", nc_radius=10.0)
    with pytest.raises(ValueError, match="emitter='single'"):
        micro_aperture_axisym(ligand=2.0)
    with pytest.raises(ValueError, match="outer_radius"):
        micro_aperture_3d(opening_radius=700.0)


# ----------------------------------------------------------------------- shape parameters
def boundary_facets(cells):
    """Facets of a set of simplices that belong to one simplex only, with its opposite node."""
    faces = np.concatenate([np.delete(cells, k, axis=1) for k in range(cells.shape[1])])
    opposite = np.concatenate([cells[:, k] for k in range(cells.shape[1])])
    _, inv, count = np.unique(np.sort(faces, axis=1), axis=0, return_inverse=True, return_counts=True)
    once = count[inv.ravel()] == 1
    return faces[once], opposite[once]


def predicted_volume_derivative(mesh, region, sp):
    """dV/dp of a region: the integral of velocity . outward normal over its boundary, with
    the velocity linear on each facet (exact for the moving polygon / polyhedron)."""
    v = np.zeros_like(mesh.points)
    v[sp.nodes] = sp.velocity
    faces, opposite = boundary_facets(mesh.regions[region])
    x = mesh.points[faces]
    if mesh.dim == 2:
        t = x[:, 1] - x[:, 0]
        length = np.linalg.norm(t, axis=1)
        n = np.stack([t[:, 1], -t[:, 0]], axis=1) / length[:, None]
        n *= np.sign(np.sum(n * (x[:, 0] - mesh.points[opposite]), axis=1))[:, None]
        ra, rb = x[:, 0, 0], x[:, 1, 0]
        va, vb = [np.sum(v[faces[:, k]] * n, axis=1) for k in (0, 1)]
        return float(np.sum(2 * np.pi * length * (va * (2 * ra + rb) + vb * (ra + 2 * rb)) / 6))
    normal = np.cross(x[:, 1] - x[:, 0], x[:, 2] - x[:, 0])
    area = 0.5 * np.linalg.norm(normal, axis=1)
    n = normal / (2 * area[:, None])
    n *= np.sign(np.sum(n * (x[:, 0] - mesh.points[opposite]), axis=1))[:, None]
    return float(np.sum(area / 3 * np.sum(v[faces].sum(axis=1) * n, axis=1)))


def check_shape_derivatives(m, kw, factor=1.0, flat_tol=1e-9, curved_tol=3e-2):
    """Every shape parameter predicts every region's dV/dp (analytic) to mesh accuracy."""
    names = {"htl", "insulator", "eml", "etl", "opening_radius"} | (
        {"nc_radius", "nc_gap"} | ({"ligand"} if kw.get("ligand") else set())
        if kw.get("emitter") == "single" else set())
    names |= {k for k in ("substrate", "cathode_metal") if kw.get(k)}
    assert set(m.shape) == names
    scale = np.pi * (kw.get("outer_radius", DEFAULTS["outer_radius"]) * NM) ** 2  # dV/dt of a layer
    for name, sp in m.shape.items():
        assert sp.velocity.shape == (len(sp.nodes), m.dim)
        exact = volume_derivative(name, **kw)
        for region in m.regions:
            got = factor * predicted_volume_derivative(m, region, sp)
            curved = m.dim == 3 or name in ("nc_radius", "ligand", "nc_gap")
            tol = curved_tol * abs(exact[region]) + 1e-6 * scale if curved else flat_tol * scale
            assert got == pytest.approx(exact[region], abs=tol), (name, region)


@pytest.mark.parametrize("name", VARIANTS)
def test_shape_velocities_give_the_analytic_volume_derivatives(variants, name):
    """e.g. d(insulator)/d(opening_radius) = -2 pi r0 t, d(layer)/d(thickness) = pi R^2."""
    check_shape_derivatives(variants[name], VARIANTS[name])


def test_shape_of_substrate_and_metal(full):
    """The substrate grows downward (heat sink down by 1), the metal upward (top up by 1)."""
    check_shape_derivatives(full, {"substrate": 100.0, "cathode_metal": 50.0})
    sub, metal = full.shape["substrate"], full.shape["cathode_metal"]
    v_sub = dict(zip(sub.nodes.tolist(), sub.velocity[:, 1]))
    v_metal = dict(zip(metal.nodes.tolist(), metal.velocity[:, 1]))
    assert all(v_sub[i] == -1.0 for i in full.boundary_nodes("heatsink"))
    assert not np.isin(full.boundary_nodes("anode"), sub.nodes).any()  # those that do not move
    assert all(v_metal[i] == 1.0 for i in full.boundary_nodes("top"))
    assert not np.isin(full.boundary_nodes("cathode"), metal.nodes).any()


def test_shape_nodes_and_velocities(plain):
    m, sp = plain, plain.shape["opening_radius"]
    x = m.points[sp.nodes]
    r0, z1 = DEFAULTS["opening_radius"] * NM, DEFAULTS["htl"] * NM
    z2 = z1 + DEFAULTS["insulator"] * NM
    assert np.allclose(x[:, 0], r0, rtol=0, atol=EPS) and len(sp.nodes) >= 5
    assert x[:, 1].min() == pytest.approx(z1) and x[:, 1].max() == pytest.approx(z2)
    assert np.array_equal(sp.velocity, np.tile([1.0, 0.0], (len(sp.nodes), 1)))
    assert np.isin(sp.nodes, m.region_nodes("insulator")).all()
    assert np.isin(sp.nodes, m.region_nodes("eml")).all()
    # htl thickness: cathode up by 1, anode fixed, axis nodes in the htl by the fraction below them
    sp = m.shape["htl"]
    v = dict(zip(sp.nodes.tolist(), sp.velocity[:, 1]))
    assert all(v[i] == 1.0 for i in m.boundary_nodes("cathode"))
    assert not np.isin(m.boundary_nodes("anode"), sp.nodes).any()  # only the nodes that move
    axis = m.boundary_nodes("axis")
    z = m.points[axis, 1]
    inside = z < z1
    assert np.allclose([v.get(i, 0.0) for i in axis[inside]], z[inside] / z1)
    assert np.allclose(sp.velocity[:, 0], 0.0)


def test_shape_of_the_single_nc():
    """nc_radius: the core's nodes move by n + e_z (the gap to the HTL is kept)."""
    m = micro_aperture_axisym(emitter="single")
    sp = m.shape["nc_radius"]
    centre = np.array([0.0, (DEFAULTS["htl"] + 1.0 + 5.0) * NM])
    surface = m.boundary_nodes("matrix_nc")
    assert np.isin(surface, sp.nodes).all()
    v = sp.velocity[np.searchsorted(sp.nodes, surface)]
    n = (m.points[surface] - centre) / (5.0 * NM)
    assert np.allclose(v, n + [0.0, 1.0], atol=1e-9)
    # and the bottom of the NC (closest to the HTL) does not move
    bottom = surface[np.argmin(m.points[surface, 1])]
    assert np.allclose(sp.velocity[np.searchsorted(sp.nodes, bottom)], 0.0, atol=1e-9)


# ---------------------------------------------------------------------------------- 3D
VARIANTS_3D = {
    "htl_eml-layer": {**SMALL_3D},
    "eml_etl-single-ligand-truncated": {**SMALL_3D, "emitter": "single", "position": "eml_etl",
                                        "ligand": 2.0, "nc_gap": -1.0, "resolution": 0.7},
}


@pytest.fixture(scope="module")
def meshes_3d():
    return {name: micro_aperture_3d(**kw) for name, kw in VARIANTS_3D.items()}


@pytest.mark.parametrize("name", VARIANTS_3D)
def test_3d_is_the_body_of_revolution(meshes_3d, name):
    """Region by region: 4 x the quarter cylinder's volume = the axisymmetric volume of
    revolution = the analytic volume, to the accuracy of the polygonal circles and spheres."""
    m, kw = meshes_3d[name], VARIANTS_3D[name]
    axi = micro_aperture_axisym(**{k: v for k, v in kw.items() if k != "resolution"})
    exact = device_volumes(**kw)
    assert m.dim == 3 and not m.axisymmetric and set(m.regions) == set(axi.regions) == set(exact)
    interfaces = {k for k in axi.boundaries if k not in OUTER}
    assert set(m.boundaries) == interfaces | {"anode", "cathode", "heatsink", "top", "outer", "mirror_x",
                                              "mirror_y", "mirror"}
    for region, vol in exact.items():
        tol = 5e-2 if region in ("nc", "ligand") else 5e-3
        assert 4 * region_measure(m, region) == pytest.approx(region_measure(axi, region), rel=tol), region
        assert 4 * region_measure(m, region) == pytest.approx(vol, rel=tol), region
    p = m.points / NM
    R = kw["outer_radius"]
    assert np.allclose(np.hypot(p[m.boundary_nodes("outer"), 0], p[m.boundary_nodes("outer"), 1]), R)
    assert np.allclose(p[m.boundary_nodes("mirror_x"), 0], 0.0, atol=1e-9)
    assert np.allclose(p[m.boundary_nodes("mirror_y"), 1], 0.0, atol=1e-9)
    assert np.allclose(p[m.boundary_nodes("anode"), 2], 0.0, atol=1e-9)
    q = mesh_quality(m)
    assert q["min_angle_deg"] > 5.0 and m.n_nodes < 8000
    # fine at the rim of the opening (the wall and its circles), coarse away from it
    cells = np.concatenate(list(m.regions.values()))
    x = m.points[cells] / NM
    longest = np.max([np.linalg.norm(x[:, i] - x[:, j], axis=1) for i in range(4) for j in range(i)], axis=0)
    c = x.mean(axis=1)
    r0, (z1, z2) = kw["opening_radius"], (DEFAULTS["htl"], DEFAULTS["htl"] + DEFAULTS["insulator"])
    if kw.get("position") == "eml_etl":
        z1, z2 = z1 + DEFAULTS["eml"], z2 + DEFAULTS["eml"]
    dz = np.maximum(np.abs(c[:, 2] - 0.5 * (z1 + z2)) - 0.5 * (z2 - z1), 0.0)
    rim = np.hypot(np.hypot(c[:, 0], c[:, 1]) - r0, dz)
    assert longest[rim < 5].mean() < 0.7 * longest[rim > 60].mean()


@pytest.mark.parametrize("name", VARIANTS_3D)
def test_3d_shape_velocities(meshes_3d, name):
    m = meshes_3d[name]
    check_shape_derivatives(m, VARIANTS_3D[name], factor=4.0, curved_tol=3e-2 if "single" not in name
                            else 1.5e-1)
    sp = m.shape["opening_radius"]
    x = m.points[sp.nodes]
    r = np.hypot(x[:, 0], x[:, 1])
    assert np.allclose(r, SMALL_3D["opening_radius"] * NM, rtol=1e-9)
    assert np.allclose(sp.velocity, np.stack([x[:, 0] / r, x[:, 1] / r, 0 * r], axis=1))


def test_3d_full_cylinder_and_determinism():
    kw = {**SMALL_3D, "quarter": False, "resolution": 0.5}
    a, b = micro_aperture_3d(**kw), micro_aperture_3d(**kw)
    assert np.array_equal(a.points, b.points)
    assert all(np.array_equal(a.regions[k], b.regions[k]) for k in a.regions)
    assert "mirror_x" not in a.boundaries and {"outer", "anode", "cathode"} <= set(a.boundaries)
    exact = device_volumes(**SMALL_3D)
    for region, vol in exact.items():
        assert region_measure(a, region) == pytest.approx(vol, rel=1e-2), region
