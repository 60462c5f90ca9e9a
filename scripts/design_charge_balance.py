"""Inverse design: charge balance and IQE of a leaky-blocked NC LED at a set current density.

    python scripts/design_charge_balance.py                  # optimise, brute force, refine, plot

(DOCSTRING RESULTS: filled in after the run.)
"""

from __future__ import annotations

import argparse
import time
import tomllib
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from pvsim.units import enable_x64

ROOT = Path(__file__).resolve().parent.parent
CASE = ROOT / "cases" / "nc_led_1d_leaky.toml"
J_SET = 100.0  # A/m^2 = 10 mA/cm^2 into the anode (current-controlled)
NAMES = ["W_anode_eV", "chi_ETL_eV"]
START = (5.40, 3.05)  # eV: anode work function, ETL electron affinity (the case has 5.30, 3.00)
LOWER, UPPER = (5.10, 2.85), (5.60, 3.15)
H = 0.01  # eV: the step of the brute-force check


def case_dict(theta, refine: float = 1.0) -> dict:
    """The case at theta = (anode work function, ETL electron affinity) in eV, its mesh
    ``refine`` times finer, the anode driven at J_SET."""
    data = tomllib.loads(CASE.read_text())
    for layer in data["mesh"]["layers"]:
        layer["spacing_nm"] /= refine
        layer["min_spacing_nm"] /= refine
    data["contacts"]["anode"]["work_function_eV"] = float(theta[0])
    data["materials"]["leaky_etl"]["electron_affinity_eV"] = float(theta[1])
    data["contacts"]["anode"]["control"] = "current"
    data["sweep"] = {"contact": "anode", "currents_A": [J_SET]}
    return data


class Model:
    """One mesh: a device built at theta0, its converged operating point, and the figures at
    any theta set into its Params (Newton warm-started from the last converged state)."""

    def __init__(self, theta0, refine: float = 1.0):
        from pvsim import design
        from pvsim.adjoint import make_steady_state
        from pvsim.case import build_device, load_case

        case, base = load_case(case_dict(theta0, refine), CASE.parent)
        self.dev = dev = build_device(case, base)
        self.u0, self.p0 = design.operating_point(dev, current=[J_SET, 0.0])
        self.u = self.u0
        self.solve = make_steady_state(dev)
        self.anode = design.contact_index(dev, "anode")
        self.etl = design.region_index(dev, "etl")
        self.n_nodes = dev.mesh.n_nodes
        self.figures = jax.jit(self._figures)
        self._vg = jax.jit(jax.value_and_grad(self._objective, has_aux=True))

    def params(self, theta):
        from pvsim import design

        vt = self.dev.scales.V_T  # energies are scaled by kT
        p = design.set_leaf(self.p0, "work_function", theta[0] / vt, index=self.anode)
        return design.set_leaf(p, "material.chi", theta[1] / vt, index=self.etl)

    def _figures(self, theta, u_start):
        from pvsim import figures

        dev, p = self.dev, self.params(theta)
        s = self.solve(u_start, p)
        i_n, i_p = dev.asm.terminal_currents(s.delta, p, s.ref)
        i = figures.terminal_currents(dev, s, p)[0]
        return dict(iqe=figures.iqe(dev, s, p), cb=figures.charge_balance(dev, s, p),
                    radiative=figures.recombination_fractions(dev, s, p)[1],
                    leak_n=i_n[0] * dev.scales.current / i,  # electrons leaving at the anode
                    leak_p=-i_p[1] * dev.scales.current / i,  # holes leaving at the cathode
                    voltage=dev.asm.voltages(s.delta, p, s.ref)[0] * dev.scales.V_T,
                    status=s.status, u=s.ref + s.delta)

    def _objective(self, theta, u_start):
        fig = self._figures(theta, u_start)
        return objective(fig), fig

    def value_and_grad(self, theta):
        """(f, df/dtheta) for optax; the implicit adjoint gives the gradient."""
        theta = jnp.asarray(theta, float)
        (value, fig), grad = self._vg(theta, self.u)
        if int(fig["status"]) != 0:  # retry from the operating point of this mesh
            (value, fig), grad = self._vg(theta, self.u0)
        if int(fig["status"]) != 0:
            return jnp.nan, jnp.full(2, jnp.nan)
        self.u = fig["u"]
        return value, grad


def objective(fig):
    """Minimised: -IQE = -(charge balance x radiative share of the recombination)."""
    return -fig["iqe"]


def evaluate(theta, refine: float = 1.0):
    """Figures at theta on a freshly built device (its own continuation from equilibrium)."""
    m = Model(theta, refine)
    out = {k: float(v) for k, v in m.figures(jnp.asarray(theta, float), m.u0).items() if k != "u"}
    out["objective"] = float(objective(out))
    return out


def show(theta, out):
    print(f"W_a {theta[0]:.4f} eV  chi_ETL {theta[1]:.4f} eV  IQE {out['iqe']:.5f}  CB {out['cb']:.5f}  "
          f"rad. share {out['radiative']:.4f}  leak e {out['leak_n']:.2e} h {out['leak_p']:.2e}  "
          f"V {out['voltage']:.3f}  status {int(out['status'])}", flush=True)


