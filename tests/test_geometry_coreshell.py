"""gmsh generators of a core/shell NC in an LED stack and alone in a medium: groups, volumes
against the analytic solids (and their h^2 convergence), the axisymmetric volume of
revolution against the 3D mesh of the same device, element quality, determinism, and the
shape velocities against the analytic geometry and the analytic volume derivatives."""

from itertools import combinations

import numpy as np
import pytest

from pvsim.geometry import mesh_quality, region_measure
from pvsim.geometry.coreshell import core_shell_led, core_shell_particle
from pvsim.mesh import read_msh

NM = 1e-9
LED = {"core_radius": 4.5, "shell": 2.0, "ligand": 0.0, "contact_depth": 0.5,
       "below": (("htl", 30.0),), "above": (("etl", 40.0),)}
# a second stack: ligand shell, two layers below, and a cell radius given explicitly
LED_B = {"core_radius": 3.5, "shell": 1.5, "ligand": 1.2, "contact_depth": 0.4,
         "below": (("pedot", 12.0), ("htl", 15.0)), "above": (("etl", 20.0),), "cell_radius": 10.0}


# ------------------------------------------------------------------ analytic geometry
def layout(core_radius, shell, ligand, contact_depth, below, above, cell_radius=None,
           core_shape="sphere"):
    """Radii, planes and centre of the device the generator documents (nm)."""
    radii = [("core", core_radius), ("shell", core_radius + shell)]
    if ligand > 0:
        radii.append(("ligand", core_radius + shell + ligand))
    R, c = radii[-1][1], contact_depth
    T = 2 * (R - c)
    stack = list(below) + [("matrix", T)] + list(above)
    planes = np.concatenate([[0.0], np.cumsum([t for _, t in stack])])
    z_b = planes[len(below)]
    if cell_radius is None:
        cell_radius = R * (1.5 if core_shape == "sphere" else np.sqrt(2) + 0.5)
    return {"radii": radii, "R": R, "c": c, "T": T, "stack": stack, "planes": planes,
            "z_b": z_b, "z_t": z_b + T, "zc": z_b + R - c, "Rc": cell_radius, "shape": core_shape}


def ball(r):
    return 4 / 3 * np.pi * r**3


def cap(r, h):
    """Volume of a spherical cap of height h cut from a ball of radius r."""
    return np.pi * h**2 * (3 * r - h) / 3


def led_volumes(g):
    """Exact region volumes (nm^3) of the LED cell."""
    solid = ball if g["shape"] == "sphere" else (lambda r: (2 * r) ** 3)
    vols, inner = {}, 0.0
    for name, r in g["radii"][:-1]:
        vols[name] = solid(r) - inner
        inner = solid(r)
    name, R = g["radii"][-1]
    if g["shape"] == "sphere":
        particle = ball(R) - 2 * cap(R, g["c"])
    else:
        particle = (2 * R) ** 2 * g["T"]
    vols[name] = particle - inner
    disc = np.pi * g["Rc"] ** 2
    vols["matrix"] = disc * g["T"] - particle
    for layer, t in g["stack"]:
        if layer != "matrix":
            vols[layer] = disc * t
    return vols


def particle_volumes(radii, medium_radius, shape="sphere"):
    solid = ball if shape == "sphere" else (lambda r: (2 * r) ** 3)
    vols, inner = {}, 0.0
    for name, r in radii:
        vols[name] = solid(r) - inner
        inner = solid(r)
    vols["medium"] = ball(medium_radius) - inner
    return vols


def bump(params, name, delta):
    """The parameters with ``name`` (a particle parameter or a layer thickness) moved by delta."""
    p = dict(params)
    if name in ("core_radius", "shell", "ligand"):
        p[name] += delta
    else:
        for side in ("below", "above"):
            p[side] = tuple((n, t + delta if n == name else t) for n, t in p[side])
    return p


def volume_rate(params, name, delta=1e-4):
    """Central difference of the exact LED volumes in one parameter (nm^2)."""
    up = led_volumes(layout(**bump(params, name, delta)))
    down = led_volumes(layout(**bump(params, name, -delta)))
    return {k: (up[k] - down[k]) / (2 * delta) for k in up}


