"""Krylov linear back ends: GMRES with a real preconditioner (DESIGN.md, "Linear solves").

Same interface as the direct back ends of :mod:`pvsim.linalg` (``factor_solve``,
``resolve``, ``resolve_transpose``), on the same equilibrated matrix S = R J C. The
"factorisation" is the preconditioner set-up, kept between calls like PARDISO's factors.

* ``"gmres-ilu"`` (host, SciPy): restarted GMRES preconditioned by an incomplete LU
  (``scipy.sparse.linalg.spilu``, threshold ``drop_tol``, ``fill_factor``) of S;
  transposed solves use the same ILU (``trans="T"``).
* ``"gmres-amg"`` (host, pyamg): GMRES preconditioned by one V-cycle of pyamg's AIR
  (approximate ideal restriction) algebraic multigrid of S, built for nonsymmetric
  matrices; the transposed solve builds a second hierarchy for S^T on first use.
* ``"jax-gmres"`` (pure JAX, runs on a GPU unchanged): ``jax.scipy.sparse.linalg.gmres``
  with a matrix-free SpMV (``segment_sum`` over the COO pattern) and a block-Jacobi
  preconditioner on contiguous blocks of ``block`` unknowns (the unknowns of one node are
  contiguous, see :mod:`pvsim.layout`), optionally improved by a Neumann polynomial of
  degree ``neumann``. Weak: see the findings below. The device-resident path that converges
  is ``"jax-amg"`` (:mod:`pvsim.amg`: flexible GMRES with an aggregation AMG K-cycle).

Convergence test: ||S x - b||_2 <= rtol ||b||_2 on the equilibrated system, rtol = 1e-12
by default. S is badly conditioned even after equilibration (measured ||S^-1|| >= 5e7 on a
3D NC-monolayer Jacobian), so the relative residual of a random right-hand side floors
near 1e-8 in float64 (that of the direct solve too); Newton right-hand sides reach 1e-12.
A forward error of 1e-4 in the update costs Newton about one extra iteration; the converged
state is set by the residual, not by the linear solve, so terminal currents agree with a
direct solve to the Newton tolerance. A solve that misses rtol within ``maxiter`` restarts
returns its last iterate (Newton then judges the update; nothing raises inside jit).

Findings on the equilibrated Jacobians (scripts/bench_scale.py; docs/benchmarks.md):
block-diagonal field splits (AMG on the psi, T, phi_n, phi_p blocks; additive or
multiplicative) and AMG on the whole matrix (smoothed aggregation per node block, AIR)
converge, but slowly (400-900 GMRES iterations on a random right-hand side of 7k unknowns),
since the coupling between the potential and the quasi-Fermi levels is as strong as the
diagonal blocks; plain smoothed aggregation on the scalar matrix and node block-Jacobi
stall (residual 1e-2 to 1e-1). ILU with threshold 1e-4 converges in 50-100 iterations on
Newton right-hand sides near equilibrium, but diverges on the Newton systems of the 54k-unknown
3D cell away from it (the minority quasi-Fermi levels of blocking layers; docs/benchmarks.md),
where AIR converges in 89 iterations: AIR (``"gmres-amg"``) is the CPU default of the Krylov path.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from .linalg import HostSlotSolver, LinearSolver

#: Krylov statistics of the host back ends (accumulated; reset by the caller)
krylov_stats = {"solves": 0, "iterations": 0, "not_converged": 0, "setups": 0}


def _csr_structure(rows, cols, n):
    """CSR (indptr, indices) of a pattern given in CSR order (rows sorted)."""
    rows = np.asarray(rows)
    if np.any(np.diff(rows) < 0):
        raise ValueError("Krylov back ends need the pattern in CSR order (rows sorted)")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))]).astype(np.int64)
    return indptr, np.asarray(cols, dtype=np.int64)


class _HostKrylov:
    """Preconditioners per batch slot, kept with the serial number of their matrix (as
    :class:`pvsim.linalg._PardisoSlots`: a stale token costs a new set-up, never a wrong
    answer)."""

    def __init__(self, rows, cols, n, make_precond, rtol, restart, maxiter):
        self.n = n
        self.indptr, self.indices = _csr_structure(rows, cols, n)
        self.make_precond = make_precond  # (S csr, transpose) -> callable v -> M^-1 v
        self.rtol, self.restart, self.maxiter = rtol, restart, maxiter
        self.slots: dict[int, dict] = {}
        self._next = 0

    def _matrix(self, v):
        import scipy.sparse as sp

        return sp.csr_matrix((np.asarray(v, np.float64), self.indices, self.indptr), shape=(self.n,) * 2)

    def _setup(self, k, v, token):
        krylov_stats["setups"] += 1
        s = self._matrix(v)
        self.slots[k] = {"token": token, "S": s, "M": self.make_precond(s, False), "MT": None}
        return self.slots[k]

    def _gmres(self, a, m, b):
        import scipy.sparse.linalg as sla

        nb = np.linalg.norm(b)
        if not np.isfinite(nb) or nb == 0.0:
            return np.full(self.n, np.nan) if not np.isfinite(nb) else np.zeros(self.n)
        its = [0]

        def count(_):
            its[0] += 1

        op = sla.LinearOperator((self.n,) * 2, matvec=m)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x, info = sla.gmres(a, b, M=op, rtol=self.rtol, atol=0.0, restart=self.restart,
                                maxiter=self.maxiter, callback=count, callback_type="pr_norm")
        krylov_stats["solves"] += 1
        krylov_stats["iterations"] += its[0]
        krylov_stats["not_converged"] += int(info != 0)
        return x

    def factor_solve(self, vals, b):
        xs, tokens = [], []
        for k, (v, rhs) in enumerate(zip(vals, b)):
            self._next = (self._next + 1) % (2**31 - 1)
            if not np.all(np.isfinite(v)):
                xs.append(np.full(self.n, np.nan))
            else:
                slot = self._setup(k, v, self._next)
                xs.append(self._gmres(slot["S"], slot["M"], np.asarray(rhs, np.float64)))
            tokens.append(self._next)
        return np.stack(xs), np.asarray(tokens, np.int32)

    def resolve(self, vals, tokens, b, transpose=False):
        xs = []
        for k, (v, t, rhs) in enumerate(zip(vals, tokens, b)):
            if t < 0 or not np.all(np.isfinite(v)):
                xs.append(np.full(self.n, np.nan))
                continue
            slot = self.slots.get(k)
            if slot is None or slot["token"] != int(t):
                slot = self._setup(k, v, int(t))
            if transpose:
                if slot["MT"] is None:
                    slot["ST"] = slot["S"].T.tocsr()
                    slot["MT"] = self.make_precond(slot["S"], True)
                xs.append(self._gmres(slot["ST"], slot["MT"], np.asarray(rhs, np.float64)))
            else:
                xs.append(self._gmres(slot["S"], slot["M"], np.asarray(rhs, np.float64)))
        return (np.stack(xs),)

    def resolve_transpose(self, vals, tokens, b):
        return self.resolve(vals, tokens, b, transpose=True)


def ilu_preconditioner(drop_tol=1e-4, fill_factor=10.0):
    """M^-1 from scipy's threshold ILU of S (its ``trans="T"`` solve for S^T)."""
    def make(s, transpose):
        import scipy.sparse.linalg as sla

        ilu = None
        # a dropped entry can leave an exactly zero pivot: retry with less dropping, and
        # as a last resort take the complete LU (GMRES then converges in one step)
        for drop in (drop_tol, drop_tol * 1e-3):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ilu = sla.spilu(s.tocsc(), drop_tol=drop, fill_factor=fill_factor)
                break
            except RuntimeError:
                krylov_stats["ilu_retries"] = krylov_stats.get("ilu_retries", 0) + 1
        if ilu is None:
            ilu = sla.splu(s.tocsc())
        trans = "T" if transpose else "N"
        return lambda v: ilu.solve(np.asarray(v, np.float64), trans=trans)
    return make