def optimise(theta0, out: Path, refine=1.0, steps=120, rate=0.02, decay=0.98, reduce_by=100.0,
             title="charge balance"):
    import optax

    from pvsim import design

    m = Model(theta0, refine)
    lr = optax.exponential_decay(rate, transition_steps=1, decay_rate=decay)  # eV
    hist = design.optimise(m.value_and_grad, list(theta0), NAMES, LOWER, UPPER, steps=steps,
                           learning_rate=lr, reduce_by=reduce_by, history_path=out / "history.nc",
                           title=title)
    return hist, m


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--start", nargs=2, type=float, default=START, metavar=("W_A", "CHI_ETL"),
                    help="initial anode work function and ETL electron affinity (eV)")
    ap.add_argument("--refine", type=float, default=2.0, help="mesh refinement factor of the check")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "design_charge_balance")
    args = ap.parse_args(argv)
    enable_x64()
    import xarray as xr

    from pvsim import design

    t0 = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    hist, m = optimise(args.start, args.out)
    design.plot_history(hist, args.out / "history.png")
    th = hist.theta.values
    pg = hist.projected_gradient_norm.values
    theta_opt = th[-1]
    print(f"mesh: {m.n_nodes} nodes; J = {J_SET / 10:g} mA/cm^2")
    print(f"objective {float(hist.objective[0]):+.5f} -> {float(hist.objective[-1]):+.5f} in {len(pg) - 1} "
          f"steps; theta {np.round(th[0], 4).tolist()} -> {np.round(theta_opt, 4).tolist()} eV; "
          f"projected gradient {pg[0]:.3g} -> {pg[-1]:.3g} ({pg[0] / pg[-1]:.0f}x)")
    show(th[0], evaluate(th[0]))

    print("brute force around the optimum (freshly built devices, steps of "
          f"{1000 * H:g} meV; a 3x3 stencil and +-2 steps per parameter):")
    offsets = [(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)] + [(-2, 0), (2, 0), (0, -2), (0, 2)]
    rows = []
    for a, b in offsets:
        theta = theta_opt + H * np.array([a, b])
        o = evaluate(theta)
        print(f"  ({a:+d},{b:+d}) ", end="")
        show(theta, o)
        rows.append(o)
    f = {off: o["objective"] for off, o in zip(offsets, rows)}
    best = min(f, key=f.get)
    hess = np.array([[f[1, 0] - 2 * f[0, 0] + f[-1, 0], (f[1, 1] - f[1, -1] - f[-1, 1] + f[-1, -1]) / 4],
                     [0.0, f[0, 1] - 2 * f[0, 0] + f[0, -1]]]) / H**2
    hess[1, 0] = hess[0, 1]
    eig = np.linalg.eigvalsh(hess)
    interior = bool(np.all((theta_opt > np.array(LOWER) + 2 * H) & (theta_opt < np.array(UPPER) - 2 * H)))
    print(f"optimum {'interior' if interior else 'ON OR NEAR A BOUND'}; smallest brute-force f at "
          f"offset {best}; finite-difference Hessian of f (1/eV^2) {np.round(hess, 2).tolist()}, "
          f"eigenvalues {np.round(eig, 2).tolist()} (condition {eig.max() / eig.min():.1f})")

    print(f"refined mesh ({args.refine:g}x finer), optimisation restarted at the optimum:")
    fine, mf = optimise(theta_opt, args.out / "refined", refine=args.refine, steps=60, rate=0.005,
                        reduce_by=20.0, title="refined")
    theta_fine = fine.theta.values[-1]
    shift = theta_fine - theta_opt
    g_fine = fine.gradient.values[0]
    newton = -np.linalg.solve(hess, g_fine)  # the same, from the fine gradient at theta*
    print(f"refined mesh {mf.n_nodes} nodes: gradient at theta* {np.round(g_fine, 4).tolist()} /eV, "
          f"Newton step with the brute-force Hessian {1000 * newton[0]:+.1f}, {1000 * newton[1]:+.1f} meV; "
          f"optax: optimum {np.round(theta_fine, 4).tolist()} eV (moved {1000 * shift[0]:+.1f}, "
          f"{1000 * shift[1]:+.1f} meV) in {len(fine.step) - 1} steps, IQE {-float(fine.objective[-1]):.5f}")
    check = xr.Dataset({k: ("point", [o[k] for o in rows]) for k in rows[0]},
                       coords={"point": np.arange(len(offsets)),
                               "W_anode_eV": ("point", [theta_opt[0] + H * a for a, _ in offsets]),
                               "chi_ETL_eV": ("point", [theta_opt[1] + H * b for _, b in offsets])},
                       attrs=dict(theta_opt=theta_opt, theta_refined=theta_fine, refined_newton_step=newton,
                                  hessian=hess.ravel(),
                                  current_density_A_m2=J_SET))
    check.to_netcdf(args.out / "check.nc", engine="h5netcdf")
    checks = {"projected gradient down >= 100x": pg[0] / pg[-1] >= 100.0, "interior": interior,
              "brute-force minimum at theta*": best == (0, 0), "Hessian positive definite": eig.min() > 0,
              "refined optimum within 5 meV": bool(np.all(np.abs(shift) < 5e-3)
                                                   and np.all(np.abs(newton) < 5e-3))}
    print("checks: " + "; ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in checks.items()))
    print(f"wall time {time.perf_counter() - t0:.0f} s; written to {args.out}")


if __name__ == "__main__":
    main()