# ------------------------------------------------------------------ mesh helpers
def region_boundary(mesh, region):
    """Facets (F, dim) on the region's boundary and their outward unit normals (F, dim)."""
    cells = mesh.regions[region]
    d = mesh.dim
    faces = np.concatenate([cells[:, [j for j in range(d + 1) if j != k]] for k in range(d + 1)])
    opposite = np.concatenate([cells[:, k] for k in range(d + 1)])
    keys = np.sort(faces, axis=1)
    _, inv, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    once = counts[inv.ravel()] == 1
    faces, opposite = faces[once], opposite[once]
    x = mesh.points[faces]
    if d == 2:
        t = x[:, 1] - x[:, 0]
        n = np.stack([t[:, 1], -t[:, 0]], axis=1)
    else:
        n = np.cross(x[:, 1] - x[:, 0], x[:, 2] - x[:, 0])
    n *= np.sign(np.sum(n * (x[:, 0] - mesh.points[opposite]), axis=1))[:, None]
    return faces, n / np.linalg.norm(n, axis=1, keepdims=True)


def predicted_rate(mesh, region, param):
    """d(volume)/d(param) from the boundary velocities: sum of V.n over the region boundary (m^2)."""
    sp = mesh.shape[param]
    vel = np.zeros_like(mesh.points)
    vel[sp.nodes] = sp.velocity
    faces, n = region_boundary(mesh, region)
    x = mesh.points[faces]
    vn = np.sum(vel[faces] * n[:, None, :], axis=2)  # (F, dim) normal speed at the corners
    if mesh.dim == 3:
        area = 0.5 * np.linalg.norm(np.cross(x[:, 1] - x[:, 0], x[:, 2] - x[:, 0]), axis=1)
        return float(np.sum(area * vn.mean(axis=1)))
    length = np.linalg.norm(x[:, 1] - x[:, 0], axis=1)
    r0, r1 = x[:, 0, 0], x[:, 1, 0]
    a0, a1 = vn[:, 0], vn[:, 1]
    # exact integral of (V.n) 2 pi r along the segment, both linear in the arc length
    return float(np.sum(2 * np.pi * length * (a0 * r0 / 3 + (a0 * r1 + a1 * r0) / 6 + a1 * r1 / 3)))


def measured(mesh):
    return {name: region_measure(mesh, name) / NM**3 for name in mesh.regions}


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def led2():
    return core_shell_led()


@pytest.fixture(scope="module")
def led2b():
    return core_shell_led(**LED_B)


@pytest.fixture(scope="module")
def led3():
    return core_shell_led(axisymmetric=False, resolution=0.5)


@pytest.fixture(scope="module")
def led3_cube():
    return core_shell_led(axisymmetric=False, core_shape="cube", resolution=0.5)


@pytest.fixture(scope="module")
def particle2():
    return core_shell_particle(ligand=1.5)


@pytest.fixture(scope="module")
def particle3():
    return core_shell_particle(axisymmetric=False, resolution=0.5)


# ------------------------------------------------------------------ groups
def test_led_groups(led2, led2b, led3, led3_cube):
    common = {"anode", "cathode", "outer", "core_shell", "shell_matrix", "shell_htl", "shell_etl",
              "htl_matrix", "matrix_etl"}
    assert set(led2.regions) == {"core", "shell", "matrix", "htl", "etl"}
    assert set(led2.boundaries) == common | {"axis"}
    assert set(led3.boundaries) == common and set(led3.regions) == set(led2.regions)
    assert set(led3_cube.boundaries) == common
    assert set(led2b.regions) == {"core", "shell", "ligand", "matrix", "pedot", "htl", "etl"}
    assert set(led2b.boundaries) == {"anode", "cathode", "outer", "axis", "core_shell", "shell_ligand",
                                     "ligand_matrix", "ligand_htl", "ligand_etl", "pedot_htl",
                                     "htl_matrix", "matrix_etl"}
    for mesh, params in [(led2, LED), (led2b, LED_B)]:
        g = layout(**params)
        pts = mesh.points / NM
        tol = 1e-9
        assert np.allclose(pts[mesh.boundary_nodes("anode"), 1], 0.0, atol=tol)
        assert np.allclose(pts[mesh.boundary_nodes("cathode"), 1], g["planes"][-1], atol=tol)
        assert np.allclose(pts[mesh.boundary_nodes("axis"), 0], 0.0, atol=tol)
        assert np.allclose(pts[mesh.boundary_nodes("outer"), 0], g["Rc"], atol=tol)
        # contact discs: on the NC-layer planes, radius sqrt(2 R c - c^2)
        outer = g["radii"][-1][0]
        rim = np.sqrt(2 * g["R"] * g["c"] - g["c"] ** 2)
        for group, z in [(f"{outer}_htl", g["z_b"]), (f"{outer}_etl", g["z_t"])]:
            disc = pts[mesh.boundary_nodes(group)]
            assert np.allclose(disc[:, 1], z, atol=tol) and disc[:, 0].max() == pytest.approx(rim, rel=1e-9)
        # the particle surfaces are spheres about the centre
        for (inner, r), nxt in zip(g["radii"], [n for n, _ in g["radii"][1:]]):
            on = pts[mesh.boundary_nodes(f"{inner}_{nxt}")] - [0.0, g["zc"]]
            assert np.allclose(np.linalg.norm(on, axis=1), r, rtol=1e-9)
    # 3D: the lateral faces are the cylinder r = cell_radius
    p3 = led3.points / NM
    assert np.allclose(np.hypot(*p3[led3.boundary_nodes("outer"), :2].T), layout(**LED)["Rc"], rtol=1e-9)