def amg_preconditioner(max_coarse=500):
    """M^-1 = one V-cycle of pyamg's AIR hierarchy of S (or of S^T)."""
    def make(s, transpose):
        import pyamg

        a = s.T.tocsr() if transpose else s
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ml = pyamg.air_solver(a, max_coarse=max_coarse)
        return lambda v: ml.solve(np.asarray(v, np.float64), maxiter=1, tol=1e-300, cycle="V")
    return make


@dataclass(frozen=True, eq=False)
class HostKrylovSolver(HostSlotSolver):
    """GMRES on the host (through ``jax.pure_callback``) with a preconditioner factory."""

    preconditioner: str = "ilu"
    rtol: float = 1e-12
    restart: int = 100
    maxiter: int = 20  # restarts
    options: dict = field(default_factory=dict)

    def __post_init__(self):
        make = {"ilu": ilu_preconditioner, "amg": amg_preconditioner}[self.preconditioner](**self.options)
        object.__setattr__(self, "_host", _HostKrylov(self.rows, self.cols, self.n, make, self.rtol,
                                                      self.restart, self.maxiter))


def gmres_ilu(rows, cols, n, **kw):
    return HostKrylovSolver(rows, cols, n, preconditioner="ilu", **kw)


def gmres_amg(rows, cols, n, **kw):
    return HostKrylovSolver(rows, cols, n, preconditioner="amg", **kw)


