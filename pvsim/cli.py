"""Command line: ``pvsim run CASE.toml -o OUT.nc``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _run(args) -> int:
    from rich.console import Console

    from .api import run_case
    from .case import CaseError
    from .mesh import MeshError
    from .sweep import SweepFailure

    console = Console(stderr=True)
    out = Path(args.output) if args.output else Path(args.case).with_suffix(".nc").name

    def progress(i, r):
        v = " ".join(f"{x:+.3f}" for x in r.observables["voltage"])
        cur = " ".join(f"{x:+.4e}" for x in r.observables["current"])
        console.print(f"[{i:3d}] V = {v} V   I = {cur}   {r.iterations:2d} it {r.factorizations:2d} LU "
                      f"{r.wall_time * 1e3:7.1f} ms", highlight=False)

    try:
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            ds = run_case(args.case, output=out, progress=None if args.quiet else progress)
    except (CaseError, MeshError, SweepFailure, ValueError) as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        return 2
    for w in caught:
        console.print(f"[bold yellow]sweep stopped:[/] {w.message}", highlight=False)
    console.print(f"wrote {out} ({ds.sizes['bias']} bias points, current in {ds.attrs['current_units']})")
    return 1 if ds.attrs["status"] != "complete" else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="pvsim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a case file and write the results as NetCDF")
    run.add_argument("case", help="case file (TOML)")
    run.add_argument("-o", "--output", help="output NetCDF file (default: CASE.nc in the working directory)")
    run.add_argument("-q", "--quiet", action="store_true", help="no per-bias progress lines")
    args = parser.parse_args(argv)
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
