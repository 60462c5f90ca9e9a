"""Generators by name: `pvsim mesh`, case-file [geometry], parameter checks, determinism."""

import inspect
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from pvsim.case import CaseError, build_device, load_case
from pvsim.geometry import GENERATORS, region_measure
from pvsim.geometry.registry import check_parameters, generate
from pvsim.mesh import read_msh

ROOT = Path(__file__).resolve().parent.parent
SMALL = {"opening_radius": 60.0, "outer_radius": 240.0, "htl": 20.0, "eml": 10.0, "etl": 20.0,
         "insulator": 10.0}


def _same(a, b):
    assert set(a.regions) == set(b.regions) and set(a.boundaries) == set(b.boundaries)
    np.testing.assert_allclose(a.points, b.points, rtol=0, atol=1e-12 * np.abs(a.points).max())
    for k in a.regions:
        np.testing.assert_array_equal(a.regions[k], b.regions[k])


def test_every_generator_follows_the_conventions():
    for name, fn in GENERATORS.items():
        params = inspect.signature(fn).parameters
        assert {"msh_path", "length_unit"} <= set(params), name
        assert all(p.default is not inspect.Parameter.empty for p in params.values()), name


def test_cli_mesh_writes_what_the_generator_builds(tmp_path):
    out = tmp_path / "ap.msh"
    args = [f"--{k}={v}" for k, v in SMALL.items()]
    run = subprocess.run([sys.executable, "-m", "pvsim.cli", "mesh", "micro_aperture_axisym", *args,
                          "-o", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "negative EAFE" in run.stderr and "insulator" in run.stderr
    direct = generate("micro_aperture_axisym", SMALL)
    _same(read_msh(out, length_unit="nm", axisymmetric=True), direct)
    # deterministic: a second build is identical
    _same(generate("micro_aperture_axisym", SMALL), direct)


def test_cli_mesh_errors_name_the_parameter(tmp_path):
    run = subprocess.run([sys.executable, "-m", "pvsim.cli", "mesh", "micro_aperture_axisym",
                          "--opening_radus", "50", "-o", str(tmp_path / "x.msh")],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "opening_radus" in run.stderr and "opening_radius" in run.stderr
    run = subprocess.run([sys.executable, "-m", "pvsim.cli", "mesh", "micro_aperture", "-o",
                          str(tmp_path / "x.msh")], capture_output=True, text=True)
    assert run.returncode == 2 and "micro_aperture_axisym" in run.stderr
    assert not (tmp_path / "x.msh").exists()


def test_parameter_types_are_checked():
    with pytest.raises(ValueError, match="takes a number"):
        check_parameters("micro_aperture_axisym", {"htl": "thick"})
    with pytest.raises(ValueError, match="takes a number"):
        check_parameters("micro_aperture_axisym", {"htl": True})
    assert check_parameters("micro_aperture_axisym", {"htl": 30}) == {"htl": 30}


def _aperture_case(**geometry):
    data = tomllib.loads((ROOT / "cases" / "aperture_axisym_heat.toml").read_text())
    del data["mesh"]
    data["geometry"] = {"generator": "micro_aperture_axisym", **SMALL, "substrate": 50.0, **geometry}
    return data


def test_case_geometry_section_builds_the_generator_mesh(tmp_path):
    case, base = load_case(_aperture_case(save_msh="cell.msh"), tmp_path)
    dev = build_device(case, base)
    direct = generate("micro_aperture_axisym", {**SMALL, "substrate": 50.0})
    _same(dev.mesh, direct)
    assert (tmp_path / "cell.msh").exists()
    # the insulator volume is the annulus pi (R^2 - r0^2) t (straight-sided: exact)
    t, R, r0 = (SMALL[k] * 1e-9 for k in ("insulator", "outer_radius", "opening_radius"))
    assert region_measure(dev.mesh, "insulator") == pytest.approx(np.pi * (R**2 - r0**2) * t, rel=1e-12)


def test_case_geometry_errors():
    with pytest.raises(CaseError, match="opening_radus.*opening_radius"):
        load_case(_aperture_case(opening_radus=50.0), ROOT)
    data = _aperture_case()
    data["mesh"] = {"file": "../meshes/aperture_axisym.msh", "axisymmetric": True}
    with pytest.raises(CaseError, match=r"exactly one of \[mesh\]"):
        load_case(data, ROOT)
    data = _aperture_case()
    data["geometry"]["generator"] = "micro_apertur"
    with pytest.raises(CaseError, match="micro_aperture_axisym"):
        load_case(data, ROOT)


def _examples():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_meshes", ROOT / "scripts" / "make_meshes.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.EXAMPLES


@pytest.mark.parametrize("name", list(_examples()))
def test_committed_example_meshes_are_what_the_generators_build(name):
    """meshes/ holds small generator examples; a fresh build (deterministic) equals the file,
    and the 2D/axisymmetric/Kuhn examples have no negative EAFE edge weight."""
    gen, params, axisymmetric = _examples()[name]
    fresh = generate(gen, params)
    _same(read_msh(ROOT / "meshes" / name, length_unit="nm", axisymmetric=axisymmetric), fresh)
    from pvsim.geometry import mesh_quality

    assert mesh_quality(fresh)["negative_edges"] == 0