# ----------------------------------------------------------------------------- pure JAX
@dataclass(frozen=True, eq=False)
class JaxKrylovSolver(LinearSolver):
    """GMRES in JAX: matrix-free SpMV, block-Jacobi (+ Neumann polynomial) preconditioner.

    Everything is traced (no host round trip), so it runs inside a jitted Newton step on a
    GPU and under ``vmap``. The "factorisation" is nothing beyond the stored matrix: the
    block inverses are recomputed per solve (cheap: n/block dense block x block inverses).
    """

    block: int = 4
    neumann: int = 0  # degree of the Neumann polynomial on top of block-Jacobi
    rtol: float = 1e-12
    restart: int = 50
    maxiter: int = 40  # restarts

    def _blocks(self, vals, rows, cols, transpose):
        """Inverses (nb, k, k) of the diagonal k x k blocks (contiguous unknowns) of S or S^T."""
        k, n = self.block, self.n
        nb = -(-n // k)
        r, c = (cols, rows) if transpose else (rows, cols)
        inside = (r // k) == (c // k)
        d = jnp.zeros((nb, k, k)).at[r // k, r % k, c % k].add(jnp.where(inside, vals, 0.0))
        # padding unknowns (n not a multiple of k) get a unit diagonal
        pad = jnp.arange(nb * k) >= n
        d = d + jnp.where(pad.reshape(nb, k)[:, :, None] & jnp.eye(k, dtype=bool), 1.0, 0.0)
        return jnp.linalg.inv(d)

    def _solve(self, vals, b, rows, cols, transpose):
        n, k = self.n, self.block
        r, c = (cols, rows) if transpose else (rows, cols)
        nb = -(-n // k)
        dinv = self._blocks(vals, rows, cols, transpose)

        def matvec(x):
            return jax.ops.segment_sum(vals * x[c], r, num_segments=n)

        def bjacobi(v):
            vp = jnp.pad(v, (0, nb * k - n)).reshape(nb, k)
            return jnp.einsum("bij,bj->bi", dinv, vp).reshape(-1)[:n]

        def precond(v):
            y = bjacobi(v)
            for _ in range(self.neumann):  # y <- y + D^-1 (v - S y)
                y = y + bjacobi(v - matvec(y))
            return y

        bn = jnp.linalg.norm(b)
        x, _ = jax.scipy.sparse.linalg.gmres(matvec, b, M=precond, tol=self.rtol, atol=0.0,
                                             restart=self.restart, maxiter=self.maxiter,
                                             solve_method="batched")
        return jnp.where(bn > 0, x, 0.0)

    def _factor_solve(self, vals, b, rows, cols):
        return self._solve(vals, b, rows, cols, False), jnp.zeros(b.shape[:-1], jnp.int32)

    def _resolve(self, fact, b, rows, cols):
        return self._solve(fact.vals, b, rows, cols, False)

    def _resolve_transpose(self, fact, b, rows, cols):
        return self._solve(fact.vals, b, rows, cols, True)


__all__ = ["HostKrylovSolver", "JaxKrylovSolver", "gmres_ilu", "gmres_amg", "krylov_stats"]
