"""Core/shell NC LED: IQE and core field against shell thickness (the landscape of inverse design 1).

    python scripts/design_core_shell.py --scan 1.0 4.0 0.5            # remeshed brute force
    python scripts/design_core_shell.py --check 2.0 3.0               # adjoint d/dd against FD

One CsPbBr3 core (radius 4.5 nm) in a Cs4PbBr6 shell of thickness d, between TFB and TPBi,
in an axisymmetric cell of fixed radius 12 nm (cases/core_shell_axisym.toml otherwise),
driven at a set current density J = 10 mA/cm^2 (current-controlled anode).

Model of the shell (d-dependent, differentiable):

* **Passivation.** Unpassivated surface traps (dangling bonds, ligand vacancies) sit on the
  outer surface of the shell; a core carrier reaches them by tunnelling, so the core/shell
  interface carries surface SRH with s(d) = s_surf exp(-2 kappa_n d), kappa_n from the
  Cs4PbBr6 conduction-band offset 0.70 eV and m* = 0.3 m0 (2 kappa_n = 4.7 nm^-1), s_surf =
  1e6 cm/s (a trap-saturated surface, below the thermal-velocity limit ~1e7 cm/s).
* **Injection.** Carriers enter the core by tunnelling through the shell: the shell is the
  WKB-matched effective barrier of pvsim.library (offsets kT 2 kappa d_eff, d_eff = d - 0.5 nm
  left on the axis by the flat contact discs, barrier-matched mobility ~ d_eff).
* **Core field.** The smooth peak field in the core (fields above ~10 MV/m drive halide-ion
  migration and redox degradation of perovskite NCs); the design objective would be
  f(d) = -IQE + w softplus((F - F_ref) / F_scale)^2.

``--scan`` generates a fresh mesh at every thickness and prints IQE, core field, the share of
surface recombination, the anode voltage and f. ``--check`` compares, at each given d, the
implicit-adjoint derivative of IQE, core field and f with respect to d (shape derivative of
the morphed mesh plus the d-dependent material and surface parameters) with central
differences of the same morphed model (h = 1e-4 nm).

Found so far (resolution 0.7): IQE rises from 0 at 1 nm (all pairs lost to the surface) to
~1 at 4 nm, not monotonically (0.136 at 2.0 nm, 0.108 at 2.5 nm: pairs recombining outside
the core), while the core field stays at 11-23 MV/m and the voltage at 2.8-3.2 V: within this
model a thicker shell costs little, so an optimum of f lies at the upper bound unless the
shell's injection cost grows faster than the WKB-matched barrier does here. The optimisation
itself (optax, interior optimum) is not done yet.
"""

from __future__ import annotations

import argparse
import math
import tomllib
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from pvsim.units import enable_x64

ROOT = Path(__file__).resolve().parent.parent
CELL_RADIUS = 12.0  # nm
J_SET = 100.0  # A/m^2 = 10 mA/cm^2
CONTACT_DEPTH = 0.5  # nm
M0, Q, HBAR = 9.1093837015e-31, 1.602176634e-19, 1.054571817e-34
TWO_KAPPA_N = 2 * math.sqrt(2 * 0.3 * M0 * Q * 0.70) / HBAR * 1e-9  # 1/nm
TWO_KAPPA_P = 2 * math.sqrt(2 * 0.3 * M0 * Q * 0.89) / HBAR * 1e-9
S_SURFACE = 1e6  # cm/s
F_REF, F_SCALE, WEIGHT = 2e7, 5e6, 0.5  # V/m, V/m, 1


def case_dict(d: float, resolution: float) -> dict:
    data = tomllib.loads((ROOT / "cases" / "core_shell_axisym.toml").read_text())
    g = data["geometry"]
    g.update(shell=float(d), resolution=float(resolution), cell_radius=CELL_RADIUS)
    data["contacts"]["anode"]["control"] = "current"
    data["sweep"] = {"contact": "anode", "currents_A": [J_SET * math.pi * (CELL_RADIUS * 1e-9) ** 2]}
    # the surface SRH of the core/shell interface; its velocity is set from d in `params`
    data["interfaces"] = [dict(regions=["core", "shell"], s_n_cm_s=1.0, s_p_cm_s=1.0)]
    return data


