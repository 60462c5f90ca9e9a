"""Regenerate the committed meshes in meshes/ (gmsh, format 2.2, readable by meshio and DEVSIM).

    python scripts/make_meshes.py
"""

from pathlib import Path

from pvsim.geometry import diode_2d, micro_aperture_axisym

HERE = Path(__file__).resolve().parent.parent / "meshes"

if __name__ == "__main__":
    HERE.mkdir(exist_ok=True)
    mesh = diode_2d(msh_path=HERE / "diode_2d.msh")
    print("meshes/diode_2d.msh:", mesh.summary())
    mesh = micro_aperture_axisym(opening_radius=400.0, outer_radius=1500.0, htl=30.0, substrate=100.0,
                                 msh_path=HERE / "aperture_axisym.msh")
    print("meshes/aperture_axisym.msh:", mesh.summary())
