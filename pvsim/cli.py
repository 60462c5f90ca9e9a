"""Command line.

``pvsim run CASE.toml -o OUT.nc``: run a case file, write NetCDF.
``pvsim mesh GENERATOR --param value ... -o FILE.msh``: build a device mesh by name
(``pvsim mesh --list``; ``pvsim mesh GENERATOR --help`` lists its parameters).
``pvsim materials [NAME]``: the material library, or one entry with its sources.
``pvsim validate CASE.toml``: check a case without solving; ``pvsim info OUT.nc``: summarise a result.
``pvsim plot OUT.nc --iv --band --map R_rad``: figures; ``pvsim export OUT.nc -o OUT.vtu``: ParaView.
``pvsim sweep CASE.toml --param KEY=VALUES ... -o OUTDIR``: a parameter sweep on dask (docs/sweeps.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _n_targets(case_path) -> int:
    """Number of bias points a case's [sweep] asks for (0 when it cannot be read here)."""
    from .case import load_case

    try:
        sw = load_case(case_path)[0].sweep
    except Exception:  # noqa: BLE001 - reported properly by the run itself
        return 0
    if sw is None:
        return 0
    values = sw.voltage_list()
    if values is None:
        values = sw.currents_A_cm2 or sw.currents_A_m or sw.currents_A or []
    return len(values)


def _summary_table(ds):
    """Rich table of a result: bias, contact voltages and currents, IQE, Newton work, time."""
    from rich.table import Table

    cu = ds.attrs["current_units"]
    table = Table(title=f"{ds.attrs.get('geometry', '')} sweep, {ds.sizes['bias']} bias points "
                        f"({ds.attrs['status']})")
    table.add_column("bias", justify="right")
    driven = [c for c in ds.contact.values if float(abs(ds.voltage.sel(contact=c)).max()) > 0]
    driven = driven or list(ds.contact.values[:1])
    for c in driven:
        table.add_column(f"V {c} (V)", justify="right")
    table.add_column(f"I {driven[0]} ({cu})", justify="right")
    table.add_column("IQE", justify="right")
    if "peak_temperature" in ds:
        table.add_column("T max (K)", justify="right")
    table.add_column("Newton", justify="right")
    table.add_column("ms", justify="right")
    for b in range(ds.sizes["bias"]):
        row = [str(b)] + [f"{float(ds.voltage[b].sel(contact=c)):+.3f}" for c in driven]
        row.append(f"{float(ds.current[b].sel(contact=driven[0])):+.4e}")
        iqe = float(ds.iqe[b])
        row.append("-" if iqe != iqe else f"{iqe:.3f}")
        if "peak_temperature" in ds:
            row.append(f"{float(ds.peak_temperature[b]):.2f}")
        row += [str(int(ds.newton_iterations[b])), f"{float(ds.wall_time[b]) * 1e3:.0f}"]
        table.add_row(*row)
    return table


def _run(args) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .api import run_case
    from .case import CaseError
    from .mesh import MeshError
    from .sweep import SweepFailure

    console = Console(stderr=True)
    out = Path(args.output) if args.output else Path(args.case).with_suffix(".nc").name
    bar = None

    def progress(i, r):
        v = " ".join(f"{x:+.3f}" for x in r.observables["voltage"])
        cur = " ".join(f"{x:+.4e}" for x in r.observables["current"])
        if args.verbose:
            console.print(f"[{i:3d}] V = {v} V   I = {cur}   {r.iterations:2d} it {r.factorizations:2d} LU "
                          f"{r.wall_time * 1e3:7.1f} ms", highlight=False)
        if bar is not None:
            bar.update(task, advance=1, description=f"V = {v} V")

    try:
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            if args.quiet or args.verbose:
                ds = run_case(args.case, output=out, progress=None if args.quiet else progress)
            else:
                with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                              TimeElapsedColumn(), console=console, transient=True) as bar:
                    task = bar.add_task("compiling and solving equilibrium", total=_n_targets(args.case))
                    ds = run_case(args.case, output=out, progress=progress)
    except (CaseError, MeshError, SweepFailure, ValueError) as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        return 2
    for w in caught:
        console.print(f"[bold yellow]sweep stopped:[/] {w.message}", highlight=False)
    if not args.quiet:
        console.print(_summary_table(ds))
    console.print(f"wrote {out} ({ds.sizes['bias']} bias points, current in {ds.attrs['current_units']})")
    return 1 if ds.attrs["status"] != "complete" else 0


