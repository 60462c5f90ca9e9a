"""Parameter sweeps (pvsim.campaign): definitions, dask LocalCluster against serial runs,
checkpoints and resume after a crash or SIGKILL.

One small 1D diode (21 nodes, two bias points) is used throughout; its two meshes are compiled
once in this process (the worker's device cache) and reused by every serial run here.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from pvsim.campaign import (SweepDefinitionError, parse_parameter, parse_values, plan_sweep, resolve_key,
                            run_sweep_campaign)
from pvsim.campaign_store import OutputPathError, Store, inside, write_json

CASE = """
[simulation]
name = "sweep_test_pn"

[mesh]
left_contact = "anode"
right_contact = "cathode"

[[mesh.layers]]
region = "p_side"
material = "silicon"
thickness_nm = 200
spacing_nm = 20

[[mesh.layers]]
region = "n_side"
material = "silicon"
thickness_nm = 200
spacing_nm = 20

[materials.silicon]
eps_r = 11.1
electron_affinity_eV = 4.05
intrinsic_density_cm3 = 1e10
mu_n_cm2_Vs = 400
mu_p_cm2_Vs = 200
tau_n_s = 1e-7
tau_p_s = 1e-7

[regions.p_side]
acceptors_cm3 = 1e17

[regions.n_side]
donors_cm3 = 1e17

[contacts.anode]
type = "ohmic"

[contacts.cathode]
type = "ohmic"

