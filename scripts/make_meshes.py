"""Regenerate the committed meshes in meshes/ (gmsh, format 2.2, readable by meshio and DEVSIM).

    python scripts/make_meshes.py
"""

from pathlib import Path

from pvsim.geometry import diode_2d

HERE = Path(__file__).resolve().parent.parent / "meshes"

if __name__ == "__main__":
    HERE.mkdir(exist_ok=True)
    mesh = diode_2d(msh_path=HERE / "diode_2d.msh")
    print("meshes/diode_2d.msh:", mesh.summary())