def _validate(args) -> int:
    from rich.console import Console

    from .case import CaseError, build_device, load_case, sweep_targets
    from .mesh import MeshError
    from .units import enable_x64

    console = Console(stderr=True)
    enable_x64()
    try:
        case, base = load_case(args.case)
        dev = build_device(case, base)
        targets = sweep_targets(case, dev)
    except (CaseError, MeshError, ValueError) as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        return 2
    out = Console()
    out.print(f"[bold]{case.simulation.name}[/]: {case.simulation.description}", highlight=False)
    out.print(dev.mesh.summary(), highlight=False)
    for region, m in dev.materials.items():
        name = (case.regions[region].material if region in case.regions else None) or "?"
        out.print(f"  {region:>12s}: {name} ({m.kind})", highlight=False)
    out.print("contacts: " + ", ".join(f"{c.name} ({c.kind}, {c.control})" for c in dev.contacts),
              highlight=False)
    out.print(f"{len(targets)} bias point(s); heat {'on' if dev.heat is not None else 'off'}; "
              f"T = {case.simulation.temperature_K:g} K", highlight=False)
    out.print("[green]valid[/]")
    return 0


def _info(args) -> int:
    import xarray as xr
    from rich.console import Console

    console = Console()
    path = Path(args.result)
    if not path.exists():
        Console(stderr=True).print(f"[bold red]error:[/] '{path}' not found")
        return 2
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        first = (ds.attrs.get("case", "") or "").splitlines()
        console.print(f"[bold]{path}[/]: pvsim {ds.attrs.get('pvsim_version', '?')}, "
                      f"{ds.attrs.get('geometry', '?')}, {ds.sizes.get('node', 0)} nodes, "
                      f"regions {ds.attrs.get('regions', '')}", highlight=False)
        if first:
            console.print(f"case: {first[0]}", highlight=False)
        console.print("variables: " + ", ".join(sorted(ds.data_vars)), highlight=False)
        console.print(_summary_table(ds))
    return 0


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


def _plot(args) -> int:
    from rich.console import Console

    from .plots import cli_plot

    console = Console(stderr=True)
    if not (args.iv or args.band or args.map):
        console.print("[bold red]error:[/] say what to plot: --iv, --band and/or --map FIELD")
        return 2
    try:
        paths = cli_plot(args.result, iv=args.iv, band=args.band, maps=tuple(args.map or ()),
                         bias=args.bias, output_dir=args.output_dir, fmt=args.format)
    except (OSError, KeyError, ValueError) as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        return 2
    for p in paths:
        console.print(f"wrote {p}", highlight=False)
    return 0


def _export(args) -> int:
    from rich.console import Console

    from .export import cli_export

    console = Console(stderr=True)
    try:
        path = cli_export(args.result, args.output, bias=args.bias)
    except (OSError, KeyError, ValueError) as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        return 2
    console.print(f"wrote {path} (open it in ParaView)", highlight=False)
    return 0


