"""ParaView export of a results Dataset (:mod:`pvsim.io`) through meshio.

* :func:`to_vtu`: one bias point as a VTK unstructured grid (``.vtu``).
* :func:`to_xdmf`: every bias point as an XDMF time series (``.xdmf`` with its heavy data in
  ``<stem>.h5`` beside it), the "time" of a step being the bias index (0 = equilibrium);
  ParaView's time slider then steps through the sweep. One bias point with ``bias=...``.
* :func:`cli_export`: the command line's choice of the two by the output suffix.

What is written: the mesh (``cells``: lines in 1D, triangles in 2D and axisymmetric,
tetrahedra in 3D) with its nodes padded to three coordinates, in metres: 1D (x, 0, 0), 2D
(x, y, 0), axisymmetric (r, z, 0), i.e. the (r, z) half-plane as the x-y plane (ParaView's
"Rotational Extrusion" filter makes the body of revolution); as point data every node field
at the bias point (potential, phi_n, phi_p, n, p, R_srh, R_rad, R_auger, Ec, Ev,
temperature, the heat fields when present: everything with dimensions (bias, node)), and the
bias-independent node fields ``region`` and ``volume``; as cell data ``cell_region``. Values
are the Dataset's own (SI units, NaN where a field is undefined, e.g. quasi-Fermi potentials
inside insulators). Region indices number the names in the Dataset attribute ``regions``.
The contact voltages and currents are not in the files (meshio writes no VTU field data):
they stay in the NetCDF file, indexed by the same bias index.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

_CELL_TYPES = {(1, 2): "line", (2, 3): "triangle", (3, 4): "tetra"}


def _points(ds) -> np.ndarray:
    x = np.asarray(ds["x"].values, dtype=float)
    return np.concatenate([x, np.zeros((len(x), 3 - x.shape[1]))], axis=1)


def _cells(ds) -> list[tuple[str, np.ndarray]]:
    cells = np.asarray(ds["cells"].values)
    key = (ds.sizes["dim"], cells.shape[1])
    if key not in _CELL_TYPES:
        raise ValueError(f"cells with {cells.shape[1]} vertices in {key[0]}D are not simplices")
    return [(_CELL_TYPES[key], cells.astype(np.int64))]


def _bias_index(ds, bias: int) -> int:
    n = ds.sizes["bias"]
    if not -n <= int(bias) < n:
        raise IndexError(f"bias {bias} out of range: the Dataset has {n} bias point(s)")
    return int(bias) % n


def point_data(ds, bias: int) -> dict[str, np.ndarray]:
    """Every node field of bias point ``bias`` (and the bias-independent node fields)."""
    b = _bias_index(ds, bias)
    out = {}
    for name, var in ds.data_vars.items():
        if var.dims == ("bias", "node"):
            out[name] = np.asarray(var.isel(bias=b).values, dtype=float)
        elif var.dims == ("node",):
            out[name] = np.asarray(var.values)
    return out


def _cell_data(ds) -> dict[str, list[np.ndarray]]:
    return {"cell_region": [np.asarray(ds["cell_region"].values, dtype=np.int64)]}


def to_vtu(ds, path: str | Path, bias: int = -1) -> Path:
    """Write bias point ``bias`` (index, negative from the end) as a ``.vtu`` file."""
    import meshio

    path = Path(path)
    b = _bias_index(ds, bias)
    mesh = meshio.Mesh(_points(ds), _cells(ds), point_data=point_data(ds, b), cell_data=_cell_data(ds))
    path.parent.mkdir(parents=True, exist_ok=True)
    meshio.write(path, mesh, file_format="vtu")
    return path


def to_xdmf(ds, path: str | Path, bias: int | None = None) -> Path:
    """Write the sweep as an XDMF time series (time = bias index); ``bias``: only that point.

    The arrays go to ``path.with_suffix(".h5")`` (HDF5), which must stay beside the ``.xdmf``.
    meshio's writer puts that file in the working directory, so the working directory is
    switched to the target's folder while writing (not thread-safe).
    """
    import contextlib

    import meshio

    path = Path(path).absolute()
    steps = range(ds.sizes["bias"]) if bias is None else [_bias_index(ds, bias)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.chdir(path.parent), meshio.xdmf.TimeSeriesWriter(path.name) as writer:
        writer.write_points_cells(_points(ds), _cells(ds))
        for b in steps:
            writer.write_data(float(b), point_data=point_data(ds, b), cell_data=_cell_data(ds))
    return path


def cli_export(path, output: str | Path, bias: int = -1) -> Path:
    """Export a NetCDF result (or a Dataset) to ``output``: ``.vtu`` writes bias point ``bias``,
    ``.xdmf`` the whole sweep as a time series (``bias`` unused)."""
    import xarray as xr

    output = Path(output)
    suffix = output.suffix.lower()
    if suffix not in (".vtu", ".xdmf"):
        raise ValueError(f"export writes .vtu (one bias point) or .xdmf (the sweep), not "
                         f"'{output.suffix or output.name}'")
    if isinstance(path, xr.Dataset):
        ds = path
    else:
        with xr.open_dataset(path, engine="h5netcdf") as f:
            ds = f.load()
    return to_vtu(ds, output, bias) if suffix == ".vtu" else to_xdmf(ds, output)
