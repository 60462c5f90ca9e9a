"""Tutorial 3: a dielectric micro-aperture that funnels the current into a few nanocrystals.

Run it from the repository root:  python docs/tutorials/aperture.py  [OUTPUT_DIR]
(small mesh and few bias points by default; PVSIM_FULL=1 for the case file's mesh and sweep,
and the single-NC variant).
"""

# %% [1] A SiO2 layer with a 20 nm radius opening on a TFB hole-transport layer, under a
# CsPbBr3 NC film: `cases/aperture_few_nc_axisym.toml`. Holes reach the NC film only through
# the opening, so only the ~10 NCs above it are driven: the quantum-LED lever of the mission.
import os
import sys
import tomllib
from pathlib import Path

import numpy as np

import pvsim.post  # noqa: F401  (registers the ds.pvsim accessor)
from pvsim.api import run_case
from pvsim.geometry import mesh_quality
from pvsim.geometry.registry import generate

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "tutorial_output")
FULL = os.environ.get("PVSIM_FULL") == "1"
case = tomllib.loads((ROOT / "cases" / "aperture_few_nc_axisym.toml").read_text())
if not FULL:
    case["geometry"]["resolution"] = 0.6
    case["sweep"] = {"contact": "anode", "voltages_V": [0.0, 1.75, 3.0]}

# %% [2] The mesh: fine at the rim of the opening, coarse far away; the generator mends every
# edge whose finite-volume weight would be negative. Each geometric parameter knows the
# surface nodes it moves (the input of shape gradients).
params = {k: v for k, v in case["geometry"].items() if k != "generator"}
mesh = generate("micro_aperture_axisym", params)
q = mesh_quality(mesh)
print(mesh.summary(), f"| negative EAFE edges {q['negative_edges']}")
print(f"d(mesh)/d(opening_radius): {len(mesh.shape['opening_radius'].nodes)} wall nodes move radially")

# %% [3] Solve, then ask where the current goes. The opening area is the one that matters.
OUT.mkdir(parents=True, exist_ok=True)
ds = run_case(case, base_dir=ROOT / "cases", output=OUT / "aperture.nc")
opening = np.pi * (case["geometry"]["opening_radius"] * 1e-9) ** 2
print("J through the opening (mA/cm2):", np.round(ds.pvsim.iv(area=opening).current_density.values / 10, 3))
print("IQE:", np.round(ds.pvsim.iqe().values, 3))
frac = ds.pvsim.recombination_fractions().fraction
print("Auger share of the recombination:", np.round(frac.sel(channel="auger").values, 3))
# the price of funnelling: the pairs crowd under the opening, and Auger recombination (cubic
# in the density) takes over from radiative recombination (quadratic): efficiency droop
assert 0 < float(ds.pvsim.iqe()[-1]) <= 1

# %% [4] The recombination map (r, z), mirrored about the axis, and a ParaView file.
from pvsim.export import to_vtu  # noqa: E402
from pvsim.plots import plot_map, save_figure  # noqa: E402

print("wrote", save_figure(plot_map(ds, "R_rad", mirror=True).figure, OUT / "aperture_R_rad.png"))
print("wrote", to_vtu(ds, OUT / "aperture.vtu"))

# %% [5] A lesson (PVSIM_FULL=1): one resolved NC in the opening, with TPBi filling the rest of
# it. TPBi then touches TFB beside the NC, and the pairs recombine at that organic interface:
# the NC gets a fraction of a percent of the current. A funnel works only if the emitter is
# the one path between the two transport layers.
if FULL:
    single = tomllib.loads((ROOT / "cases" / "aperture_few_nc_axisym.toml").read_text())
    single["geometry"].update(emitter="single", nc_radius=4.5, ligand=1.5, nc_gap=-0.5)
    single["regions"] = {"htl": {"material": "TFB"}, "insulator": {"material": "SiO2"},
                         "nc": {"material": "nc"}, "ligand": {"material": "OA_OLA_ligand"},
                         "matrix": {"material": "TPBi"}, "etl": {"material": "TPBi"}}
    single["materials"] = {"nc": {"base": "CsPbBr3", "electron_affinity_eV": 3.1, "band_gap_eV": 2.42}}
    single["sweep"] = {"contact": "anode", "voltages_V": [0.0, 3.5]}
    s = run_case(single, base_dir=ROOT / "cases")
    print("single NC: share of the current recombining in the NC:",
          np.round(s.pvsim.region_current_fraction("nc").values, 4))
