"""Regenerate the committed meshes in meshes/ (gmsh, format 2.2, readable by meshio and DEVSIM).

    python scripts/make_meshes.py

``EXAMPLES`` are the small generator examples (name -> generator, parameters, axisymmetric);
tests/test_geometry_registry.py checks that each committed file equals a fresh build.
"""

from pathlib import Path

from pvsim.geometry import diode_2d, micro_aperture_axisym
from pvsim.geometry.registry import generate

HERE = Path(__file__).resolve().parent.parent / "meshes"

EXAMPLES = {
    "nc_monolayer_2d.msh": ("nc_monolayer", {"dim": 2, "structured": True}, False),
    "nc_monolayer_3d_kuhn.msh": ("nc_monolayer", {"dim": 3, "structured": True, "resolution": 0.5}, False),
    "core_shell_axisym.msh": ("core_shell_led", {"axisymmetric": True}, True),
    "aperture_single_nc_axisym.msh": ("micro_aperture_axisym", {  # the tutorial lesson
        "emitter": "single", "opening_radius": 20.0, "outer_radius": 100.0, "htl": 30.0,
        "insulator": 10.0, "eml": 10.0, "etl": 30.0, "nc_radius": 4.5, "ligand": 1.5, "nc_gap": -0.5}, True),
}

if __name__ == "__main__":
    HERE.mkdir(exist_ok=True)
    mesh = diode_2d(msh_path=HERE / "diode_2d.msh")
    print("meshes/diode_2d.msh:", mesh.summary())
    mesh = micro_aperture_axisym(opening_radius=400.0, outer_radius=1500.0, htl=30.0, substrate=100.0,
                                 msh_path=HERE / "aperture_axisym.msh")
    print("meshes/aperture_axisym.msh:", mesh.summary())
    for name, (gen, params, _) in EXAMPLES.items():
        mesh = generate(gen, params, msh_path=HERE / name)
        print(f"meshes/{name}:", mesh.summary())
