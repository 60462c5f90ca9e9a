"""Mesh quality: element angles and the sign of the EAFE edge weights (numpy)."""

from __future__ import annotations

from itertools import combinations

import numpy as np

from ..mesh import Mesh


def _triangle_angles(x: np.ndarray) -> np.ndarray:
    """(M, 3) interior angles in degrees of triangles x (M, 3, 2)."""
    out = []
    for k in range(3):
        a = x[:, (k + 1) % 3] - x[:, k]
        b = x[:, (k + 2) % 3] - x[:, k]
        cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        out.append(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
    return np.stack(out, axis=1)


def _dihedral_angles(x: np.ndarray) -> np.ndarray:
    """(M, 6) dihedral angles in degrees of tetrahedra x (M, 4, 3), one per edge."""
    # outward face normals n_k (face opposite corner k); the dihedral angle at the edge
    # shared by faces k and l is pi - angle(n_k, n_l)
    normals = []
    for k in range(4):
        a, b, c = [x[:, j] for j in range(4) if j != k]
        n = np.cross(b - a, c - a)
        n *= np.sign(np.sum(n * (a - x[:, k]), axis=1))[:, None]  # point away from corner k
        normals.append(n / np.linalg.norm(n, axis=1, keepdims=True))
    out = [np.degrees(np.pi - np.arccos(np.clip(np.sum(normals[k] * normals[m], axis=1), -1, 1)))
           for k, m in combinations(range(4), 2)]
    return np.stack(out, axis=1)


def mesh_quality(mesh: Mesh) -> dict:
    """Quality figures of a 2D (triangle) or 3D (tetrahedron) mesh.

    ``min_angle_deg``/``max_angle_deg``: smallest/largest interior angle (2D) or dihedral
    angle (3D), also per region (``min_angle_deg_by_region``); ``negative_edges``: the
    number of region edges whose summed EAFE weight is negative (the finite-volume
    operator is then not an M-matrix there: see docs/physics.md), ``worst_negative_edge``
    that weight relative to the median |w| (0 when there is none); ``n_nodes``,
    ``n_elements``.
    """
    from ..discretize import discretize

    if mesh.dim not in (2, 3):
        raise ValueError(f"mesh_quality: needs a 2D or 3D mesh, got {mesh.dim}D")
    angles = _triangle_angles if mesh.dim == 2 else _dihedral_angles
    by_region = {name: angles(mesh.points[cells]) for name, cells in mesh.regions.items()}
    every = np.concatenate(list(by_region.values()))
    count, worst = discretize(mesh, L_ref=float(np.ptp(mesh.points, axis=0).max())).negative_weight_report()
    return {
        "min_angle_deg": float(every.min()),
        "max_angle_deg": float(every.max()),
        "min_angle_deg_by_region": {k: float(v.min()) for k, v in by_region.items()},
        "negative_edges": count,
        "worst_negative_edge": worst,
        "n_nodes": int(mesh.n_nodes),
        "n_elements": len(every),
        "n_triangles" if mesh.dim == 2 else "n_tetrahedra": len(every),
    }


def region_measure(mesh: Mesh, region: str) -> float:
    """Length/area/volume of a region in m^d; in an axisymmetric mesh the volume of revolution."""
    from ..discretize import element_geometry

    x = mesh.points[mesh.regions[region]]
    _, vol = element_geometry(x, mesh.axisymmetric, xp=np)
    return float(vol.sum())
