"""Corrupted meshes (tests/data/corrupt_meshes, hand-written gmsh 2.2 files): each is rejected
with the error documented in docs/sweeps.md ("Error catalogue"), saying what is wrong and where."""

from pathlib import Path

import pytest

from pvsim.case import CaseError, build_device, load_case
from pvsim.mesh import MeshError, read_msh

DATA = Path(__file__).parent / "data" / "corrupt_meshes"

# file -> pattern of its MeshError (the catalogue in docs/sweeps.md)
EXPECTED = {
    "nan_coordinate.msh": r"1 node\(s\) with a NaN or infinite coordinate, first node 4 .* has x = nan",
    "inf_coordinate.msh": r"NaN or infinite coordinate, first node 4 .* has y = inf",
    "inverted_element.msh": r"region 'bulk': 1 inverted element\(s\) .* first element 2 of the region "
                            r"\(nodes \[3, 2, 4\], centroid \(0.5, 0.833333\) m\)",
    "degenerate_element.msh": r"region 'bulk': 1 degenerate element\(s\) \(zero measure\), first element 0 "
                              r"of the region \(nodes \[0, 1, 4\], centroid \(0.5, 0\) m\)",
    "no_physical_names.msh": r"has no physical groups",
    "unnamed_region.msh": r"none of its 2D elements is in a named physical group.*\['left', 'right'\]"
                          r".*Physical Surface",
    "missing_node.msh": r"an element refers to a node number that its \$Nodes section does not define",
    "truncated.msh": r"cannot read mesh file .*truncated\.msh.*\(is the file truncated",
    "quadrilateral.msh": r"element type 'quad' is not supported",
}


def test_every_fixture_is_listed():
    assert {p.name for p in DATA.glob("*.msh")} == set(EXPECTED) | {"good_square.msh"}
    assert read_msh(DATA / "good_square.msh").summary() == "2D mesh, 5 nodes; elements per region {bulk: 4}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corrupt_mesh_gives_its_documented_error(name):
    with pytest.raises(MeshError, match=EXPECTED[name]):
        read_msh(DATA / name)


def _case(**changes) -> dict:
    case = {"mesh": {"file": "good_square.msh", "length_unit": "um"},
            "materials": {"si": {"eps_r": 11.7, "band_gap_eV": 1.12}},
            "regions": {"bulk": {"material": "si", "donors_cm3": 1e16}},
            "contacts": {"left": {"type": "ohmic"}, "right": {"type": "ohmic"}}}
    for section, value in changes.items():
        case[section] = value
    return case


@pytest.mark.parametrize("changes, message", [
    (dict(regions={"bulk": {"material": "si"}, "emitter": {"material": "si"}}),
     r"\[regions.emitter\]: the mesh has no region 'emitter'; its regions are \['bulk'\]"),
    (dict(contacts={"left": {"type": "ohmic"}, "top": {"type": "ohmic"}}),
     r"\[contacts.top\]: the mesh has no boundary 'top'; its boundary groups are \['left', 'right'\]"),
    (dict(regions={}), r"region 'bulk' has no material: add \[regions.bulk\]"),
    (dict(mesh={"file": "nan_coordinate.msh"}), r"nan_coordinate.msh: 1 node\(s\) with a NaN"),
    (dict(mesh={"file": "nowhere.msh"}), r"mesh file '.*nowhere.msh' not found"),
])
def test_case_referring_to_what_the_mesh_lacks(changes, message):
    """Names the case uses that the mesh does not have are errors listing what it has."""
    case, base = load_case(_case(**changes), DATA)
    with pytest.raises((CaseError, MeshError), match=message):
        build_device(case, base)


def test_mesh_inside_a_sweep_member_fails_that_member_only(tmp_path):
    """A corrupted mesh in a sweep is recorded as that member's failure, with the mesh error."""
    import shutil
    import tomllib

    from pvsim.campaign import plan_sweep, run_sweep_campaign

    for name in ("good_square.msh", "inverted_element.msh"):
        shutil.copy(DATA / name, tmp_path / name)
    text = ('[mesh]\nfile = "good_square.msh"\n[materials.si]\neps_r = 11.7\nband_gap_eV = 1.12\n'
            '[regions.bulk]\nmaterial = "si"\ndonors_cm3 = 1e16\n'
            '[contacts.left]\ntype = "ohmic"\n[contacts.right]\ntype = "ohmic"\n')
    assert tomllib.loads(text)
    (tmp_path / "sq.toml").write_text(text)
    sweep = plan_sweep(tmp_path / "sq.toml", members=[{"mesh.file": "inverted_element.msh"}])
    run = run_sweep_campaign(sweep, tmp_path / "out", scheduler="serial")
    assert run.records["m0000"]["status"] == "failed"
    assert "region 'bulk': 1 inverted element(s)" in run.failures["m0000"]