[sweep]
contact = "anode"
voltages_V = [0.2, 0.4]
"""
THICKNESS = "mesh.layers.0.thickness_nm=150,200"  # two meshes
DONORS = "regions.n_side.donors_cm3=1e16,1e17,1e18"  # three members per mesh
TIMING = ["wall_time"]  # the only variable that differs between identical runs


@pytest.fixture(scope="module")
def case_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("case") / "pn.toml"
    path.write_text(CASE)
    return path


@pytest.fixture(scope="module")
def serial(case_file, tmp_path_factory):
    """The 2x3 sweep run serially in this process (the reference)."""
    sweep = plan_sweep(case_file, [parse_parameter(THICKNESS), parse_parameter(DONORS)])
    return run_sweep_campaign(sweep, tmp_path_factory.mktemp("serial") / "out", scheduler="serial")


def _same(a: xr.Dataset, b: xr.Dataset):
    xr.testing.assert_identical(a.drop_vars(TIMING), b.drop_vars(TIMING))


# --------------------------------------------------------------------------- definitions
def test_values_ranges_lists_and_logs():
    assert parse_values("1:4:0.5") == (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0)  # stop included
    assert parse_values("0.1:0.3:0.1") == (0.1, 0.2, 0.3)  # no 0.30000000000000004
    assert parse_values("3:1:1") == (3, 2, 1)
    assert parse_values("log:1e16:1e18:3") == (1e16, 1e17, 1e18)
    assert parse_values('1e17, 2e17,"x", cube') == (1e17, 2e17, "x", "cube")
    assert parse_values('[0.2, 0.4],[0.2, 1e4]') == ([0.2, 0.4], [0.2, 1e4])  # arrays (a bias list)
    assert parse_values('"a:b"') == ("a:b",)
    for bad, msg in [("1:2:0.3", "whole number"), ("1:2:0", "step must be > 0"), ("1:2", "start:stop:step"),
                     ("log:0:1:3", "positive"), ("1,1", "repeated"), ("nan", "finite"), ("1,", "empty")]:
        with pytest.raises(SweepDefinitionError, match=msg):
            parse_values(bad)
    with pytest.raises(SweepDefinitionError, match="KEY=VALUES"):
        parse_parameter("temperature_K")


def test_keys_resolve_by_dotted_path_or_unique_bare_name(case_file):
    import tomllib

    data = tomllib.loads(case_file.read_text())
    assert resolve_key(data, "mesh.layers[1].thickness_nm") == ("mesh", "layers", 1, "thickness_nm")
    assert resolve_key(data, "mu_n_cm2_Vs") == ("materials", "silicon", "mu_n_cm2_Vs")
    assert resolve_key(data, "temperature_K") == ("simulation", "temperature_K")  # a default, not in the file
    with pytest.raises(SweepDefinitionError, match="no key 'temperature'"):
        resolve_key(data, "temperature")
    with pytest.raises(SweepDefinitionError, match="ambiguous.*mesh.layers.0.thickness_nm"):
        resolve_key(data, "thickness_nm")
    with pytest.raises(SweepDefinitionError, match="mesh.layers.5.*2 list entries"):
        resolve_key(data, "mesh.layers.5.thickness_nm")
    with pytest.raises(SweepDefinitionError, match="save_msh"):
        resolve_key({"geometry": {}}, "geometry.save_msh")


def test_bad_members_fail_before_running_with_the_field_named(case_file):
    with pytest.raises(SweepDefinitionError, match=r"member m0001 .*'materials.silicon.eps_r' = -1"):
        plan_sweep(case_file, [parse_parameter("materials.silicon.eps_r=2,-1")])
    with pytest.raises(SweepDefinitionError, match="unknown key 'materials.silicon.mu_n'"):
        plan_sweep(case_file, [parse_parameter("materials.silicon.mu_n=1,2")])
    with pytest.raises(SweepDefinitionError, match="unknown key 'simulation.temperature'.*temperature_K"):
        plan_sweep(case_file, [parse_parameter("simulation.temperature=300")])
    zipped = plan_sweep(case_file, [parse_parameter("materials.silicon.mu_n_cm2_Vs=300,400"),
                                    parse_parameter("regions.n_side.donors_cm3=1e16,1e17")], mode="list")
    assert [m.values for m in zipped.members] == [
        {"materials.silicon.mu_n_cm2_Vs": 300, "regions.n_side.donors_cm3": 1e16},
        {"materials.silicon.mu_n_cm2_Vs": 400, "regions.n_side.donors_cm3": 1e17}]
    assert len({m.task_key for m in zipped.members}) == 1  # parameters only: one compiled device
    temperatures = plan_sweep(case_file, [parse_parameter("temperature_K=250,300")])
    assert len({m.task_key for m in temperatures.members}) == 2  # the scales change: two


def test_output_paths_stay_inside(tmp_path):
    root = tmp_path / "out"
    root.mkdir()
    assert inside(root, "members", "m0001.nc") == root.resolve() / "members" / "m0001.nc"
    for bad in ["../x", "/etc/passwd", "members/../../x", "a\\b", ""]:
        with pytest.raises(OutputPathError):
            inside(root, bad)
    (root / "members").symlink_to(tmp_path)  # a link planted to escape
    with pytest.raises(OutputPathError, match="outside the output directory"):
        inside(root, "members", "m0001.nc")


def test_claim_drops_point_files_of_a_member_killed_after_its_record(tmp_path):
    """A kill between a member's record and the removal of its point files (finish_member's last
    two steps) leaves both; the next owner removes the points of finished members only."""
    store = Store(tmp_path / "out")
    for name in ("m0000", "m0001"):
        store.partial_dir(name).mkdir(parents=True)
        store.point_file(name, None).write_bytes(b"x")
    store.record_file("m0000").parent.mkdir(parents=True)
    write_json(store.record_file("m0000"), {"ok": True, "has_data": False})
    store.claim("t2")
    assert not store.partial_dir("m0000").exists()
    assert store.point_file("m0001", None).exists()  # unfinished: its points are what resume uses


# --------------------------------------------------------------------------- dask
def test_local_cluster_two_workers_equals_serial(serial, case_file, tmp_path):
    """2x3 sweep on a LocalCluster of 2 worker processes: every number equals the serial run."""
    from pvsim.api import run_case

    sweep = plan_sweep(case_file, [parse_parameter(THICKNESS), parse_parameter(DONORS)])
    assert len({m.task_key for m in sweep.members}) == 2  # two tasks, one per mesh
    seen = []
    run = run_sweep_campaign(sweep, tmp_path / "out", workers=2, processes=True,
                             progress=lambda done, total: seen.append(done))
    assert seen[-1] == 6 and not run.failures
    ds = xr.open_dataset(run.path, engine="h5netcdf").load()
    _same(ds, serial.dataset)
    assert ds.sizes["mesh.layers.0.thickness_nm"] == 2 and ds.sizes["regions.n_side.donors_cm3"] == 3
    assert (ds.member_status == "ok").all()
    # and a member equals the plain `pvsim run` of its case, to the Newton tolerance
    one = plan_sweep(case_file, [parse_parameter(THICKNESS), parse_parameter(DONORS)]).members[2]
    ref = run_case(one.case, base_dir=case_file.parent)
    got = ds.isel({"mesh.layers.0.thickness_nm": 0, "regions.n_side.donors_cm3": 2})
    n = ref.sizes["node"]
    np.testing.assert_allclose(got.potential.values[:, :n], ref.potential.values, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.current.values, ref.current.values, rtol=1e-8, atol=1e-12)
    np.testing.assert_array_equal(got.newton_iterations.values, ref.newton_iterations.values)


# --------------------------------------------------------------------------- checkpoints
class _Killed(BaseException):
    """Stands for a kill right after a checkpoint was written."""


def test_crash_after_a_bias_point_resumes_exactly(serial, case_file, tmp_path, monkeypatch):
    """Stop right after the 5th point file (member 1's first bias point); resume: member 0 is
    kept as it is, member 1 continues from its saved points, and everything equals the run
    that never stopped, bit for bit."""
    sweep = plan_sweep(case_file, [parse_parameter("mesh.layers.0.thickness_nm=200"),
                                   parse_parameter(DONORS)])
    saves = []
    original = Store.save_point

    def save_then_die(self, name, index, point, start):
        original(self, name, index, point, start)
        saves.append((name, index))
        if len(saves) == 5:
            raise _Killed

    out = tmp_path / "out"
    monkeypatch.setattr(Store, "save_point", save_then_die)
    with pytest.raises(_Killed):
        run_sweep_campaign(sweep, out, scheduler="serial")
    assert saves == [("m0000", None), ("m0000", 0), ("m0000", 1), ("m0001", None), ("m0001", 0)]
    assert sorted(p.name for p in (out / "members").glob("*.json")) == ["m0000.json"]
    assert sorted(p.name for p in (out / "partial" / "m0001").iterdir()) == ["b0000.npz", "eq.npz"]
    kept = (out / "members" / "m0000.nc").stat()
    with pytest.raises(SweepDefinitionError, match="already holds a sweep"):
        run_sweep_campaign(sweep, out, scheduler="serial")
    saves.clear()
    run = run_sweep_campaign(sweep, out, scheduler="serial", resume=True)
    # nothing converged was recomputed: member 1 solves only its last point, member 2 all
    assert saves == [("m0001", 1), ("m0002", None), ("m0002", 0), ("m0002", 1)]
    assert run.skipped == ["m0000"]
    after = (out / "members" / "m0000.nc").stat()
    assert (after.st_ino, after.st_mtime_ns) == (kept.st_ino, kept.st_mtime_ns)
    ref = serial.dataset.sel({"mesh.layers.0.thickness_nm": [200]})
    for name, var in run.dataset.data_vars.items():
        if "bias" in var.dims and name not in TIMING:
            xr.testing.assert_identical(var, ref[name])
    # a different definition is refused on resume
    other = plan_sweep(case_file, [parse_parameter("mesh.layers.0.thickness_nm=200"),
                                   parse_parameter("regions.n_side.donors_cm3=1e16,1e17")])
    with pytest.raises(SweepDefinitionError, match="holds a different sweep.*parameters"):
        run_sweep_campaign(other, out, scheduler="serial", resume=True)


def test_failed_member_is_recorded_and_the_sweep_goes_on(case_file, tmp_path):
    """A member whose bias point cannot converge keeps its converged points and its reason;
    the others run; the summary lists the failure."""
    # a bias of 10 kV cannot be reached: one member's sweep asks for it (an explicit list)
    sweep = plan_sweep(case_file, members=[{"sweep.voltages_V": [0.2, 0.4]}, {"sweep.voltages_V": [0.2, 1e4]},
                                           {"sweep.voltages_V": [0.4]}])
    try:  # Zarr output when the optional extra is installed (pip install 'pvsim[zarr]')
        import zarr  # noqa: F401
        fmt = "zarr"
    except ImportError:
        fmt = "netcdf"
    run = run_sweep_campaign(sweep, tmp_path / "out", scheduler="serial", fmt=fmt)
    status = [run.records[m]["status"] for m in ("m0000", "m0001", "m0002")]
    saved = (xr.open_zarr(tmp_path / "out" / "sweep.zarr", consolidated=False) if fmt == "zarr"
             else xr.open_dataset(tmp_path / "out" / "sweep.nc", engine="h5netcdf")).load()
    assert list(saved.member_status.values) == status
    assert status == ["ok", "stopped", "ok"]
    assert "bias point 1" in run.failures["m0001"] and "step halving" in run.failures["m0001"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["stopped"] == 1 and set(summary["failures"]) == {"m0001"}
    ds = run.dataset
    assert list(ds.member_status.values) == status
    assert np.isfinite(ds.current.isel(member=1, bias=1)).all()  # the converged 0.2 V point is kept
    assert np.isnan(ds.current.isel(member=1, bias=2)).all()  # padding where it stopped
    assert np.isnan(ds.current.isel(member=2, bias=2)).all()  # a shorter member is padded too


def test_sigkill_then_resume(serial, case_file, tmp_path, capsys):
    """`pvsim sweep` (a subprocess, dask threads) killed with SIGKILL as soon as a member has
    finished; `pvsim sweep --resume` (here in-process and serial, reusing this process's compiled
    device) keeps the finished members' files untouched and the merged result equals an
    uninterrupted run."""
    from pvsim.cli import main

    params = ["mesh.layers.0.thickness_nm=200", "regions.n_side.donors_cm3=log:1e16:1e18:6"]
    out = tmp_path / "out"
    args = ["sweep", str(case_file), "-o", str(out), "-q"] + [a for p in params for a in ("--param", p)]
    cmd = [sys.executable, "-m", "pvsim.cli"] + args + ["--threads", "--workers", "1"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 120
    records = []
    while time.monotonic() < deadline and proc.poll() is None:
        records = sorted((out / "members").glob("m*.json")) if (out / "members").exists() else []
        if records:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stdout.read().decode()[-2000:]
    finished = sorted((out / "members").glob("m*.json"))
    assert 1 <= len(finished) < 6, "the kill came too late to test anything"
    files = finished + [f.with_suffix(".nc") for f in finished]
    before = {f: (f.stat().st_ino, f.stat().st_mtime_ns, f.stat().st_size) for f in files}
    capsys.readouterr()
    assert main(args + ["--serial", "--resume"]) == 0
    assert f"resumed: {len(finished)} member(s)" in capsys.readouterr().err
    after = {f: (f.stat().st_ino, f.stat().st_mtime_ns, f.stat().st_size) for f in files}
    assert after == before  # nothing finished was rewritten
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ok"] == 6 and summary["skipped_on_resume"] == [f.stem for f in finished]
    assert not list(out.glob("partial/*/*")) and not list(out.glob("members/.*.tmp"))
    reference = run_sweep_campaign(plan_sweep(case_file, [parse_parameter(p) for p in params]),
                                   tmp_path / "reference", scheduler="serial")
    _same(xr.open_dataset(out / "sweep.nc", engine="h5netcdf").load(), reference.dataset)
    assert Path(out / "manifest.json").exists()


@pytest.mark.slow
def test_batched_members_agree_with_serial(serial, case_file, tmp_path):
    """--batch (jax.vmap over the members of a task) gives the serial numbers to the Newton
    tolerance, and checkpoints like the serial path."""
    sweep = plan_sweep(case_file, [parse_parameter(THICKNESS), parse_parameter(DONORS)])
    run = run_sweep_campaign(sweep, tmp_path / "out", scheduler="serial", batch=True)
    assert not run.failures
    ref = serial.dataset
    for name in ("potential", "Ec", "n", "p"):
        np.testing.assert_allclose(run.dataset[name].values, ref[name].values, rtol=1e-9, atol=1e-12 * float(
            np.nanmax(np.abs(ref[name].values))))
    np.testing.assert_allclose(run.dataset.current.values, ref.current.values, rtol=1e-8, atol=1e-9)
    assert not list((tmp_path / "out").glob("partial/*/*"))
