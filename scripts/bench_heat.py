"""Self-heating benchmark: Newton iterations per bias point, the quadratic convergence of the
fully coupled Newton near a solution, and the cost of heat against the isothermal solve of
the same device in the same process.

    python scripts/bench_heat.py
"""

import time

import jax
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

jax.config.update("jax_enable_x64", True)

from pvsim.device import Device, HeatSpec, ThermalBoundary  # noqa: E402
from pvsim.doping import DopingProfile  # noqa: E402
from pvsim.geometry import Layer, layer_stack  # noqa: E402
from pvsim.layout import ContactSpec  # noqa: E402
from pvsim.materials import MaterialSpec  # noqa: E402


def resistor(heat: bool, n_cells=400):
    mesh = layer_stack([Layer("bar", 1e-6, 1e-6 / n_cells)], "left", "right")
    mat = MaterialSpec(eps_r=10.0, electron_affinity_eV=4.0, band_gap_eV=1.5, mu_n_cm2_Vs=100.0,
                       mu_p_cm2_Vs=100.0, mobility_T_exponent_n=1.5, mobility_T_exponent_p=1.5,
                       thermal_conductivity_W_mK=1.0)
    spec = HeatSpec(boundaries=(ThermalBoundary("left"), ThermalBoundary("right"))) if heat else None
    return Device(mesh, {"bar": mat}, (ContactSpec("left"), ContactSpec("right")),
                  doping={"bar": [DopingProfile(donors_cm3=1e17)]}, heat=spec)


def ramp(dev, volts):
    u, rows = None, []
    for v in volts:
        p = dev.params([0.0, v])
        t0 = time.perf_counter()
        r = dev.solve(dev.initial_guess(p) if u is None else u, p)
        r.u.block_until_ready()
        rows.append((v, int(r.iterations), int(r.factorizations), time.perf_counter() - t0))
        u = r.u
    return u, rows


def newton_updates(dev, u, volts, steps=6):
    """max|du| of plain (full) Newton steps with the exact Jacobian, from u."""
    asm, p = dev.asm, dev.params([0.0, volts])
    out = []
    for _ in range(steps):
        f, vals = asm.residual_and_jacobian(u, p)
        jac = sp.csr_matrix((np.asarray(vals), (np.asarray(asm.rows), np.asarray(asm.cols))),
                            shape=(asm.n_dof, asm.n_dof))
        du = spla.spsolve(jac.tocsc(), -np.asarray(f))
        u = u + du
        out.append(np.max(np.abs(du)))
        if out[-1] < 1e-14:
            break
    return out


if __name__ == "__main__":
    volts = [0.25 * k for k in range(1, 9)]
    iso_time = None
    for heat in (False, True):
        dev = resistor(heat)
        ramp(dev, volts[:1])  # compile
        u, rows = ramp(dev, volts)
        label = "heat" if heat else "isothermal"
        print(f"{label:10s} n_dof {dev.asm.n_dof}, compilations of the solve: {dev._solve._cache_size()}")
        for v, it, lu, t in rows:
            print(f"   V = {v:4.2f}  {it:3d} iterations  {lu:3d} factorisations  {1e3 * t:7.1f} ms")
        times = np.array([t for *_, t in rows])
        if heat:
            print(f"heat / isothermal time per bias point: {times.sum() / iso_time:.2f}")
            seq = newton_updates(dev, u - 0.02 * (u - dev.initial_guess(dev.params([0.0, 2.0]))), 2.0)
            print("full Newton max|du| near the 2 V solution (scaled):", " ".join(f"{x:.1e}" for x in seq))
        else:
            iso_time = times.sum()
