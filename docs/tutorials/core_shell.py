"""Tutorial 2: a core/shell nanocrystal in an LED, and what its shell thickness does.

Run it from the repository root:  python docs/tutorials/core_shell.py  [OUTPUT_DIR]
(small mesh and few bias points by default; PVSIM_FULL=1 for finer meshes and the case
file's sweep).
"""

# %% [1] One CsPbBr3 core (radius 4.5 nm) in a Cs4PbBr6 shell between TFB and TPBi, solved in
# 2D-axisymmetric (r, z) coordinates: `cases/core_shell_axisym.toml`. The 2 pi r weights make the
# (r, z) mesh carry the volume of the 3D particle; check it against the 3D generator.
import os
import sys
import tomllib
from pathlib import Path

import numpy as np

import pvsim.post  # noqa: F401  (registers the ds.pvsim accessor)
from pvsim import library
from pvsim.api import run_case
from pvsim.geometry import core_shell_particle, region_measure

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "tutorial_output")
FULL = os.environ.get("PVSIM_FULL") == "1"
res = 1.0 if FULL else 0.5

axi = core_shell_particle(axisymmetric=True, resolution=res)
exact = 4 / 3 * np.pi * (4.5e-9) ** 3
print(f"core volume: axisymmetric {region_measure(axi, 'core'):.4e} m^3, exact {exact:.4e} m^3")
if FULL:
    solid = core_shell_particle(axisymmetric=False, resolution=res)
    print(f"              3D          {region_measure(solid, 'core'):.4e} m^3")

# %% [2] The shell is a tunnelling barrier. Drift-diffusion cannot tunnel, so pvsim maps the
# WKB transmission exp(-2 kappa d) of the shell's band offsets onto an effective offset
# dE = kT 2 kappa d (docs/material_library.md); the offset grows linearly with the thickness
# d that carriers cross on the axis (shell minus the flat contact depth).
base = tomllib.loads((ROOT / "cases" / "core_shell_axisym.toml").read_text())
core = base["materials"]["core"]


def with_shell(shell_nm: float) -> dict:
    case = tomllib.loads((ROOT / "cases" / "core_shell_axisym.toml").read_text())
    d = shell_nm - case["geometry"]["contact_depth"]
    de = library.effective_barrier_eV(0.70, 0.3, d)  # Cs4PbBr6 conduction-band offset, m* 0.3 m0
    dh = library.effective_barrier_eV(0.89, 0.3, d)  # valence-band offset
    case["geometry"].update(shell=shell_nm, resolution=res)
    case["materials"]["shell"].update(
        electron_affinity_eV=core["electron_affinity_eV"] - de,
        band_gap_eV=core["band_gap_eV"] + de + dh,
        mu_n_cm2_Vs=library.barrier_matched_mobility_cm2_Vs(d),
        mu_p_cm2_Vs=library.barrier_matched_mobility_cm2_Vs(d))
    if not FULL:
        case["sweep"] = {"contact": "anode", "voltages_V": [0.0, 4.5]}
    print(f"shell {shell_nm} nm: effective barriers {de:.3f} eV (electrons), {dh:.3f} eV (holes)")
    return case


# %% [3] Two shells, same voltage: a thicker shell passes less current, and its larger
# barrier keeps more of the pairs that do enter in the core.
OUT.mkdir(parents=True, exist_ok=True)
for shell in (1.5, 2.5):
    ds = run_case(with_shell(shell), base_dir=ROOT / "cases", output=OUT / f"core_shell_{shell}.nc")
    cell = np.pi * float(ds.x.values[:, 0].max()) ** 2
    j = float(ds.current.sel(contact="anode")[-1]) / cell / 10
    print(f"  {float(ds.voltage.sel(contact='anode')[-1]):.1f} V: J = {j:.3g} mA/cm2, "
          f"IQE = {float(ds.pvsim.iqe()[-1]):.3f}, core share of the current "
          f"{float(ds.pvsim.region_current_fraction('core')[-1]):.3f}, "
          f"peak field in the core {float(ds.pvsim.peak_field('core')[-1]) / 1e8:.3f} MV/cm")
    assert 0 < float(ds.pvsim.iqe()[-1]) <= 1

# %% [4] The band diagram along the axis shows the core's well between the shell barriers.
from pvsim.plots import plot_band, save_figure  # noqa: E402

print("wrote", save_figure(plot_band(ds).figure, OUT / "core_shell_band.png"))
