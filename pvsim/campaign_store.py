"""The output directory of a parameter sweep: atomic checkpoints, and the merged Dataset.

Layout (every path is built here and checked to stay inside ``OUT``)::

    OUT/manifest.json             the sweep definition (case text, parameters, members)
    OUT/run.json                  the token of the run that owns the directory now
    OUT/partial/<member>/eq.npz   converged equilibrium of a member still running
    OUT/partial/<member>/b0003.npz  converged bias point 3 of that member
    OUT/members/<member>.nc       a finished member (its bias sweep, as ``pvsim run`` writes it)
    OUT/members/<member>.json     its record: status, reason, parameter values (written last)
    OUT/sweep.nc | sweep.zarr     all members merged, swept parameters as dimensions
    OUT/summary.json              counts and every failure with its reason

Every file is written to a temporary name in the same directory, flushed to disk and
renamed over its final name (``os.replace``), so a kill leaves either the old file or the new
one, never half a file. Point files are NumPy ``.npz`` read with ``allow_pickle=False``:
data only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class OutputPathError(ValueError):
    """A path that would leave the sweep's output directory."""


def inside(root: Path, *parts: str) -> Path:
    """``root/parts...``, refusing absolute parts, ``..``, odd names and symlinks out of root."""
    root = Path(root).resolve()
    for part in parts:
        for piece in Path(part).parts if part else [""]:
            if Path(piece).is_absolute() or piece in ("..", ".") or not _NAME.match(piece):
                raise OutputPathError(
                    f"output path component {part!r} is not allowed: names inside the output "
                    "directory are plain relative names (letters, digits, '_', '-', '.'), "
                    "without '..' or a leading '/'")
    path = root.joinpath(*parts)
    real = path.resolve()
    if real != root and root not in real.parents:
        raise OutputPathError(f"'{path}' resolves to '{real}', outside the output directory '{root}' "
                              "(a symbolic link?)")
    return path


def _atomic(path: Path, write) -> Path:
    """Call ``write(tmp_path)``, fsync, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: Path, data) -> Path:
    return _atomic(path, lambda p: p.write_text(json.dumps(data, indent=1, sort_keys=True,
                                                           default=_json_default)))


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"{type(x).__name__} is not JSON data")


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def write_netcdf_atomic(ds, path: Path) -> Path:
    return _atomic(path, lambda p: ds.to_netcdf(p, engine="h5netcdf"))


class Store:
    """The files of one sweep output directory; ``token`` marks the run allowed to write."""

    def __init__(self, root: str | Path, token: str | None = None):
        self.root = Path(root).resolve()
        self.token = token

    # paths ---------------------------------------------------------------------------
    @property
    def manifest(self) -> Path:
        return inside(self.root, "manifest.json")

    @property
    def lock(self) -> Path:
        return inside(self.root, "run.json")

    def member_file(self, name: str) -> Path:
        return inside(self.root, "members", f"{name}.nc")

    def record_file(self, name: str) -> Path:
        return inside(self.root, "members", f"{name}.json")

    def partial_dir(self, name: str) -> Path:
        return inside(self.root, "partial", name)

    def point_file(self, name: str, index: int | None) -> Path:
        return inside(self.root, "partial", name, "eq.npz" if index is None else f"b{index:04d}.npz")

    # ownership -----------------------------------------------------------------------
    def claim(self, token: str) -> None:
        """Make this run the owner: a still-running older run stops at its next write."""
        self.token = token
        write_json(self.lock, {"token": token, "pid": os.getpid()})
        for stale in list(self.root.glob(".*.tmp")) + list(self.root.glob("members/.*.tmp")) \
                + list(self.root.glob("partial/*/.*.tmp")):
            stale.unlink(missing_ok=True)  # half-written files of a killed run
        for part in list(self.root.glob("partial/*")):
            if self.record(part.name) is not None:  # killed between a member's record and its cleanup
                shutil.rmtree(part, ignore_errors=True)

    def check_owner(self) -> None:
        if self.token is None:
            return
        try:
            owner = read_json(self.lock).get("token")
        except (OSError, ValueError):
            owner = None
        if owner != self.token:
            raise Superseded(f"{self.root} is now owned by another run (resumed elsewhere); stopping")

    # members -------------------------------------------------------------------------
    def record(self, name: str) -> dict | None:
        """The record of a finished member, or None (not finished, or its data file is missing)."""
        path = self.record_file(name)
        if not path.exists():
            return None
        try:
            rec = read_json(path)
        except ValueError:
            return None
        if rec.get("has_data") and not self.member_file(name).exists():
            return None
        return rec

    def finish_member(self, name: str, ds, record: dict) -> None:
        """Write the member's Dataset (if any), then its record, then drop its point files."""
        self.check_owner()
        if ds is not None:
            write_netcdf_atomic(ds, self.member_file(name))
        write_json(self.record_file(name), {**record, "has_data": ds is not None})
        shutil.rmtree(self.partial_dir(name), ignore_errors=True)

    # bias points ---------------------------------------------------------------------
    def save_point(self, name: str, index: int | None, point, start: int) -> None:
        """One converged bias point (``index`` None: the equilibrium) of a running member.

        ``start``: index in the member's list of done points (equilibrium 0) of the point
        the continuation started from (the secant predictor's previous point on resume).
        """
        self.check_owner()
        b = point.bias
        arrays = {"u": np.asarray(point.u), "bias_voltage": np.asarray(b.voltage, float),
                  "bias_current": np.asarray(b.current, float),
                  "stats": np.array([point.iterations, point.factorizations, point.substeps, start],
                                    dtype=np.int64),
                  "norms": np.array([point.residual, point.update, point.wall_time], dtype=float)}
        if b.hold is not None:
            arrays["bias_hold"] = np.asarray(b.hold, float)
        for key, value in point.observables.items():
            arrays[f"obs_{key}"] = np.asarray(value)
        _atomic(self.point_file(name, index), lambda p: _savez(p, arrays))

    def load_points(self, name: str):
        """(equilibrium, [points...], [start indices...]) saved for a member; (None, [], [])."""
        from .sweep import BiasPoint, PointResult

        def load(path):
            with np.load(path, allow_pickle=False) as z:
                a = {k: z[k] for k in z.files}
            hold = a.get("bias_hold")
            it, fac, sub, start = (int(x) for x in a["stats"])
            res, upd, wall = (float(x) for x in a["norms"])
            obs = {k[4:]: v for k, v in a.items() if k.startswith("obs_")}
            import jax.numpy as jnp

            return PointResult(bias=BiasPoint(a["bias_voltage"], a["bias_current"], hold),
                               u=jnp.asarray(a["u"]), observables=obs, iterations=it,
                               factorizations=fac, residual=res, update=upd, substeps=sub,
                               wall_time=wall, factorization=None), start

        eq_path = self.point_file(name, None)
        if not eq_path.exists():
            return None, [], []
        eq, _ = load(eq_path)
        points, starts = [], []
        while (path := self.point_file(name, len(points))).exists():
            p, s = load(path)
            points.append(p)
            starts.append(s)
        return eq, points, starts


