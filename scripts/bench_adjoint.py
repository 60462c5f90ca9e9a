"""Cost of an implicit-adjoint gradient relative to a forward bias point.

    python scripts/bench_adjoint.py

For the 2D diode (cases/diode_2d.toml) and the NC LED (cases/nc_led_1d.toml): the forward
cost is the median wall time per bias point of a warm continuation sweep; the gradient cost
is the backward pass alone, timed as (value_and_grad - value) of a jitted objective (the
anode current, and the IQE for the LED) with respect to four parameters, at the same
tolerance, from the converged state of that point. Prints the ratio (target <= 0.3).
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _median_time(fn, *args, repeat=5):
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def bench(case_name, biases, figure):
    from pvsim import figures
    from pvsim.adjoint import make_steady_state
    from pvsim.case import build_device, load_case
    from pvsim.sweep import BiasPoint, run_sweep

    case, base = load_case(ROOT / "cases" / f"{case_name}.toml")
    dev = build_device(case, base)
    targets = [BiasPoint(np.array([v, 0.0]), np.zeros(2)) for v in biases]
    run_sweep(dev, targets)
    res = run_sweep(dev, targets)
    forward = float(np.median([p.wall_time for p in res.points]))
    solve = make_steady_state(dev)
    ratios = []
    for v, point in zip(biases, res.points):
        params = dev.params([v, 0.0])

        def objective(theta, start=point.u, params=params):
            m = params.material
            mat = type(m)(**{**m.__dict__, "mu_n": m.mu_n * theta[0], "tau_n": m.tau_n * theta[1]})
            p = type(params)(**{**params.__dict__, "material": mat, "doping": params.doping * theta[2],
                                "voltage": params.voltage * theta[3]})
            state = solve(start, p)
            if figure == "current":
                return figures.terminal_currents(dev, state, p)[0]
            return figures.iqe(dev, state, p)

        theta = jnp.ones(4)
        t_value = _median_time(jax.jit(objective), theta)
        t_both = _median_time(jax.jit(jax.value_and_grad(objective)), theta)
        ratios.append((t_both - t_value) / forward)
    print(f"{case_name:12s} {dev.asm.n_dof:6d} unknowns  forward {forward * 1e3:7.1f} ms/point  "
          f"gradient (backward) {np.median(ratios) * forward * 1e3:7.1f} ms  ratio {np.median(ratios):.3f} "
          f"(target <= 0.3)")


if __name__ == "__main__":
    jax.config.update("jax_enable_x64", True)
    bench("diode_2d", [0.3, 0.4, 0.5, 0.6], "current")
    bench("nc_led_1d", [2.5, 3.0, 4.0, 5.0], "iqe")