def _sweep(args) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .campaign import SweepDefinitionError, parse_parameter, plan_sweep, run_sweep_campaign
    from .campaign_store import OutputPathError

    console = Console(stderr=True)
    try:
        params = [parse_parameter(p) for p in args.param or []]
        sweep = plan_sweep(args.case, params, mode="list" if args.zip else "product")
    except (SweepDefinitionError, OutputPathError) as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        return 2
    where = args.scheduler or ("serial" if args.serial else
                               f"local cluster ({'threads' if args.threads else 'processes'})")
    console.print(f"{len(sweep.members)} member(s) in {len({m.task_key for m in sweep.members})} task(s) "
                  "(one per mesh and compiled device); "
                  f"scheduler: {where}", highlight=False)
    scheduler = "serial" if args.serial else args.scheduler
    batch = args.batch
    if batch is None:  # default: vmap batches on a GPU, one member after another elsewhere
        import jax

        batch = jax.default_backend() == "gpu"
    kw = dict(scheduler=scheduler, workers=args.workers, processes=not args.threads,
              resume=args.resume, fmt=args.format, batch=batch)
    try:
        if args.quiet:
            run = run_sweep_campaign(sweep, args.output, **kw)
        else:
            with Progress(TextColumn("members"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=console, transient=True) as bar:
                task = bar.add_task("members", total=len(sweep.members))
                run = run_sweep_campaign(sweep, args.output, **kw,
                                         progress=lambda done, total: bar.update(task, completed=done))
    except (SweepDefinitionError, OutputPathError) as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        return 2
    ok = sum(r["status"] == "ok" for r in run.records.values())
    if run.skipped:
        console.print(f"resumed: {len(run.skipped)} member(s) already done were kept", highlight=False)
    for name, reason in sorted(run.failures.items()):
        member = next(m for m in sweep.members if m.name == name)
        values = ", ".join(f"{k}={v}" for k, v in member.values.items())
        console.print(f"[bold yellow]{name}[/] ({values}): {reason}", highlight=False)
    console.print(f"wrote {run.path}: {ok} of {len(sweep.members)} member(s) ok, "
                  f"{len(run.failures)} failed or stopped", highlight=False)
    return 0 if not run.failures else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="pvsim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a case file and write the results as NetCDF")
    run.add_argument("case", help="case file (TOML)")
    run.add_argument("-o", "--output", help="output NetCDF file (default: CASE.nc in the working directory)")
    noise = run.add_mutually_exclusive_group()
    noise.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary table")
    noise.add_argument("-v", "--verbose", action="store_true",
                       help="one line per bias point (voltages, currents, Newton iterations, time)")
    val = sub.add_parser("validate", help="check a case file without solving",
                         description="Load and check a case file as `run` would, without solving: "
                                     "every error names the key or region and the fix.")
    val.add_argument("case", help="case file (TOML)")
    info = sub.add_parser("info", help="summarise a result file: device, variables, IV table",
                          description="Print what a pvsim NetCDF result holds and its bias table.")
    info.add_argument("result", help="NetCDF file written by pvsim run")
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
    plot = sub.add_parser(
        "plot", help="plot a result: IV curve, band diagram, field maps (PNG or PDF)",
        description="Plot a pvsim result without a display (matplotlib Agg). Examples: "
                    "pvsim plot out.nc --iv --band; pvsim plot out.nc --map R_rad --map temperature "
                    "--bias -1 --format pdf. Maps: tripcolor in 2D and axisymmetric meshes, a "
                    "slice in 3D, a line in 1D.")
    plot.add_argument("result", help="NetCDF file written by pvsim run")
    plot.add_argument("--iv", action="store_true", help="current against voltage (log scale)")
    plot.add_argument("--band", action="store_true",
                      help="band diagram: Ec, Ev and the quasi-Fermi levels along the device")
    plot.add_argument("--map", action="append", metavar="FIELD",
                      help="a node field (n, p, R_rad, temperature, potential, ...); repeat for more")
    plot.add_argument("--bias", type=int, default=-1, help="bias index for band and maps (default: last)")
    plot.add_argument("-d", "--output-dir", default=".", help="where to write the figures")
    plot.add_argument("--format", default="png", choices=["png", "pdf"], help="figure file format")
    export = sub.add_parser("export", help="write a result as VTU or XDMF for ParaView",
                            description="Every node field, the region ids and the mesh, through meshio; "
                                        "the format follows the suffix (.vtu or .xdmf).")
    export.add_argument("result", help="NetCDF file written by pvsim run")
    export.add_argument("-o", "--output", required=True, help="output file, .vtu or .xdmf")
    export.add_argument("--bias", type=int, default=-1, help="bias index (default: last)")
    sweep = sub.add_parser(
        "sweep", help="a parameter sweep (product of case keys) on dask.distributed, checkpointed",
        description="Run a case for every combination of case-key values, on an embedded dask "
                    "LocalCluster (default), a running scheduler (--scheduler ADDRESS) or serially. "
                    "Example: pvsim sweep cases/pn_diode_1d.toml --param regions.n_side.donors_cm3="
                    "log:1e16:1e18:3 --param temperature_K=250:350:50 -o pn_sweep. Values: start:stop:step "
                    "(stop included), log:start:stop:count, a,b,c. See docs/sweeps.md.")
    sweep.add_argument("case", help="case file (TOML)")
    sweep.add_argument("--param", action="append", metavar="KEY=VALUES",
                       help="a swept case key (dotted path, e.g. materials.eml.mu_n_cm2_Vs=1:10:3); repeat")
    sweep.add_argument("-o", "--output", required=True, help="output directory (checkpoints, sweep.nc)")
    sweep.add_argument("--zip", action="store_true",
                       help="an explicit list: the i-th values of every --param form member i "
                            "(equal lengths)")
    sweep.add_argument("--resume", action="store_true",
                       help="continue the sweep in OUTPUT; skip what is done")
    sweep.add_argument("--scheduler", metavar="ADDRESS",
                       help="dask scheduler address (default: an embedded LocalCluster)")
    sweep.add_argument("--workers", type=int,
                       help="LocalCluster workers (default: CPU count, at most one per mesh)")
    sweep.add_argument("--threads", action="store_true",
                       help="LocalCluster workers as threads, not processes")
    sweep.add_argument("--serial", action="store_true", help="run in this process, without dask")
    sweep.add_argument("--batch", action=argparse.BooleanOptionalAction, default=None,
                       help="advance the members of a task together with jax.vmap (default: on when "
                            "JAX runs on a GPU); results agree with the serial path to the Newton tolerance")
    sweep.add_argument("--format", default="netcdf", choices=["netcdf", "zarr"],
                       help="merged output: sweep.nc (NetCDF4) or sweep.zarr")
    sweep.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    args, extra = parser.parse_known_args(argv)
    if args.command == "plot":
        return _plot(args)
    if args.command == "export":
        return _export(args)
    if args.command == "materials":
        return _materials(args)
    if args.command == "validate":
        return _validate(args)
    if args.command == "info":
        return _info(args)
    if args.command == "sweep":
        if extra:
            parser.error(f"unrecognised arguments: {' '.join(extra)}")
        return _sweep(args)
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