def test_particle_groups(particle2, particle3):
    assert set(particle2.regions) == {"core", "shell", "ligand", "medium"}
    assert set(particle2.boundaries) == {"core_shell", "shell_ligand", "ligand_medium", "outer", "axis"}
    assert set(particle3.regions) == {"core", "shell", "medium"}
    assert set(particle3.boundaries) == {"core_shell", "shell_medium", "outer"}
    r_out = np.linalg.norm(particle3.points[particle3.boundary_nodes("outer")], axis=1) / NM
    assert np.allclose(r_out, 3 * 6.5, rtol=1e-9)


def test_conforming_contact_disc(led2):
    """The shell and the HTL share the same nodes on the contact disc (one node set)."""
    htl, shell = led2.region_nodes("htl"), led2.region_nodes("shell")
    disc = led2.boundary_nodes("shell_htl")
    assert np.isin(disc, htl).all() and np.isin(disc, shell).all() and len(disc) >= 4
    assert not np.intersect1d(led2.region_nodes("core"), htl).size  # the core stays inside


# ------------------------------------------------------------------ volumes
@pytest.mark.parametrize("which", ["led2", "led2b"])
def test_axisymmetric_volumes(which, request):
    mesh, params = request.getfixturevalue(which), {"led2": LED, "led2b": LED_B}[which]
    exact, got = led_volumes(layout(**params)), measured(mesh)
    assert set(got) == set(exact)
    for name, vol in exact.items():
        # curved boundaries: inscribed polygons, relative error ~ (h/R)^2; planar layers exact
        curved = name in ("core", "shell", "ligand", "matrix")
        assert got[name] == pytest.approx(vol, rel=1.5e-2 if curved else 1e-9), name
    # inscribed polygons: the core and the whole particle can only come out small
    particle = [n for n, _ in layout(**params)["radii"]]
    assert got["core"] < exact["core"]
    assert sum(got[n] for n in particle) < sum(exact[n] for n in particle)


def test_volume_convergence():
    """Region volumes of the axisymmetric mesh, and the shape derivative of the shell volume,
    converge as h^2 (resolution 1, 2, 4)."""
    exact = led_volumes(layout(**LED))
    rate = volume_rate({**LED, "cell_radius": layout(**LED)["Rc"]}, "shell")["shell"]
    res = np.array([1.0, 2.0, 4.0])
    errors = {name: [] for name in ("core", "shell", "d shell / d shell")}
    for r in res:
        mesh = core_shell_led(resolution=r)
        got = measured(mesh)
        for name in ("core", "shell"):
            errors[name].append(abs(got[name] - exact[name]) / exact[name])
        errors["d shell / d shell"].append(abs(predicted_rate(mesh, "shell", "shell") / NM**2 - rate) / rate)
    for name, err in errors.items():
        slope = np.polyfit(np.log(res), np.log(err), 1)[0]
        assert -2.6 < slope < -1.6, (name, slope, err)
        assert err[-1] < 1e-3, name