class Stage:
    """One mesh (generated at shell thickness d0): device, converged start, objective."""

    def __init__(self, d0: float, resolution: float, start=None):
        from pvsim import design
        from pvsim.adjoint import make_steady_state
        from pvsim.case import build_device, load_case

        case, base = load_case(case_dict(d0, resolution), ROOT / "cases")
        self.dev = dev = build_device(case, base)
        self.d0 = d0
        shell = design.region_index(dev, "shell")
        m = dev.params().material  # the case's shell mobility is matched to d_eff = 1.5 nm
        self.mu_shell = (float(m.mu_n[shell]), float(m.mu_p[shell]))
        self.current = J_SET * math.pi * (CELL_RADIUS * 1e-9) ** 2
        self.base = self._material(dev.params(), 0.0)
        dev.set_base_params(self.base)
        self.u0, self.p0 = design.operating_point(dev, current=[self.current, 0.0])
        self.fields = design.shape_fields(dev.mesh, ["shell"])
        self.solve = make_steady_state(dev)
        self.figures = jax.jit(self._figures)

    def _material(self, p, dd):
        """Shell offsets, mobility and the core/shell surface SRH at thickness d0 + dd."""
        from pvsim import design

        dev = self.dev
        core, shell = design.region_index(dev, "core"), design.region_index(dev, "shell")
        d_eff = self.d0 + dd - CONTACT_DEPTH
        dn, dp = TWO_KAPPA_N * d_eff, TWO_KAPPA_P * d_eff  # effective offsets in kT: 2 kappa d
        m = p.material
        mu_ratio = d_eff / (2.0 - CONTACT_DEPTH)  # barrier-matched mobility ~ d_eff (case: 1.5 nm)
        mat = type(m)(**{**m.__dict__,
                         "chi": m.chi.at[shell].set(m.chi[core] - dn),
                         "Eg": m.Eg.at[shell].set(m.Eg[core] + dn + dp),
                         "mu_n": m.mu_n.at[shell].set(self.mu_shell[0] * mu_ratio),
                         "mu_p": m.mu_p.at[shell].set(self.mu_shell[1] * mu_ratio)})
        s = S_SURFACE * 1e-2 / dev.scales.velocity * jnp.exp(-TWO_KAPPA_N * (self.d0 + dd))
        itf = p.interface
        return design.set_leaf(design.set_leaf(p, "material", mat), "interface",
                               type(itf)(**{**itf.__dict__, "s_n": jnp.full_like(itf.s_n, s),
                                            "s_p": jnp.full_like(itf.s_p, s)}))

    def _params(self, dd):
        from pvsim import design

        p = design.morph(self.dev, self.p0, self.fields, {"shell": dd})
        return self._material(p, dd)

    def _figures(self, dd):
        from pvsim import figures

        p = self._params(dd)
        s = self.solve(self.u0, p)
        f_core = figures.peak_field(self.dev, s, p, sharpness=1e-6, region="core")
        fr = figures.recombination_fractions(self.dev, s, p)
        return dict(iqe=figures.iqe(self.dev, s, p), field=f_core, surface=fr[3],
                    voltage=self.dev.asm.voltages(s.delta, p, s.ref)[0] * self.dev.scales.V_T,
                    status=s.status)


def objective(iqe, field):
    excess = jax.nn.softplus((field - F_REF) / F_SCALE)
    return -iqe + WEIGHT * excess**2


def scan(resolution, ds_nm):
    """Brute force: a freshly generated mesh at every thickness."""
    rows = []
    for d in ds_nm:
        st = Stage(float(d), resolution)
        out = {k: float(v) for k, v in st.figures(0.0).items()}
        out["objective"] = float(objective(out["iqe"], out["field"]))
        print(f"d = {d:5.2f} nm  IQE {out['iqe']:.4f}  F_core {out['field'] / 1e6:6.2f} MV/m  "
              f"surface {out['surface']:.3f}  V {out['voltage']:.3f}  f {out['objective']:.4f}  "
              f"status {int(out['status'])}", flush=True)
        rows.append(out)
    return rows


def check(resolution, ds_nm, h=1e-4):
    """Adjoint derivative d/dd of (IQE, core field, objective) against central differences."""
    for d in ds_nm:
        st = Stage(float(d), resolution)

        def figs(dd):
            out = st._figures(dd)
            return jnp.stack([out["iqe"], out["field"], objective(out["iqe"], out["field"])])

        jac = np.asarray(jax.jit(jax.jacrev(figs))(0.0))
        f = jax.jit(figs)
        fd = (np.asarray(f(h)) - np.asarray(f(-h))) / (2 * h)
        print(f"d = {d:4.2f} nm  dIQE/dd {jac[0]:.6e} (FD {fd[0]:.6e})  dF/dd {jac[1]:.6e} (FD {fd[1]:.6e}) "
              f" df/dd {jac[2]:.6e} (FD {fd[2]:.6e})  max rel. diff "
              f"{np.max(np.abs(jac - fd) / np.abs(jac)):.1e}", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--resolution", type=float, default=0.7)
    ap.add_argument("--scan", nargs=3, type=float, metavar=("FROM", "TO", "STEP"),
                    help="brute-force scan over d (nm), a fresh mesh per point")
    ap.add_argument("--check", nargs="+", type=float, metavar="D",
                    help="adjoint against finite differences at these d (nm)")
    args = ap.parse_args(argv)
    enable_x64()
    if args.scan:
        a, b, s = args.scan
        scan(args.resolution, np.arange(a, b + s / 2, s))
    if args.check:
        check(args.resolution, args.check)
    if not (args.scan or args.check):
        ap.print_help()


if __name__ == "__main__":
    main()
