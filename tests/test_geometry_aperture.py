"""gmsh generator of the 2D-axisymmetric dielectric micro-aperture LED: groups, exact volumes
of revolution (Pappus), conformity, element quality and size."""

import itertools
from pathlib import Path

import numpy as np
import pytest

from pvsim.geometry import mesh_quality, micro_aperture_axisym
from pvsim.mesh import read_msh

NM = 1e-9
EPS = 1e-15  # m: coordinate tolerance (nodes sit exactly on the polygonal geometry)
DEFAULTS = {"opening_radius": 100.0, "outer_radius": 600.0, "htl": 40.0, "eml": 20.0, "etl": 40.0,
            "insulator": 20.0}


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
    assert set(m.boundaries) == {"anode", "cathode", "axis", "outer", "heatsink", "top"}
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
    assert set(m.boundaries) == {"anode", "cathode", "axis", "outer", "heatsink", "top"}
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
    assert mesh_quality(m)["min_angle_deg"] > 20.0 and m.n_nodes < 6000
    assert set(m.boundaries) == {"anode", "cathode", "axis", "outer", "heatsink", "top"}