def test_particle_volumes(particle2, particle3):
    radii = [("core", 4.5), ("shell", 6.5), ("ligand", 8.0)]
    for mesh, rad, rm, tol in [(particle2, radii, 24.0, 1.5e-2), (particle3, radii[:2], 19.5, 6e-2)]:
        got, exact = measured(mesh), particle_volumes(rad, rm)
        for name, vol in exact.items():
            assert got[name] == pytest.approx(vol, rel=tol), name


def test_axisymmetric_equals_3d(led2, led3):
    """Volume of revolution (2 pi r, region_measure) of the axisymmetric mesh = 3D mesh volume."""
    v2, v3 = measured(led2), measured(led3)
    exact = led_volumes(layout(**LED))
    for name in exact:
        # both approximate the same solid; the 3D mesh at resolution 0.5 is the coarser (its
        # lateral face a polygon of ~10 sides: the cell area is 3-4 % small)
        assert v3[name] == pytest.approx(v2[name], rel=6e-2), name
        assert abs(v3[name] - exact[name]) < 6e-2 * exact[name]
    # the total of every region is the cell cylinder, exactly in 2D, to the polygon in 3D
    total = np.pi * layout(**LED)["Rc"] ** 2 * layout(**LED)["planes"][-1]
    assert sum(v2.values()) == pytest.approx(total, rel=1e-9)
    assert sum(v3.values()) == pytest.approx(total, rel=5e-2)


def test_axisymmetric_equals_3d_converges(led3):
    """A finer 3D mesh closes the gap to the (fine) axisymmetric volumes."""
    v2 = measured(core_shell_led(resolution=2.0))
    gaps = [max(abs(v3[k] - v2[k]) / v2[k] for k in v2)
            for v3 in (measured(led3), measured(core_shell_led(axisymmetric=False, resolution=1.0)))]
    assert gaps[1] < 0.5 * gaps[0] and gaps[1] < 2e-2, gaps


def test_cube_volumes(led3_cube):
    g = layout(**LED, core_shape="cube")
    got, exact = measured(led3_cube), led_volumes(g)
    for name in ("core", "shell"):  # flat faces: exact
        assert got[name] == pytest.approx(exact[name], rel=1e-9), name
    for name in ("matrix", "htl", "etl"):  # against the polygonal cylinder
        assert got[name] == pytest.approx(exact[name], rel=3e-2), name
    pts = led3_cube.points[led3_cube.boundary_nodes("core_shell")] / NM - [0, 0, g["zc"]]
    assert np.allclose(np.abs(pts).max(axis=1), 4.5, rtol=1e-9)


# ------------------------------------------------------------------ quality, determinism, I/O
def test_quality(led2, led2b, particle2, record_property):
    for name, mesh in [("led2", led2), ("led2b", led2b), ("particle2", particle2)]:
        q = mesh_quality(mesh)
        record_property(f"{name}_quality", {k: q[k] for k in ("min_angle_deg", "negative_edges", "n_nodes")})
        assert q["negative_edges"] == 0, name  # ladder at the rims + obtuse-angle repair
        assert q["min_angle_deg"] > 18.0 and q["max_angle_deg"] < 125.0, name
        assert q["n_nodes"] < 2000
    # about three elements across the 2 nm shell: count axis nodes between core and HTL
    z = np.sort(led2.points[led2.boundary_nodes("axis"), 1]) / NM
    g = layout(**LED)
    below = z[(z >= g["z_b"] - 1e-9) & (z <= g["zc"] - 4.5 + 1e-9)]
    assert len(below) - 1 >= 2


def test_quality_3d(led3, particle3, record_property):
    for name, mesh in [("led3", led3), ("particle3", particle3)]:
        q = mesh_quality(mesh)
        record_property(f"{name}_quality", {k: q[k] for k in ("min_angle_deg", "negative_edges", "n_nodes")})
        assert q["min_angle_deg"] > 5.0 and q["n_nodes"] < 3000, (name, q)


