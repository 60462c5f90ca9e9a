"""Parameter sweeps over case keys (device studies), on dask.distributed, with checkpoints.

A sweep takes a case file and parameters that name case keys by dotted path
(``materials.eml.mu_n_cm2_Vs``, ``mesh.layers.0.thickness_nm``, ``geometry.shell_thickness``;
a bare key such as ``temperature_K`` is accepted when it names exactly one key of the case)
with values ``start:stop:step`` (stop included), ``log:start:stop:count``, a comma list or one
value. Members are the product of the parameters (``mode="product"``, each parameter a
dimension of the result) or an explicit list (``mode="list"``, one ``member`` dimension).
Every member is validated by :func:`pvsim.case.load_case` before anything runs, so a bad key or
value fails at once with the field named. Each member is a normal bias sweep (the case's
[sweep]); results merge into one ``xarray.Dataset`` of dimensions (swept parameters..., bias,
node, ...).

Members that share a mesh (their [mesh]/[geometry] sections are equal) form one task, run on
one worker on one compiled device (:mod:`pvsim.campaign_worker`); tasks are spread over
dask.distributed workers: an embedded ``LocalCluster`` by default, a running scheduler by
address, or ``"serial"`` (this process, no dask). Everything is checkpointed in the output
directory as it completes (:mod:`pvsim.campaign_store`); ``resume=True`` skips what is done.
See docs/sweeps.md.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import time
import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from .campaign_store import Store, merge, read_json, write_json, write_merged


class SweepDefinitionError(ValueError):
    """A sweep that cannot run as defined; the message names the parameter and the fix."""


# --------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class Parameter:
    key: str  # dotted path into the case ("materials.eml.mu_n_cm2_Vs", "mesh.layers.0.thickness_nm")
    values: tuple


def _scalar(text: str):
    """One value as TOML reads it (numbers, true/false, "quoted", [arrays]), else a bare word."""
    text = text.strip()
    if not text:
        raise SweepDefinitionError("empty value")
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.+-]*", text) and text.lower() not in ("nan", "inf"):
            return text
        raise SweepDefinitionError(f"'{text}' is not a number, true/false or a name") from None
    items = value if isinstance(value, list) else [value]
    if any(isinstance(v, float) and not math.isfinite(v) for v in items):
        raise SweepDefinitionError(f"'{text}' is not a finite number")
    if isinstance(value, dict):
        raise SweepDefinitionError(f"'{text}': a value is a number, true/false, text or an array, "
                                   "not a table")
    return value


def _split(text: str) -> list[str]:
    """Split at commas outside [brackets] and "quotes"."""
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return parts + [text[start:]]


def _clean(x: float) -> float:
    return float(f"{x:.12g}")  # 1 + 3 * 0.1 -> 1.3, not 1.3000000000000003


def parse_values(text: str) -> tuple:
    """``start:stop:step`` (stop included; a descending range takes a positive step),
    ``log:start:stop:count`` (count values, geometric), ``a,b,c`` or a single value (TOML
    values: ``[0.2, 0.4],[0.2, 0.6]`` are two arrays)."""
    text = text.strip()
    if text.startswith("log:"):
        parts = text[4:].split(":")
        if len(parts) != 3:
            raise SweepDefinitionError(f"'{text}': a log range is log:start:stop:count, e.g. log:1e16:1e19:4")
        a, b, n = (_scalar(p) for p in parts)
        if not (isinstance(a, (int, float)) and isinstance(b, (int, float)) and a > 0 and b > 0):
            raise SweepDefinitionError(f"'{text}': a log range needs positive start and stop")
        if not (isinstance(n, int) and not isinstance(n, bool) and n >= 2):
            raise SweepDefinitionError(f"'{text}': the count of a log range is an integer >= 2")
        return tuple(_clean(a * (b / a) ** (k / (n - 1))) for k in range(n))
    if ":" in text and not any(c in text for c in "[\"'"):
        parts = text.split(":")
        if len(parts) != 3:
            raise SweepDefinitionError(f"'{text}': a range is start:stop:step, e.g. 1:4:0.5 (stop included)")
        a, b, step = (_scalar(p) for p in parts)
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b, step)):
            raise SweepDefinitionError(f"'{text}': start, stop and step of a range are numbers")
        if step <= 0:
            raise SweepDefinitionError(f"'{text}': the step must be > 0 (a range from a high start to a "
                                       "low stop counts down by it)")
        steps = abs(b - a) / step
        if abs(steps - round(steps)) > 1e-9 * max(1.0, steps):
            raise SweepDefinitionError(f"'{text}': stop - start = {b - a:g} is not a whole number of "
                                       f"steps of {step:g}")
        if round(steps) > 100_000:
            raise SweepDefinitionError(f"'{text}': {round(steps) + 1} values; a sweep dimension is "
                                       "at most 100001")
        sign = 1 if b >= a else -1
        if all(isinstance(x, int) for x in (a, b, step)):
            return tuple(a + sign * k * step for k in range(round(steps) + 1))
        return tuple(_clean(a + sign * k * step) for k in range(round(steps) + 1))
    values = tuple(_scalar(v) for v in _split(text))
    if len(set(map(repr, values))) != len(values):
        raise SweepDefinitionError(f"'{text}': a value is repeated")
    return values


def parse_parameter(spec: str) -> Parameter:
    """``KEY=VALUES`` from the command line (see :func:`parse_values`)."""
    key, eq, values = spec.partition("=")
    if not eq or not key.strip():
        raise SweepDefinitionError(f"--param '{spec}': write KEY=VALUES, e.g. "
                                   "materials.eml.mu_n_cm2_Vs=1:10:3 or temperature_K=250,300")
    try:
        return Parameter(key.strip(), parse_values(values))
    except SweepDefinitionError as exc:
        raise SweepDefinitionError(f"--param {key.strip()}: {exc}") from None


# --------------------------------------------------------------------------- case keys
def split_key(key: str) -> tuple:
    """``"mesh.layers[0].thickness_nm"`` or ``"mesh.layers.0.thickness_nm"`` -> path tuple."""
    parts = []
    for piece in re.sub(r"\[(\d+)\]", r".\1", key).split("."):
        if piece == "":
            raise SweepDefinitionError(f"parameter '{key}': empty part in the dotted key")
        parts.append(int(piece) if piece.isdigit() else piece)
    return tuple(parts)


def _leaves(data, prefix=()):
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _leaves(v, prefix + (k,))
    elif isinstance(data, list) and any(isinstance(v, dict) for v in data):
        for i, v in enumerate(data):
            yield from _leaves(v, prefix + (i,))
    else:
        yield prefix


def _dotted(path: tuple) -> str:
    return ".".join(str(p) for p in path)


def resolve_key(data: dict, key: str) -> tuple:
    """The path of ``key`` in the case dict; a bare key must name exactly one existing key."""
    from .case import SimulationSection, SolverSection

    path = split_key(key)
    if len(path) == 1 and path[0] not in data:
        hits = [p for p in _leaves(data) if p and p[-1] == path[0]]
        if not hits:  # keys of the one-of-a-kind sections, even when the case leaves them out
            hits = [(section, path[0]) for section, model in (("simulation", SimulationSection),
                                                               ("solver", SolverSection))
                    if path[0] in model.model_fields]
        if len(hits) == 1:
            return hits[0]
        if hits:
            raise SweepDefinitionError(f"parameter '{key}' is ambiguous: it could be "
                                       f"{', '.join(_dotted(h) for h in hits)}; give the dotted path")
        raise SweepDefinitionError(f"parameter '{key}': the case has no key '{key}'; give the dotted "
                                   "path, e.g. materials.NAME.mu_n_cm2_Vs or mesh.layers.0.thickness_nm")
    node = data
    for depth, part in enumerate(path[:-1]):
        where = _dotted(path[:depth + 1])
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                n = len(node) if isinstance(node, list) else 0
                raise SweepDefinitionError(f"parameter '{key}': '{where}' is not an entry of the case "
                                           f"({_dotted(path[:depth]) or 'case'} has {n} list entries)")
            node = node[part]
        elif isinstance(node, dict):
            node = node.get(part, {})
        else:
            raise SweepDefinitionError(f"parameter '{key}': '{_dotted(path[:depth])}' is a value, "
                                       "not a table")
    if not isinstance(node, dict) or isinstance(path[-1], int):
        raise SweepDefinitionError(f"parameter '{key}': '{_dotted(path[:-1])}' is not a table")
    if path == ("geometry", "save_msh"):
        raise SweepDefinitionError("parameter 'geometry.save_msh' cannot be swept (members never write "
                                   "meshes outside the output directory)")
    return path


def set_key(data: dict, path: tuple, value) -> None:
    """Set ``data[path] = value`` in place, creating missing tables."""
    node = data
    for part in path[:-1]:
        node = node[part] if isinstance(part, int) else node.setdefault(part, {})
    node[path[-1]] = value


def _parameter_only(key: str) -> bool:
    """Whether a case key changes only the parameters of a compiled device (not its mesh,
    scales or structure), so members that differ in it can share one compiled device:
    material numbers, doping, contact work functions and velocities, interface and heat
    coefficients, and the bias list. Anything else (temperature, mesh, statistics, solver
    options ...) gets its own task. Checked again on the worker before a device is shared."""
    path = split_key(key)
    head, last = path[0], path[-1]
    if head == "sweep":
        return True
    if head == "materials":
        return last not in ("kind", "statistics", "base")
    if head == "regions":
        return last in ("donors_cm3", "acceptors_cm3", "position_nm", "center_nm", "sigma_nm")
    if head == "contacts":
        return last in ("work_function_eV", "barrier_eV", "s_n_cm_s", "s_p_cm_s")
    if head == "interfaces":
        return last not in ("regions", "model", "velocity", "organic_region", "thermal_conductance_MW_m2K")
    if head == "heat":
        return last in ("escape_fraction", "temperature_K", "h_W_m2K") or path[:2] == ("heat", "sources_W_m3")
    return False


# --------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class Member:
    name: str
    values: dict  # parameter key -> value
    case: dict  # the member's case (plain TOML data)
    task_key: str  # members with the same key share a mesh and a compiled device: one task


@dataclass
class Sweep:
    """A validated sweep definition."""

    case_file: str
    case_text: str
    base_dir: str
    mode: str  # "product" | "list"
    parameters: list[Parameter]
    members: list[Member] = field(default_factory=list)

    def definition(self) -> dict:
        """What ``resume`` compares: the case and the sweep, not where it runs."""
        return {"case_text": self.case_text, "mode": self.mode,
                "parameters": [{"key": p.key, "values": list(p.values)} for p in self.parameters],
                "members": [{"name": m.name, "values": m.values} for m in self.members]}

    def manifest(self, fmt: str) -> dict:
        return {**self.definition(), "pvsim_version": __version__, "case_file": self.case_file,
                "base_dir": self.base_dir, "format": fmt}


def plan_sweep(case: str | Path, parameters: list[Parameter] | None = None, *, mode: str = "product",
               members: list[dict] | None = None) -> Sweep:
    """Members of a sweep over ``parameters`` (product or, with ``mode="list"``, zipped:
    equal lengths), or over an explicit list ``members`` of ``{key: value}`` dicts; every
    member's case is validated here."""
    from .case import CaseError, load_case

    path = Path(case)
    if not path.exists():
        raise SweepDefinitionError(f"case file '{path}' not found")
    text = path.read_text()
    try:
        base = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SweepDefinitionError(f"{path}: not valid TOML ({exc})") from None
    base_dir = str(path.resolve().parent)
    if members is not None:
        mode = "list"
        keys = list(dict.fromkeys(k for m in members for k in m))
        if any(set(m) != set(keys) for m in members):
            raise SweepDefinitionError("every member of an explicit list sets the same keys")
        parameters = [Parameter(k, tuple(m[k] for m in members)) for k in keys]
    parameters = list(parameters or [])
    if not parameters:
        raise SweepDefinitionError("a sweep needs at least one parameter (--param KEY=VALUES)")
    paths = [resolve_key(base, p.key) for p in parameters]
    parameters = [Parameter(_dotted(pa), p.values) for pa, p in zip(paths, parameters)]
    if len({p.key for p in parameters}) != len(parameters):
        raise SweepDefinitionError("a case key is swept twice: " + ", ".join(p.key for p in parameters))
    if mode == "product":
        combos = [()]
        for p in parameters:
            combos = [c + (v,) for c in combos for v in p.values]
    elif mode == "list":
        lengths = {len(p.values) for p in parameters}
        if len(lengths) != 1:
            counts = ", ".join(f"{p.key}: {len(p.values)}" for p in parameters)
            raise SweepDefinitionError("a zipped/listed sweep needs the same number of values for every "
                                       f"parameter: {counts}")
        combos = list(zip(*(p.values for p in parameters)))
    else:
        raise SweepDefinitionError(f"mode '{mode}' unknown: 'product' or 'list'")
    width = max(4, len(str(len(combos) - 1)))
    out = []
    for k, combo in enumerate(combos):
        data = copy.deepcopy(base)
        for pa, v in zip(paths, combo):
            set_key(data, pa, v)
        if isinstance(data.get("geometry"), dict):
            data["geometry"].pop("save_msh", None)  # members write only inside the output directory
        values = {p.key: v for p, v in zip(parameters, combo)}
        name = f"m{k:0{width}d}"
        try:
            load_case(data, base_dir)
        except CaseError as exc:
            shown = ", ".join(f"{key} = {v!r}" for key, v in values.items())
            raise SweepDefinitionError(f"member {name} ({shown}): {exc}") from None
        compiled = {s: data.get(s) for s in ("mesh", "geometry")}
        compiled["structure"] = {p.key: v for p, v in zip(parameters, combo) if not _parameter_only(p.key)}
        out.append(Member(name, values, data, json.dumps(compiled, sort_keys=True, default=str)))
    return Sweep(str(path), text, base_dir, mode, parameters, out)


