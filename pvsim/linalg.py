"""Sparse linear solves behind one small interface (DESIGN.md, "Linear solves").

A back end is built once per sparsity pattern (COO ``rows``, ``cols``, size ``n``) and
offers ``solve(values, rhs, rows, cols)``: a JAX-traceable function that works inside
``jit``, ``lax.while_loop`` and ``vmap`` (the pattern arrays are passed in as traced
arguments, so they are not baked into the compiled program as constants). Every back end first equilibrates the matrix (rows, then
columns, by their largest magnitude): continuity rows span tens of decades.

Back ends:

* ``"klu"`` (default on the CPU): KLU through klujax, an XLA FFI call with batching rules;
  the symbolic analysis (fill-reducing ordering) is computed once per pattern and reused
  by every Newton step and bias point.
* ``"scipy"``: SuperLU through ``jax.pure_callback`` (sequential under vmap); no analysis
  reuse, kept as an independent reference.

GPU back ends (cuDSS, Krylov + AMG) plug in here without touching the physics.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np


def equilibrate(rows, cols, vals, n):
    """Row then column scaling factors (r, c) so that max |r_i a_ij c_j| = 1 per row/col."""
    a = jnp.abs(vals)
    rmax = jax.ops.segment_max(a, rows, num_segments=n)
    r = 1.0 / jnp.where(rmax > 0, rmax, 1.0)
    cmax = jax.ops.segment_max(a * r[rows], cols, num_segments=n)
    c = 1.0 / jnp.where(cmax > 0, cmax, 1.0)
    return r, c


@dataclass(frozen=True, eq=False)
class LinearSolver:
    """Base: equilibrate, call the back end's ``_solve`` on the scaled system, unscale."""

    rows: np.ndarray
    cols: np.ndarray
    n: int

    def solve(self, vals, b, rows, cols):
        r, c = equilibrate(rows, cols, vals, self.n)
        scaled = vals * r[rows] * c[cols]
        return c * self._solve(scaled, r * b, rows, cols)


@dataclass(frozen=True, eq=False)
class KLUSolver(LinearSolver):
    def __post_init__(self):
        import klujax

        r32 = jnp.asarray(self.rows, dtype=jnp.int32)
        c32 = jnp.asarray(self.cols, dtype=jnp.int32)
        object.__setattr__(self, "_symbolic", klujax.analyze(r32, c32, self.n))

    def _solve(self, vals, b, rows, cols):
        import klujax

        return klujax.solve_with_symbol(rows.astype(jnp.int32), cols.astype(jnp.int32),
                                        vals, b, self._symbolic)


@dataclass(frozen=True, eq=False)
class ScipySolver(LinearSolver):
    def _solve(self, vals, b, rows, cols):
        import scipy.sparse as sp
        from scipy.sparse.linalg import spsolve

        rows, cols, n = self.rows, self.cols, self.n  # host copies of the same pattern

        def host(v, rhs):
            a = sp.csc_matrix((np.asarray(v), (rows, cols)), shape=(n, n))
            return spsolve(a, np.asarray(rhs)).astype(np.float64)

        out = jax.ShapeDtypeStruct(b.shape, b.dtype)
        return jax.pure_callback(host, out, vals, b, vmap_method="sequential")


BACKENDS = {"klu": KLUSolver, "scipy": ScipySolver}


def make_solver(name: str, rows, cols, n: int) -> LinearSolver:
    if name == "auto":
        name = "klu"
    if name not in BACKENDS:
        raise ValueError(f"linear solver '{name}' unknown; choose one of {sorted(BACKENDS)} or 'auto'")
    return BACKENDS[name](np.asarray(rows), np.asarray(cols), int(n))