def test_deterministic_and_msh(tmp_path):
    a = core_shell_led(ligand=1.0, msh_path=tmp_path / "cs.msh")
    b = core_shell_led(ligand=1.0)
    assert np.array_equal(a.points, b.points)
    assert all(np.array_equal(a.regions[k], b.regions[k]) for k in a.regions)
    assert all(np.array_equal(a.boundaries[k], b.boundaries[k]) for k in a.boundaries)
    back = read_msh(tmp_path / "cs.msh", length_unit="nm", axisymmetric=True)
    assert back.n_nodes == a.n_nodes and set(back.boundaries) == set(a.boundaries)
    assert region_measure(back, "shell") == pytest.approx(region_measure(a, "shell"), rel=1e-12)
    um = core_shell_led(ligand=0.001, length_unit="um", core_radius=0.0045, shell=0.002,
                        contact_depth=0.0005, below=(("htl", 0.03),), above=(("etl", 0.04),))
    assert set(um.boundaries) == set(a.boundaries)
    assert region_measure(um, "shell") == pytest.approx(region_measure(a, "shell"), rel=1e-3)


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="body of revolution"):
        core_shell_led(core_shape="cube")
    with pytest.raises(ValueError, match="body of revolution"):
        core_shell_particle(core_shape="cube")
    with pytest.raises(ValueError, match="contact_depth"):
        core_shell_led(contact_depth=1.5)
    with pytest.raises(ValueError, match="contact_depth"):
        core_shell_led(contact_depth=0.0)
    with pytest.raises(ValueError, match="cell_radius"):
        core_shell_led(cell_radius=6.0)
    with pytest.raises(ValueError, match="reserved or repeated"):
        core_shell_led(above=(("shell", 10.0),))
    with pytest.raises(ValueError, match="shell"):
        core_shell_particle(shell=0.0)
    with pytest.raises(ValueError, match="medium_radius"):
        core_shell_particle(medium_radius=5.0)


# ------------------------------------------------------------------ shape velocities
def test_particle_velocity_is_radial(particle2, particle3):
    """core_radius moves all three surfaces, shell the outer two, ligand the outermost; x / |x|."""
    for mesh in (particle2, particle3):
        names = [n for n in ("core", "shell", "ligand") if n in mesh.regions]
        surfaces = [f"{a}_{b}" for a, b in zip(names, names[1:] + ["medium"])]
        for k, param in enumerate(["core_radius", "shell", "ligand"][:len(names)]):
            sp = mesh.shape[param]
            expect = np.unique(np.concatenate([mesh.boundary_nodes(s) for s in surfaces[k:]]))
            assert np.array_equal(sp.nodes, expect), param
            x = mesh.points[sp.nodes]
            assert np.allclose(sp.velocity, x / np.linalg.norm(x, axis=1, keepdims=True), atol=1e-9)
        rim = mesh.shape["medium_radius"]
        assert np.array_equal(rim.nodes, mesh.boundary_nodes("outer"))


def centre_distance(x, g):
    """Distance from the particle centre: Euclidean (spheres) or max-norm (cubes), nm."""
    d = np.column_stack([x[:, :-1], x[:, -1] - g["zc"]])
    return np.linalg.norm(d, axis=1) if g["shape"] == "sphere" else np.abs(d).max(axis=1)


def surfaces_of(x, g, tol=1e-7):
    """Which analytic surfaces each point (nm) lies on: particle surfaces by layer, planes by
    index, the lateral wall."""
    rho = np.linalg.norm(x[:, :-1], axis=1)
    on = {}
    for name, r in g["radii"]:
        on[("sphere", name)] = np.abs(centre_distance(x, g) - r) < tol
    for j, zj in enumerate(g["planes"]):
        on[("plane", j)] = np.abs(x[:, -1] - zj) < tol
    on[("wall", 0)] = np.abs(rho - g["Rc"]) < tol
    return on


def residual(x, g, surface):
    kind, key = surface
    if kind == "sphere":
        return centre_distance(x, g) - dict(g["radii"])[key]
    if kind == "plane":
        return x[:, -1] - g["planes"][key]
    return np.linalg.norm(x[:, :-1], axis=1) - g["Rc"]


