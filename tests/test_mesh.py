"""Mesh input: gmsh .msh 2.2 and 4.1 through meshio, the gmsh API, element checks, EAFE weights."""

import logging

import numpy as np
import pytest

from pvsim.discretize import discretize
from pvsim.geometry import box, diode_2d, gmsh_session
from pvsim.mesh import MeshError, from_arrays, from_gmsh_model, read_msh


def test_msh22_and_msh41_give_the_same_mesh(tmp_path):
    api = diode_2d(h=0.2, h_junction=0.05, msh_path=tmp_path / "d22.msh")
    with gmsh_session() as gmsh:
        gmsh.open(str(tmp_path / "d22.msh"))
        gmsh.option.setNumber("Mesh.MshFileVersion", 4.1)
        gmsh.write(str(tmp_path / "d41.msh"))
    m22 = read_msh(tmp_path / "d22.msh", length_unit="um")
    m41 = read_msh(tmp_path / "d41.msh", length_unit="um")
    for m in (m22, m41):
        assert set(m.regions) == {"p_side", "n_side"}
        assert {"anode", "cathode", "junction"} <= set(m.boundaries)
        order = lambda p: p[np.lexsort(p.T)]  # noqa: E731  (node numbering may differ)
        np.testing.assert_allclose(order(m.points), order(api.points), atol=1e-18)
        assert m.n_nodes == api.n_nodes
        for name in m.regions:
            assert len(m.regions[name]) == len(api.regions[name])
        # the anode covers the lower half of the left face (y <= 0.5 um)
        anode = m.points[m.boundary_nodes("anode")]
        assert np.allclose(anode[:, 0], 0) and anode[:, 1].max() == pytest.approx(0.5e-6)
    # total area and per-region areas from the discretisation (2 um x 1 um)
    d = discretize(m22)
    assert d.site_volume.sum() * d.L_ref**2 == pytest.approx(2e-12, rel=1e-12)


def test_gmsh_api_3d_and_physical_names():
    m = box((1.0, 2.0, 0.5), h=0.3)
    assert m.dim == 3 and set(m.boundaries) == {"xmin", "xmax", "ymin", "ymax", "zmin", "zmax"}
    d = discretize(m, L_ref=1.0)
    assert d.site_volume.sum() == pytest.approx(1.0, rel=1e-12)
    # P1 stiffness weights reproduce linear functions exactly at interior nodes
    f = m.points @ np.array([0.3, -1.2, 0.7])
    i, j = d.edge_sites.T
    r = np.zeros(m.n_nodes)
    np.add.at(r, d.site_node[i], d.edge_weight * (f[d.site_node[i]] - f[d.site_node[j]]))
    np.add.at(r, d.site_node[j], d.edge_weight * (f[d.site_node[j]] - f[d.site_node[i]]))
    boundary = np.unique(np.concatenate([m.boundary_nodes(b) for b in m.boundaries]))
    interior = np.setdiff1d(np.arange(m.n_nodes), boundary)
    assert np.abs(r[interior]).max() < 1e-12


def test_negative_weights_are_counted_and_reported(caplog):
    m = box((1.0, 1.0, 1.0), h=0.25)
    with caplog.at_level(logging.WARNING, logger="pvsim.discretize"):
        d = discretize(m, L_ref=1.0)
    count, worst = d.negative_weight_report()
    assert count == int(np.sum(d.edge_weight < 0)) and count > 0
    assert worst == pytest.approx(d.edge_weight.min() / np.median(np.abs(d.edge_weight)))
    assert f"{count} edge(s) with negative EAFE weight" in caplog.text


def test_axisymmetric_volumes_and_weights():
    m = box((1.0, 1.0), h=0.1, axisymmetric=True)
    d = discretize(m, L_ref=1.0)
    assert d.site_volume.sum() == pytest.approx(np.pi, rel=1e-12)  # cylinder r = 1, z = 1
    on_axis = d.site_volume[np.isclose(m.points[d.site_node, 0], 0.0)]
    assert np.all(on_axis > 0)  # 2 pi A (2 r_i + r_j + r_k) / 12, not 2 pi r_i A / 3