# --------------------------------------------------------------------------- running
@dataclass
class SweepRun:
    """What a finished (or partly failed) sweep produced."""

    dataset: object  # xarray.Dataset, every member merged
    path: Path  # the merged file
    records: dict  # member name -> record (status, reason, values, ...)
    skipped: list[str]  # members finished by an earlier run (resume)
    errors: dict  # member name -> infrastructure error (worker lost); no record: resume retries

    @property
    def failures(self) -> dict:
        out = {n: r["reason"] for n, r in self.records.items() if r["status"] != "ok"}
        return {**out, **self.errors}


def run_sweep_campaign(sweep: Sweep, output: str | Path, *, scheduler: str | None = None,
                       workers: int | None = None, processes: bool = True, resume: bool = False,
                       fmt: str = "netcdf", batch: bool = False, progress=None) -> SweepRun:
    """Run ``sweep`` into the directory ``output``.

    ``scheduler``: None (an embedded LocalCluster of ``workers`` workers, processes or
    threads), ``"serial"`` (this process, no dask) or a dask scheduler address. With
    ``resume`` an existing output directory of the same sweep is continued; without it, an
    output directory that already holds a sweep is refused. ``batch``: advance the members of
    each task together with ``jax.vmap`` (:mod:`pvsim.campaign_batch`; for GPUs).
    ``progress(done, total)`` is called as members finish.
    """
    if fmt not in ("netcdf", "zarr"):
        raise SweepDefinitionError(f"format '{fmt}': 'netcdf' or 'zarr'")
    if fmt == "zarr":
        try:
            import zarr  # noqa: F401
        except ImportError:
            raise SweepDefinitionError("--format zarr needs the zarr package: "
                                       "pip install 'pvsim[zarr]'") from None
    root = Path(output)
    if root.exists() and not root.is_dir():
        raise SweepDefinitionError(f"output '{root}' exists and is not a directory")
    root.mkdir(parents=True, exist_ok=True)
    store = Store(root)
    manifest = sweep.manifest(fmt)
    if store.manifest.exists():
        if not resume:
            raise SweepDefinitionError(f"'{root}' already holds a sweep (manifest.json): pass --resume to "
                                       "continue it, or choose a new output directory")
        old = read_json(store.manifest)
        changed = [k for k, v in sweep.definition().items() if old.get(k) != v]
        if changed:
            raise SweepDefinitionError(
                f"--resume: '{root}' holds a different sweep (its {', '.join(changed)} differ from this "
                "one); resume with the same case file and --param values, or use a new output directory")
    write_json(store.manifest, manifest)
    store.claim(uuid.uuid4().hex)
    records = {m.name: r for m in sweep.members if (r := store.record(m.name)) is not None}
    skipped = sorted(records)
    total = len(sweep.members)
    if progress is not None:
        progress(len(records), total)
    groups: dict[str, list[Member]] = {}
    for m in sweep.members:
        if m.name not in records:
            groups.setdefault(m.task_key, []).append(m)
    tasks = [{"root": str(store.root), "token": store.token, "base_dir": sweep.base_dir, "batch": batch,
              "members": [{"name": m.name, "case": m.case, "values": m.values, "task_key": m.task_key}
                          for m in ms]} for ms in groups.values()]
    errors: dict[str, str] = {}
    if tasks:
        if scheduler == "serial":
            _run_serial(tasks, records, total, progress)
        else:
            errors = _run_dask(tasks, store, scheduler, workers, processes, total, progress)
    records = {m.name: r for m in sweep.members if (r := store.record(m.name)) is not None}
    for name in list(errors):
        if name in records:
            errors.pop(name)
    ds = merge(store, manifest, records)
    path = write_merged(ds, store, fmt)
    failures = {n: r["reason"] for n, r in records.items() if r["status"] != "ok"}
    write_json(store.root / "summary.json", {
        "members": total, "ok": sum(r["status"] == "ok" for r in records.values()),
        "stopped": sum(r["status"] == "stopped" for r in records.values()),
        "failed": sum(r["status"] == "failed" for r in records.values()),
        "not_run": sorted(errors), "skipped_on_resume": skipped,
        "failures": {**failures, **errors}, "output": path.name})
    return SweepRun(ds, path, records, skipped, errors)