@pytest.mark.parametrize("which", ["led2", "led2b", "led3", "led3_cube"])
def test_led_velocity_moves_nodes_onto_the_new_geometry(which, request):
    """x + delta V lies on the device built at parameter + delta, to O(delta^2), on every surface."""
    mesh = request.getfixturevalue(which)
    params = {"led2": LED, "led2b": LED_B, "led3": LED, "led3_cube": {**LED, "core_shape": "cube"}}[which]
    g0 = layout(**params)
    params = {**params, "cell_radius": g0["Rc"]}
    x = mesh.points / NM
    on = surfaces_of(x, g0)
    names = ["core_radius", "shell"] + (["ligand"] if "ligand" in mesh.regions else []) + \
        [n for n, _ in params["below"] + params["above"]]
    assert set(mesh.shape) == set(names)
    delta = 1e-3
    for param in names:
        sp = mesh.shape[param]
        vel = np.zeros_like(x)
        vel[sp.nodes] = sp.velocity
        g1 = layout(**bump(params, param, delta))
        moved = x + delta * vel
        boundary = np.unique(np.concatenate([b.ravel() for b in mesh.boundaries.values()]))
        for surface, mask in on.items():
            idx = boundary[mask[boundary]]
            if not len(idx):
                continue
            err = np.abs(residual(moved[idx], g1, surface))
            # first order exact: what is left is curvature, ~ delta^2 / R
            assert err.max() < 5 * delta**2, (param, surface, err.max())
    # spot check of the formula: under core_radius the core surface rises by 1 (the centre) and
    # grows by 1: the radial unit vector on a sphere, (x - c) / a (unit normal speed) on a cube
    sp = mesh.shape["core_radius"]
    nodes = mesh.boundary_nodes("core_shell")
    vel = sp.velocity[np.searchsorted(sp.nodes, nodes)]
    centre = np.zeros(mesh.dim)
    centre[-1] = g0["zc"]
    grow = (x[nodes] - centre) / params["core_radius"]
    if g0["shape"] == "sphere":
        assert np.allclose(np.linalg.norm(grow, axis=1), 1.0, atol=1e-9)
    assert np.allclose(vel - grow, np.eye(mesh.dim)[-1], atol=1e-9)


@pytest.mark.parametrize("which", ["led2", "led2b", "led3", "led3_cube"])
def test_led_volume_derivatives(which, request):
    """Sum of V.n over each region's boundary = d(exact volume)/d(parameter), to mesh accuracy."""
    mesh = request.getfixturevalue(which)
    params = {"led2": LED, "led2b": LED_B, "led3": LED, "led3_cube": {**LED, "core_shape": "cube"}}[which]
    params = {**params, "cell_radius": layout(**params)["Rc"]}
    tol = 5e-2 if mesh.dim == 3 else 1e-2  # 3D: the coarse polygonal cylinder
    for param in mesh.shape:
        exact = volume_rate(params, param)
        scale = max(abs(v) for v in exact.values())
        for region in mesh.regions:
            got = predicted_rate(mesh, region, param) / NM**2
            assert got == pytest.approx(exact[region], abs=tol * scale), (param, region)


def test_particle_volume_derivatives(particle2, particle3):
    for mesh, radii, tol in [(particle2, [("core", 4.5), ("shell", 6.5), ("ligand", 8.0)], 1e-2),
                             (particle3, [("core", 4.5), ("shell", 6.5)], 4e-2)]:
        rm = 3 * radii[-1][1]
        for param, grow in [("core_radius", {"core", "shell", "ligand"}), ("shell", {"shell", "ligand"}),
                            ("ligand", {"ligand"}), ("medium_radius", set())]:
            if param not in mesh.shape:
                continue
            d = 1e-4
            up, dn = [particle_volumes([(n, r + e * (n in grow)) for n, r in radii],
                                       rm + e * (param == "medium_radius")) for e in (d, -d)]
            for region in mesh.regions:
                exact = (up[region] - dn[region]) / (2 * d)
                got = predicted_rate(mesh, region, param) / NM**2
                assert got == pytest.approx(exact, rel=tol, abs=1e-9), (param, region)


def test_layer_thickness_translates_what_lies_above(led2b):
    """A transport-layer thickness moves everything above its top by +1 vertically, nothing below."""
    z = led2b.points[:, 1] / NM
    sp = led2b.shape["pedot"]
    assert np.allclose(sp.velocity[:, 0], 0.0)
    top = z[sp.nodes] >= 12.0 - 1e-9
    assert np.allclose(sp.velocity[top, 1], 1.0)
    assert np.all((sp.velocity[~top, 1] > 0) & (sp.velocity[~top, 1] < 1))  # pedot side walls: stretch
    for a, b in combinations(["core_radius", "shell", "ligand"], 2):
        assert not np.array_equal(led2b.shape[a].velocity, led2b.shape[b].velocity) or a == b
