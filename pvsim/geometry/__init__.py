"""Mesh generators: 1D layer stacks (numpy) and the gmsh-built 2D, axisymmetric and 3D devices.

gmsh is imported only inside the functions that need it. Every generator returns a checked
:class:`~pvsim.mesh.Mesh` (metres) whose ``shape`` maps each geometric parameter to the
surface nodes it moves (:class:`ShapeParameter`); the gmsh ones can also write the ``.msh``
file (format 2.2, readable by meshio and DEVSIM) so that a peer code runs on the identical
mesh. :data:`GENERATORS` lists those callable by name (``pvsim mesh NAME``, case-file
``[geometry]``). Conventions: :mod:`pvsim.geometry.gmsh_tools`.
"""

from .aperture import micro_aperture_3d, micro_aperture_axisym
from .coreshell import core_shell_led, core_shell_particle
from .gmsh_tools import ShapeParameter, gmsh_session
from .monolayer import nc_monolayer
from .quality import mesh_quality, region_measure
from .simple import box, diode_2d
from .stack import Layer, layer_stack

GENERATORS = {
    "core_shell_led": core_shell_led,
    "core_shell_particle": core_shell_particle,
    "nc_monolayer": nc_monolayer,
    "micro_aperture_axisym": micro_aperture_axisym,
    "micro_aperture_3d": micro_aperture_3d,
    "diode_2d": diode_2d,
}

__all__ = ["GENERATORS", "Layer", "ShapeParameter", "box", "core_shell_led", "core_shell_particle",
           "diode_2d", "gmsh_session", "layer_stack", "mesh_quality", "micro_aperture_3d",
           "micro_aperture_axisym", "nc_monolayer", "region_measure"]