def test_degenerate_and_inverted_elements_are_errors():
    pts = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [2, 2]], float)
    with pytest.raises(MeshError, match="region 'a': 1 degenerate"):
        from_arrays(pts, {"a": [[0, 1, 2], [1, 3, 2], [0, 3, 4]]})
    pts = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [2, 0]], float)
    from_arrays(pts, {"a": [[0, 1, 2], [1, 3, 2], [1, 4, 3]]})  # all counter-clockwise: fine
    with pytest.raises(MeshError, match="region 'a': 1 inverted"):
        from_arrays(pts, {"a": [[0, 1, 2], [1, 3, 2], [1, 3, 4]]})


def test_bad_files_name_the_problem(tmp_path):
    with pytest.raises(MeshError, match="not found"):
        read_msh(tmp_path / "missing.msh")
    with gmsh_session() as gmsh:
        gmsh.model.occ.addRectangle(0, 0, 0, 1, 1)
        gmsh.model.occ.synchronize()
        gmsh.model.mesh.generate(2)
        gmsh.option.setNumber("Mesh.SaveAll", 1)
        gmsh.write(str(tmp_path / "nogroups.msh"))
        with pytest.raises(MeshError, match="no physical groups"):
            from_gmsh_model()
    with pytest.raises(MeshError, match="physical groups"):
        read_msh(tmp_path / "nogroups.msh")


def test_1d_msh_with_physical_points(tmp_path):
    with gmsh_session() as gmsh:
        g = gmsh.model.geo
        p = [g.addPoint(x, 0, 0, 5.0) for x in (0.0, 30.0, 50.0)]
        lines = [g.addLine(p[0], p[1]), g.addLine(p[1], p[2])]
        g.synchronize()
        gmsh.model.addPhysicalGroup(1, [lines[0]], name="htl")
        gmsh.model.addPhysicalGroup(1, [lines[1]], name="eml")
        gmsh.model.addPhysicalGroup(0, [p[0]], name="anode")
        gmsh.model.addPhysicalGroup(0, [p[2]], name="cathode")
        gmsh.model.mesh.generate(1)
        api = from_gmsh_model(length_unit="nm")
        gmsh.option.setNumber("Mesh.MshFileVersion", 2.2)
        gmsh.write(str(tmp_path / "stack.msh"))
    m = read_msh(tmp_path / "stack.msh", length_unit="nm")
    for mesh in (api, m):
        assert mesh.dim == 1 and set(mesh.regions) == {"htl", "eml"}
        assert mesh.points[mesh.boundary_nodes("cathode"), 0] == pytest.approx([50e-9])
        d = discretize(mesh)
        assert d.site_volume.sum() * d.L_ref == pytest.approx(50e-9, rel=1e-12)


@pytest.mark.parametrize("axisymmetric", [False, True])
def test_jax_geometry_matches_setup_and_has_exact_shape_derivative(axisymmetric):
    """Discretization.geometry (JAX, for shape gradients) reproduces the set-up weights and
    volumes, and its derivative of the total volume under a uniform stretch is exact."""
    import jax
    import jax.numpy as jnp

    m = box((1.0, 1.0), h=0.2, axisymmetric=axisymmetric)
    d = discretize(m, L_ref=1.0)
    w, v = d.geometry(jnp.asarray(m.points))
    np.testing.assert_allclose(w, d.edge_weight, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(v, d.site_volume, rtol=1e-12)
    # stretch z by (1 + t): volume pi (1 + t) (axisymmetric) or (1 + t); d/dt at 0 = volume
    stretch = lambda t: jnp.asarray(m.points) * jnp.array([1.0, 1.0 + t])  # noqa: E731
    dvol = jax.grad(lambda t: jnp.sum(d.geometry(stretch(t))[1]))(0.0)
    assert float(dvol) == pytest.approx(np.pi if axisymmetric else 1.0, rel=1e-12)