class Superseded(RuntimeError):
    """Another run has claimed the output directory."""


def _savez(path: Path, arrays: dict) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


# --------------------------------------------------------------------------- merging
def merge(store: Store, manifest: dict, records: dict):
    """One Dataset of every member: swept parameters as dimensions (product sweeps) or a
    ``member`` dimension (explicit lists), then the member's own dimensions.

    Members with fewer bias points (a sweep stopped early) or smaller meshes are padded
    with NaN (integers with -1); a member with no data is all NaN. Variables equal in every
    member (the mesh, when it is shared) are kept once, without the sweep dimensions.
    """
    import xarray as xr

    members = manifest["members"]
    params = manifest["parameters"]
    if manifest["mode"] == "product":
        shape = tuple(len(p["values"]) for p in params)
        sweep_dims = tuple(p["key"] for p in params)
    else:
        shape = (len(members),)
        sweep_dims = ("member",)
    datasets = {}
    for m in members:
        rec = records.get(m["name"])
        if rec and rec.get("has_data"):
            with xr.open_dataset(store.member_file(m["name"]), engine="h5netcdf") as ds:
                datasets[m["name"]] = ds.load()
    sizes: dict[str, int] = {}
    variables: dict[str, tuple] = {}
    coords = set()
    for ds in datasets.values():
        for dim, n in ds.sizes.items():
            sizes[dim] = max(sizes.get(dim, 0), n)
        coords |= {c for c in ds.coords if c not in ds.dims}
        for name in list(ds.data_vars) + [c for c in ds.coords if c not in ds.dims]:
            variables.setdefault(name, (ds[name].dims, ds[name].dtype, dict(ds[name].attrs)))
    out = xr.Dataset()
    for name, (dims, dtype, attrs) in variables.items():
        per = [datasets[m["name"]][name].values if m["name"] in datasets and name in datasets[m["name"]]
               else None for m in members]
        full = tuple(sizes[d] for d in dims)
        present = [a for a in per if a is not None]
        if ("bias" not in dims and len(present) == len(members)
                and all(a.shape == present[0].shape for a in present)
                and all(np.array_equal(a, present[0], equal_nan=a.dtype.kind == "f") for a in present)):
            out[name] = (dims, present[0], attrs)  # the mesh, shared by every member: keep once
            continue
        kind = np.dtype(dtype).kind
        if kind in "iub":
            arr, fill = np.full(shape + full, -1, dtype=np.int64), -1
        elif kind == "f":
            arr, fill = np.full(shape + full, np.nan), np.nan
        else:
            arr, fill = np.full(shape + full, "", dtype=object), ""
        del fill
        for k, a in enumerate(per):
            if a is None:
                continue
            idx = np.unravel_index(k, shape) + tuple(slice(0, n) for n in a.shape)
            arr[idx] = a
        if kind not in "iubf":
            arr = arr.astype(str)
        out[name] = (sweep_dims + dims, arr, attrs)
    out = out.set_coords([c for c in coords if c in out])
    for dim in sizes:
        if dim == "bias":
            out = out.assign_coords(bias=("bias", np.arange(sizes["bias"]), {
                "units": "1", "long_name": "bias point index, equilibrium first"}))
            continue
        labels = [ds[dim].values for ds in datasets.values() if dim in ds.coords]
        if labels and len(labels) == len(datasets) and all(np.array_equal(v, labels[0]) for v in labels):
            first = next(iter(datasets.values()))
            out = out.assign_coords({dim: (dim, labels[0], dict(first[dim].attrs))})
    status = np.array([(records.get(m["name"]) or {}).get("status", "missing") for m in members])
    reason = np.array([(records.get(m["name"]) or {}).get("reason") or "" for m in members])
    out["member_name"] = (sweep_dims, np.array([m["name"] for m in members]).reshape(shape),
                          {"long_name": "member name (files OUT/members/<name>.nc)"})
    out["member_status"] = (sweep_dims, status.reshape(shape), {
        "long_name": "ok: every bias point converged; stopped: the bias sweep stopped early (the "
                     "converged points are kept); failed: no result; missing: not run"})
    out["member_failure"] = (sweep_dims, reason.reshape(shape),
                             {"long_name": "why a member failed or stopped"})
    if manifest["mode"] == "product":
        for p in params:
            out = out.assign_coords({p["key"]: (p["key"], _coord(p["values"]), {
                "long_name": f"swept case key {p['key']}"})})
    else:
        out = out.assign_coords(member=("member", np.arange(len(members))))
        for p in params:
            out = out.assign_coords({p["key"]: ("member", _coord([m["values"][p["key"]] for m in members]),
                                     {"long_name": f"swept case key {p['key']}"})})
    first = next(iter(datasets.values()), None)
    if first is not None:
        out.attrs.update({k: v for k, v in first.attrs.items()
                          if k not in ("case", "status", "sweep_member", "sweep_values")})
    out.attrs.update(title="pvsim parameter sweep", sweep_mode=manifest["mode"],
                     sweep_parameters=" ".join(p["key"] for p in params),
                     case=manifest["case_text"],
                     members_ok=int(np.sum(status == "ok")), members_failed=int(np.sum(status != "ok")))
    return out


