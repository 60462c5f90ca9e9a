"""Command line.

``pvsim run CASE.toml -o OUT.nc``: run a case file, write NetCDF.
``pvsim mesh GENERATOR --param value ... -o FILE.msh``: build a device mesh by name
(``pvsim mesh --list``; ``pvsim mesh GENERATOR --help`` lists its parameters).
``pvsim materials [NAME]``: the material library, or one entry with its sources.
"""

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


def _value(text: str):
    """A command-line value read as a TOML value (numbers, true/false, arrays), else as text."""
    import tomllib

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _mesh(args, extra: list[str]) -> int:
    from rich.console import Console

    from .geometry import mesh_quality, region_measure
    from .geometry.registry import describe, generate, generators

    console = Console(stderr=True)
    if args.list or args.generator is None:
        for name, fn in sorted(generators().items()):
            first = (fn.__doc__ or "").strip().splitlines()[0]
            console.print(f"[bold]{name}[/]: {first}", highlight=False)
        return 0
    if args.help_generator:
        try:
            print(describe(args.generator))
        except ValueError as exc:
            console.print(f"[bold red]error:[/] {exc}", highlight=False)
            return 2
        return 0
    params, key = {}, None
    for tok in extra:
        if tok.startswith("--"):
            if key is not None:
                console.print(f"[bold red]error:[/] parameter --{key} has no value", highlight=False)
                return 2
            key, _, val = tok[2:].replace("-", "_").partition("=")
            if val:
                params[key], key = _value(val), None
        elif key is None:
            console.print(f"[bold red]error:[/] unexpected argument '{tok}' (parameters are "
                          "--name value)", highlight=False)
            return 2
        else:
            params[key], key = _value(tok), None
    if key is not None:
        console.print(f"[bold red]error:[/] parameter --{key} has no value", highlight=False)
        return 2
    out = Path(args.output or f"{args.generator}.msh")
    try:
        mesh = generate(args.generator, params, msh_path=out)
    except ValueError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        return 2
    console.print(f"wrote {out}: {mesh.summary()}", highlight=False)
    if mesh.dim > 1:
        q = mesh_quality(mesh)
        console.print(f"quality: min angle {q['min_angle_deg']:.1f} deg, max {q['max_angle_deg']:.1f} "
                      f"deg, {q['negative_edges']} edge(s) with negative EAFE weight", highlight=False)
    unit = "m^3" if mesh.dim == 3 or mesh.axisymmetric else f"m^{mesh.dim}"
    for r in mesh.regions:
        console.print(f"  {r:>12s}: {region_measure(mesh, r):.6e} {unit}", highlight=False)
    if mesh.shape:
        console.print(f"shape parameters: {', '.join(mesh.shape)}", highlight=False)
    return 0


def _materials(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from . import library

    console = Console()
    if args.name is None:
        table = Table("material", "kind", "description", title="pvsim material library")
        for name in library.list_materials():
            e = library.material_entry(name)
            table.add_row(name, e.get("kind", ""), e.get("description", ""))
        console.print(table)
        console.print("contacts (work function, eV): " + ", ".join(
            f"{c} {library.contact_work_function(c):g}" for c in library.list_contacts()))
        return 0
    try:
        e = library.material_entry(args.name)
    except ValueError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        return 2
    table = Table("key", "value", "confidence", "source", title=f"{e['name']}: {e.get('description', '')}")
    for key, q in e.items():
        if isinstance(q, dict) and "value" in q:
            table.add_row(key, f"{q['value']:g}" if isinstance(q["value"], float) else str(q["value"]),
                          q.get("confidence", ""), q.get("citation", q.get("source", "")))
    console.print(table)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="pvsim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a case file and write the results as NetCDF")
    run.add_argument("case", help="case file (TOML)")
    run.add_argument("-o", "--output", help="output NetCDF file (default: CASE.nc in the working directory)")
    run.add_argument("-q", "--quiet", action="store_true", help="no per-bias progress lines")
    mesh = sub.add_parser(
        "mesh", add_help=False, help="build a device mesh with a named generator and write .msh",
        description="Build a mesh with a pvsim.geometry generator: pvsim mesh GENERATOR --param value "
                    "... -o FILE.msh. Values are TOML values (9.5, true, \"cube\", [[\"htl\", 30]]). "
                    "Lengths are in the generator's length_unit (nm by default).")
    mesh.add_argument("generator", nargs="?", help="generator name (see --list)")
    mesh.add_argument("-o", "--output", help="output .msh file (default: GENERATOR.msh)")
    mesh.add_argument("--list", action="store_true", help="list the generators")
    mesh.add_argument("-h", "--help", dest="help_generator", action="store_true",
                      help="show the generator's parameters (or this help without a generator)")
    mats = sub.add_parser("materials", help="list the material library, or show one entry with sources")
    mats.add_argument("name", nargs="?", help="material name (any case; aliases accepted)")
    args, extra = parser.parse_known_args(argv)
    if args.command == "materials":
        return _materials(args)
    if args.command == "mesh":
        if args.help_generator and args.generator is None:
            mesh.print_help()
            return 0
        return _mesh(args, extra)
    if extra:
        parser.error(f"unrecognised arguments: {' '.join(extra)}")
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