def _run_serial(tasks, records, total, progress):
    from .campaign_worker import run_task

    done = len(records)

    def tick(record):
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    for task in tasks:
        run_task(task, progress=tick)


def _run_dask(tasks, store: Store, scheduler, workers, processes, total, progress) -> dict:
    """Submit one dask task per mesh group; poll the store for finished members meanwhile."""
    import logging

    from distributed import Client, LocalCluster

    from .campaign_worker import run_task

    cluster = None
    if scheduler is None:
        n = max(1, min(workers or os.cpu_count() or 1, len(tasks)))
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=processes,
                               dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    names = [[m["name"] for m in t["members"]] for t in tasks]
    errors: dict[str, str] = {}
    try:
        futures = [client.submit(run_task, t, pure=False, key=f"pvsim-sweep-{uuid.uuid4().hex[:8]}-{i}")
                   for i, t in enumerate(tasks)]
        pending = [n for ns in names for n in ns]
        last = -1
        while True:
            finished = all(f.done() for f in futures)
            done = total - sum(store.record(n) is None for n in pending)
            if progress is not None and done != last:
                progress(done, total)
                last = done
            if finished:
                break
            time.sleep(0.25)
        for f, ns in zip(futures, names):
            try:
                f.result()
            except Exception as exc:  # noqa: BLE001 - a lost worker or a crash outside a member
                for n in ns:
                    errors[n] = f"task failed on the cluster ({type(exc).__name__}: {exc}); not run, " \
                                "--resume retries it"
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return errors