def _coord(values: list) -> np.ndarray:
    if all(isinstance(v, bool) for v in values):
        return np.array(values, dtype=bool)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return np.array(values, dtype=np.int64)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return np.array(values, dtype=float)
    return np.array([str(v) for v in values])


def write_merged(ds, store: Store, fmt: str) -> Path:
    """``OUT/sweep.nc`` (NetCDF4) or ``OUT/sweep.zarr`` (a directory store, unconsolidated:
    ``xr.open_zarr(path, consolidated=False)``), replaced whole."""
    if fmt == "netcdf":
        return write_netcdf_atomic(ds, inside(store.root, "sweep.nc"))
    final = inside(store.root, "sweep.zarr")
    tmp = Path(tempfile.mkdtemp(prefix=".sweep.zarr.", dir=store.root))
    try:
        # text as variable-length strings (fixed-width unicode has no Zarr v3 specification)
        text = {k: ds[k].astype(object) for k in ds.variables if ds[k].dtype.kind == "U"}
        ds.assign_coords({k: v for k, v in text.items() if k in ds.coords}) \
            .assign({k: v for k, v in text.items() if k not in ds.coords}) \
            .to_zarr(tmp / "z.zarr", mode="w", consolidated=False)
        if final.exists():
            old = final.with_name(f".sweep.zarr.old.{os.getpid()}")
            os.replace(final, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp / "z.zarr", final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
