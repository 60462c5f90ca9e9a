"""The Python entry point: a case (TOML path or dict) in, an ``xarray.Dataset`` out."""

from __future__ import annotations

import warnings
from pathlib import Path

from .units import enable_x64


def run_case(case, *, output: str | Path | None = None, base_dir=None, progress=None):
    """Load, validate, build and sweep a case; return the results Dataset.

    ``case`` is a path to a TOML file or a dict with the same structure. If the sweep stops
    at a bias point that does not converge, the Dataset holds every converged point, its
    ``status`` attribute says which bias failed and why, and a warning is issued. With
    ``output`` the Dataset is also written as NetCDF.
    """
    enable_x64()
    from .case import build_device, load_case, sweep_targets
    from .io import to_dataset, write_netcdf
    from .sweep import SweepOptions, run_sweep

    cfg, base = load_case(case, base_dir)
    text = Path(case).read_text() if not isinstance(case, dict) else _dump(case)
    dev = build_device(cfg, base)
    targets = sweep_targets(cfg, dev)
    result = run_sweep(dev, targets, SweepOptions(predictor=cfg.solver.predictor), progress=progress)
    ds = to_dataset(result, case_text=text)
    if output is not None:
        write_netcdf(ds, output)
    if not result.ok:
        warnings.warn(result.failure, RuntimeWarning, stacklevel=2)
    return ds


def _dump(d: dict) -> str:
    import json

    return json.dumps(d, default=str)
