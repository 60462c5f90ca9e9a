"""Tutorial 1: an NC-monolayer LED, from physical parameters to figures of merit.

Run it from the repository root:  python docs/tutorials/nc_monolayer.py  [OUTPUT_DIR]
(small mesh and few bias points by default; PVSIM_FULL=1 for the case file's resolution and
sweep). Figures and a ParaView file land in OUTPUT_DIR (default: tutorial_output/).
"""

# %% [1] The device. One 9 nm CsPbBr3 nanocube in a 1.5 nm OA/OLA ligand shell, in
# ITO / PEDOT:PSS / TFB / NC / TPBi / LiF-Al. The cell's side faces are mirror planes, so the
# one cube stands for a close-packed row. `cases/nc_monolayer_2d.toml` says all of it; here we
# load it as a dict so that we can change it from Python.
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
case = tomllib.loads((ROOT / "cases" / "nc_monolayer_2d.toml").read_text())

# %% [2] The mesh comes from the [geometry] section: the generator `nc_monolayer` with
# structured = true splits a tensor-product grid into right triangles (Kuhn), so no edge has a
# negative finite-volume weight: the discrete drift-diffusion operator stays an M-matrix.
geometry = {k: v for k, v in case["geometry"].items() if k != "generator"}
if not FULL:
    geometry["resolution"] = case["geometry"]["resolution"] = 0.5
mesh = generate("nc_monolayer", geometry)
q = mesh_quality(mesh)
print(f"{mesh.summary()}\nnegative EAFE edges: {q['negative_edges']}, min angle {q['min_angle_deg']:.1f} deg")
# every geometric parameter knows which surface nodes it moves (the input of shape gradients)
print("shape parameters:", ", ".join(mesh.shape))

# %% [3] Solve. The bias sweep starts at equilibrium; every converged point is kept.
if not FULL:
    case["sweep"] = {"contact": "anode", "voltages_V": [0.0, 2.5, 4.0, 5.0]}
OUT.mkdir(parents=True, exist_ok=True)
ds = run_case(case, base_dir=ROOT / "cases", output=OUT / "nc_monolayer.nc")

# %% [4] Figures of merit. In 2D the current is per metre of depth: divide by the cell width.
width = float(np.ptp(ds.x.values[:, 0]))
iv = ds.pvsim.iv(area=width)
j = iv.current_density.values / 10  # A/m^2 -> mA/cm^2
print("J (mA/cm2):", np.round(j, 3))
print("turn-on (1 mA/cm2):", round(ds.pvsim.turn_on_voltage(10.0, area=width), 2), "V")
print("IQE:", np.round(ds.pvsim.iqe().values, 3))
print("charge balance:", np.round(ds.pvsim.charge_balance().values, 3))
# IQE counts radiative recombination anywhere, also the (Langevin) recombination in the organic
# transport layers next to the NC; the share that recombines in the core is the NC emission.
print("share of the current recombining in the NC core:",
      np.round(ds.pvsim.region_current_fraction("nc").values, 3))
print("peak field in the core (MV/cm):", np.round(ds.pvsim.peak_field("nc").values / 1e8, 3))
assert j[-1] > 0 and 0 < float(ds.pvsim.iqe()[-1]) <= 1

# %% [5] Pictures and ParaView: the IV curve, the band diagram through the cube's centre and
# the radiative recombination map; a VTU with every field and the region ids.
from pvsim.export import to_vtu  # noqa: E402
from pvsim.plots import plot_band, plot_iv, plot_map, save_figure  # noqa: E402

for name, fig in [("iv", plot_iv(ds).figure), ("band", plot_band(ds).figure),
                  ("R_rad", plot_map(ds, "R_rad").figure)]:
    print("wrote", save_figure(fig, OUT / f"nc_monolayer_{name}.png"))
print("wrote", to_vtu(ds, OUT / "nc_monolayer.vtu"))
