"""Sparse linear solves behind one small interface (DESIGN.md, "Linear solves").

A back end is built once per sparsity pattern (COO ``rows``, ``cols`` in CSR order, size
``n``) and offers two JAX-traceable operations that work inside ``jit``,
``lax.while_loop`` and ``vmap``:

* ``factor_solve(vals, b, rows, cols) -> (x, Factorization)``: factorise and solve;
* ``resolve(fact, b) -> x``: solve again with a factorisation already made (the chord
  steps of Newton and the tangent predictor use it);
* ``resolve_transpose(fact, b) -> x``: solve J^T x = b (the adjoint system; PARDISO and KLU
  reuse the factors of J).

The pattern arrays are passed as traced arguments (not baked into the program as
constants). Every back end first equilibrates the matrix (rows, then columns, by their
largest magnitude): continuity rows span tens of decades.

Back ends, chosen per run (``"auto"``: by size, pattern and device, see :func:`auto_backend`):

* ``"pardiso"``: MKL PARDISO (supernodal, multithreaded, METIS ordering) through
  ``jax.pure_callback``; the symbolic analysis is done once per pattern and kept, and the
  numeric factorisation is kept between calls, so ``resolve`` costs one triangular solve.
  Under ``vmap`` each batch member gets its own solver slot. x86-64 only (MKL).
* ``"klu"``: KLU through klujax, an XLA FFI call with batching rules (portable); the
  symbolic analysis is reused, ``resolve`` re-factorises the stored matrix.
* ``"scipy"``: SuperLU through ``jax.pure_callback``; an independent reference.

Measured on the 2D diode Jacobian (18k unknowns, 2 cores): PARDISO factor 40 ms + solve
4 ms; SuperLU (COLAMD) 165 ms; klujax 227 ms per solve (scripts/bench_devsim.py).
* ``"cudss"``: NVIDIA cuDSS on the GPU (:mod:`pvsim.cudss`), matrix and factors on the device.
* Krylov back ends (:mod:`pvsim.krylov`: ``"gmres-ilu"``, ``"gmres-amg"``, ``"jax-gmres"``;
  :mod:`pvsim.amg`: ``"jax-amg"``, flexible GMRES + aggregation AMG, all in JAX;
  :mod:`pvsim.air`: ``"jax-air"``, flexible GMRES + AIR multigrid, all in JAX).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
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


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class Factorization:
    """What ``resolve`` needs: the scaled matrix values, scalings and a host token."""

    vals: jax.Array  # equilibrated values
    r: jax.Array
    c: jax.Array
    token: jax.Array  # back-end handle (pardiso: solver slot), int32
    aux: object = None  # a device back end's own set-up (jax-amg: its hierarchy's values)


@dataclass(frozen=True, eq=False)
class LinearSolver(ABC):
    """Base: equilibrate, call the back end on the scaled system, unscale."""

    rows: np.ndarray
    cols: np.ndarray
    n: int

    def factor_solve(self, vals, b, rows, cols, near_null=None):
        """Solve J x = b; return x and what ``resolve`` needs. ``near_null`` (n,): the log of
        a vector v with J v ~ 0 blockwise (:meth:`pvsim.assembly.Assembler.near_null_log`);
        only preconditioners that build a coarse space use it (direct solvers ignore it)."""
        r, c = equilibrate(rows, cols, vals, self.n)
        scaled = vals * r[rows] * c[cols]
        y, token = self._factor_solve(scaled, r * b, rows, cols)
        return c * y, Factorization(scaled, r, c, token)

    def resolve(self, fact: Factorization, b, rows, cols):
        return fact.c * self._resolve(fact, fact.r * b, rows, cols)

    def solve(self, vals, b, rows, cols, near_null=None):
        return self.factor_solve(vals, b, rows, cols, near_null)[0]

    def empty_aux(self, nnz: int):
        """Placeholder of ``Factorization.aux`` (same pytree structure) before the first solve."""
        return None

    def topology(self):
        """The back end's index arrays that a jitted caller passes as an argument (a pytree of
        device arrays; None: nothing beyond the pattern). See :meth:`bind`."""
        return None

    def bind(self, topology):
        """This solver using ``topology`` (as returned by :meth:`topology`, possibly traced)."""
        return self

    def resolve_transpose(self, fact: Factorization, b, rows, cols):
        """Solve J^T x = b with a factorisation of J (the adjoint system).

        With the equilibrated S = R J C: J^T x = b  <=>  S^T (R^-1 x) = C b.
        """
        return fact.r * self._resolve_transpose(fact, fact.c * b, rows, cols)

    @abstractmethod
    def _resolve_transpose(self, fact, b, rows, cols):
        """Solve S^T x = b for the equilibrated S stored in ``fact``."""

    # back ends implement _factor_solve, and may override _resolve (scaled system)
    @abstractmethod
    def _factor_solve(self, vals, b, rows, cols):
        """Solve the equilibrated system; return (x, token)."""

    def _resolve(self, fact, b, rows, cols):
        return self._factor_solve(fact.vals, b, rows, cols)[0]


@dataclass(frozen=True, eq=False)
class KLUSolver(LinearSolver):
    def __post_init__(self):
        import klujax

        r32 = jnp.asarray(self.rows, dtype=jnp.int32)
        c32 = jnp.asarray(self.cols, dtype=jnp.int32)
        object.__setattr__(self, "_symbolic", klujax.analyze(r32, c32, self.n))

    def _factor_solve(self, vals, b, rows, cols):
        import klujax

        x = klujax.solve_with_symbol(rows.astype(jnp.int32), cols.astype(jnp.int32),
                                     vals, b, self._symbolic)
        return x, jnp.zeros(b.shape[:-1], jnp.int32)

    def _resolve_transpose(self, fact, b, rows, cols):
        import klujax

        return klujax.tsolve_with_symbol(rows.astype(jnp.int32), cols.astype(jnp.int32),
                                         fact.vals, b, self._symbolic)


#: wall time spent in host (pure_callback) linear solves, for benchmarks: the linear-solve
#: share of a bias point. Accumulated; a caller resets it.
host_stats = {"calls": 0, "seconds": 0.0}


def _host_call(fn, out_shapes, *args):
    """pure_callback whose host function sees exactly one leading batch axis.

    Under (nested) vmap the arguments arrive with all batch axes in front; they are
    flattened to one, and the outputs reshaped back. The last argument is always a
    right-hand side (n,), which tells how many leading axes are batch axes.
    """
    def host(*a):
        t0 = time.perf_counter()
        batch = a[-1].shape[:-1]
        size = int(np.prod(batch)) if batch else 1
        flat = []
        for x in a:
            x = np.asarray(x)
            core = x.shape[len(batch):]
            flat.append(np.broadcast_to(x, batch + core).reshape((size,) + core))
        outs = fn(*flat)
        host_stats["calls"] += 1
        host_stats["seconds"] += time.perf_counter() - t0
        return tuple(np.asarray(o).reshape(batch + o.shape[1:]) for o in outs)

    return jax.pure_callback(host, out_shapes, *args, vmap_method="broadcast_all")


@dataclass(frozen=True, eq=False)
class ScipySolver(LinearSolver):
    def _factor_solve(self, vals, b, rows, cols):
        import scipy.sparse as sp
        from scipy.sparse.linalg import spsolve

        def host(v, rhs):
            xs = [spsolve(sp.csc_matrix((vi, (self.rows, self.cols)), shape=(self.n,) * 2), ri)
                  for vi, ri in zip(v, rhs)]
            return np.stack(xs).astype(np.float64), np.zeros(len(xs), np.int32)

        shapes = (jax.ShapeDtypeStruct(b.shape, b.dtype), jax.ShapeDtypeStruct(b.shape[:-1], jnp.int32))
        return _host_call(host, shapes, vals, b)

    def _resolve_transpose(self, fact, b, rows, cols):
        import scipy.sparse as sp
        from scipy.sparse.linalg import spsolve

        def host(v, rhs):
            xs = [spsolve(sp.csc_matrix((vi, (self.cols, self.rows)), shape=(self.n,) * 2), ri)
                  for vi, ri in zip(v, rhs)]
            return (np.stack(xs).astype(np.float64),)

        return _host_call(host, (jax.ShapeDtypeStruct(b.shape, b.dtype),), fact.vals, b)[0]


class _PardisoSlots:
    """MKL PARDISO handles, one per batch slot; analysis once per slot, factor kept.

    Each factorisation gets a serial number (its token). ``resolve`` uses the slot's
    stored factors only if they are still the ones the token names; otherwise (the slot
    was refactorised since) it refactorises the stored values first, so a stale token
    costs time, never correctness.
    """

    def __init__(self, rows, cols, n):
        import pypardiso

        self._lib = pypardiso
        self.n = n
        self.ia = (np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))]) + 1).astype(np.int32)
        self.ja = (np.asarray(cols) + 1).astype(np.int32)
        self.slots: dict[int, object] = {}
        self.serial: dict[int, int] = {}
        self._next = 0

    def _slot(self, k: int, vals):
        ps = self.slots.get(k)
        if ps is None:
            ps = self._lib.PyPardisoSolver(mtype=11)
            # 1-based: user iparm, METIS, no refinement steps (set per factorisation in
            # _factor), pivot eps 1e-13, no scaling/matching (we equilibrate)
            for i, v in [(1, 1), (2, 2), (8, 0), (10, 13), (11, 0), (13, 0)]:
                ps.set_iparm(i, v)
            if np.isnan(self._call(ps, 11, vals, np.zeros(self.n))).any():
                return ps  # analysis failed: not kept, the factorisation below reports NaN
            self.slots[k] = ps
        return ps

    def _call(self, ps, phase, vals, b):
        """One PARDISO phase; NaN (for Newton to report) if PARDISO returns an error."""
        import ctypes

        x = np.zeros_like(b)
        err = ctypes.c_int32(0)
        i32 = ctypes.POINTER(ctypes.c_int32)
        f64 = ctypes.POINTER(ctypes.c_double)
        one = ctypes.byref(ctypes.c_int32(1))
        ps._mkl_pardiso(ps.pt.ctypes.data_as(ctypes.POINTER(ps._pt_type[0])), one, one,
                        ctypes.byref(ctypes.c_int32(11)), ctypes.byref(ctypes.c_int32(phase)),
                        ctypes.byref(ctypes.c_int32(self.n)), vals.ctypes.data_as(f64),
                        self.ia.ctypes.data_as(i32), self.ja.ctypes.data_as(i32),
                        ps.perm.ctypes.data_as(i32), one, ps.iparm.ctypes.data_as(i32),
                        ctypes.byref(ctypes.c_int32(0)), b.ctypes.data_as(f64),
                        x.ctypes.data_as(f64), ctypes.byref(err))
        if err.value != 0:
            # a failed factorisation is reported as NaN: Newton turns it into a status
            return np.full_like(b, np.nan)
        return x

    def _factor(self, k, v, token):
        ps = self._slot(k, v)
        if np.isnan(self._call(ps, 22, v, np.zeros(self.n))).any():  # factorisation failed
            self.serial.pop(k, None)
            return None
        self.serial[k] = token
        # PARDISO replaces tiny pivots by +-eps*|A| (static pivoting); where it had to, the
        # solves need iterative refinement (e.g. a current-controlled diode near I = 0,
        # whose dI/dV is ~1e-13 of the other entries). Otherwise refinement only costs time.
        ps.iparm[7] = 3 if ps.iparm[13] > 0 else 0
        return ps

    def factor_solve(self, vals, b):
        xs, tokens = [], []
        for k, (v, rhs) in enumerate(zip(vals, b)):
            v = np.ascontiguousarray(v, dtype=np.float64)
            self._next = (self._next + 1) % (2**31 - 1)
            ps = self._factor(k, v, self._next)
            xs.append(np.full(self.n, np.nan) if ps is None
                      else self._call(ps, 33, v, np.ascontiguousarray(rhs)))
            tokens.append(self._next)
        return np.stack(xs), np.asarray(tokens, np.int32)

    def resolve(self, vals, tokens, b, transpose=False):
        xs = []
        for k, (v, t, rhs) in enumerate(zip(vals, tokens, b)):
            v = np.ascontiguousarray(v, dtype=np.float64)
            if t < 0:  # no factorisation yet (an unused branch under vmap)
                xs.append(np.full(self.n, np.nan))
                continue
            ps = self.slots[k] if self.serial.get(k) == int(t) else self._factor(k, v, int(t))
            if ps is None:
                xs.append(np.full(self.n, np.nan))
                continue
            ps.iparm[11] = 2 if transpose else 0  # PARDISO solves A^T x = b with the same factors
            xs.append(self._call(ps, 33, v, np.ascontiguousarray(rhs)))
            ps.iparm[11] = 0
        return (np.stack(xs),)

    def resolve_transpose(self, vals, tokens, b):
        return self.resolve(vals, tokens, b, transpose=True)


@dataclass(frozen=True, eq=False)
class HostSlotSolver(LinearSolver):
    """A back end whose host object (``self._host``) keeps per-batch-slot state (factors or a
    preconditioner) behind an int32 token: factor_solve, resolve and resolve_transpose."""

    def _factor_solve(self, vals, b, rows, cols):
        shapes = (jax.ShapeDtypeStruct(b.shape, b.dtype), jax.ShapeDtypeStruct(b.shape[:-1], jnp.int32))
        return _host_call(self._host.factor_solve, shapes, vals, b)

    def _resolve(self, fact, b, rows, cols):
        shapes = (jax.ShapeDtypeStruct(b.shape, b.dtype),)
        return _host_call(self._host.resolve, shapes, fact.vals, fact.token, b)[0]

    def _resolve_transpose(self, fact, b, rows, cols):
        shapes = (jax.ShapeDtypeStruct(b.shape, b.dtype),)
        return _host_call(self._host.resolve_transpose, shapes, fact.vals, fact.token, b)[0]


@dataclass(frozen=True, eq=False)
class PardisoSolver(HostSlotSolver):
    def __post_init__(self):
        object.__setattr__(self, "_host", _PardisoSlots(self.rows, self.cols, self.n))


def pardiso_available() -> bool:
    try:
        import pypardiso  # noqa: F401
    except Exception:  # ImportError, or MKL missing on this platform
        return False
    return True


#: unknowns up to which "auto" takes a sparse direct solve. 3D patterns (about 50 entries per
#: row with heat) fill in much faster than 2D ones (about 20): measured on 3D NC-monolayer
#: Jacobians (docs/benchmarks.md), PARDISO factorises 27k unknowns in ~1 s and 100k in ~10 s,
#: with fill growing like N^(4/3), while 2D stays near-linear up to 1e6 unknowns.
AUTO_DIRECT_MAX_3D = 150_000
AUTO_DIRECT_MAX_2D = 2_000_000
#: cuDSS on a GPU: measured on an H100 (80 GB), a 3D Jacobian of 534,600 unknowns has 2.0e9 LU
#: entries (16 GB; a bias point in 3.1 s); at N^(4/3) fill 1e6 unknowns need ~40 GB
AUTO_DIRECT_MAX_3D_GPU = 1_000_000
DENSE_3D_ROW = 30  # average entries per row above which a pattern counts as 3D


def _direct(platform: str) -> str:
    if platform == "gpu":
        from . import cudss

        if cudss.available():
            return "cudss"
        # klujax registers its FFI call for the CPU only; host callbacks work on any device
        return "pardiso" if pardiso_available() else "scipy"
    return "pardiso" if pardiso_available() else "klu"


def _cudss(rows, cols, n):
    from .cudss import CudssSolver

    return CudssSolver(rows, cols, n)


def _krylov(name):
    def make(rows, cols, n):
        from . import krylov

        kind = {"gmres-ilu": krylov.gmres_ilu, "gmres-amg": krylov.gmres_amg,
                "jax-gmres": krylov.JaxKrylovSolver}[name]
        return kind(rows, cols, n)
    return make


def _amg(rows, cols, n, groups=None):
    from .amg import AMGSolver

    node, field = groups if groups is not None else (None, None)
    return AMGSolver(rows, cols, n, dof_node=node, dof_field=field)


def _air(rows, cols, n, reference):
    from .air import AIRSolver

    return AIRSolver(rows, cols, n, reference=np.asarray(reference() if callable(reference) else reference))


BACKENDS = {"pardiso": PardisoSolver, "klu": KLUSolver, "scipy": ScipySolver,
            "gmres-ilu": _krylov("gmres-ilu"), "gmres-amg": _krylov("gmres-amg"),
            "jax-gmres": _krylov("jax-gmres"), "jax-amg": _amg, "jax-air": _air, "cudss": _cudss}


AMG_BACKENDS = ("jax-amg",)  # back ends that use the unknowns' (node, field) groups


def available_backends() -> list[str]:
    """Back ends that can be built here (pardiso needs MKL, gmres-amg pyamg, cudss a GPU)."""
    from . import cudss

    missing = {"pardiso": not pardiso_available(), "cudss": not cudss.available(),
               "klu": jax.default_backend() != "cpu"}  # klujax: an XLA FFI call for the CPU only
    out = [k for k in BACKENDS if not missing.get(k, False)]
    try:
        import pyamg  # noqa: F401
    except ImportError:
        out.remove("gmres-amg")
    return out


def auto_backend(n: int, nnz: int, platform: str | None = None) -> str:
    """The back end ``"auto"`` picks for a pattern of ``n`` unknowns and ``nnz`` entries on
    ``platform`` (JAX's default backend when None).

    * below the direct limit (for a 3D pattern, more than ``DENSE_3D_ROW`` entries per row:
      ``AUTO_DIRECT_MAX_3D`` unknowns, ``AUTO_DIRECT_MAX_3D_GPU`` with cuDSS; for a 2D
      pattern ``AUTO_DIRECT_MAX_2D``): sparse direct --
      cuDSS on a GPU where the library is installed, else PARDISO where MKL exists, else KLU
      (SuperLU on a GPU without cuDSS or MKL: klujax runs on the CPU only);
    * above it: on a GPU the device-resident ``"jax-amg"`` (FGMRES + aggregation AMG,
      :mod:`pvsim.amg`: no host round trip inside a Newton step); on the CPU GMRES with
      pyamg's AIR on the host (``"gmres-amg"``): on the 3D NC cell at 54k unknowns it took
      the sweep to 1 V in PARDISO's Newton iterations, while ILU (``"gmres-ilu"``) diverged
      on the Newton systems away from equilibrium and had not reached 0.5 V after 20 min
      (docs/benchmarks.md). ``"jax-gmres"`` (block-Jacobi only) does not converge on
      converged-state Jacobians and is chosen only by name. ``"jax-air"`` (:mod:`pvsim.air`,
      device-resident AIR) converges far from equilibrium on the 1e4 cell where ``"jax-amg"``
      stalls, and its Newton solve (11.07 GiB at 1e5 nodes as XLA assigns it, ~97 GiB
      extrapolated to 1e6) would fit an H200 but not an H100; but on the 1e5 cell its first
      bias step (0 -> 0.5 V) hit failed linear solves and had not converged after 35 min on
      the CPU (docs/benchmarks.md): by name only.
    """
    platform = jax.default_backend() if platform is None else platform
    direct = _direct(platform)
    limit_3d = AUTO_DIRECT_MAX_3D_GPU if direct == "cudss" else AUTO_DIRECT_MAX_3D
    limit = limit_3d if nnz > DENSE_3D_ROW * max(n, 1) else AUTO_DIRECT_MAX_2D
    if n <= limit:
        return direct
    return "jax-amg" if platform == "gpu" else "gmres-amg"


def make_solver(name: str, rows, cols, n: int, groups=None, reference=None) -> LinearSolver:
    """Build back end ``name`` (a key of ``BACKENDS``, or ``"auto"``: see :func:`auto_backend`).

    ``groups``: optional (node, field) of every unknown (:meth:`pvsim.layout.Layout.dof_groups`),
    used by ``"jax-amg"`` for its node blocks and aggregates. ``reference``: Jacobian values
    (nnz,), or a function returning them, from which ``"jax-air"`` fixes its C/F splitting and
    neighbourhoods (:class:`pvsim.device.Device` passes the Jacobian at the initial guess)."""
    if name == "auto":
        name = auto_backend(int(n), len(rows))
    if name not in BACKENDS:
        raise ValueError(f"linear solver '{name}' unknown; choose one of {sorted(BACKENDS)} or 'auto'")
    if name == "pardiso" and not pardiso_available():
        raise ValueError("linear solver 'pardiso' needs pypardiso (MKL, x86-64); use 'klu' or 'auto'")
    if name in AMG_BACKENDS:
        return BACKENDS[name](np.asarray(rows), np.asarray(cols), int(n), groups)
    if name == "jax-air":
        if reference is None:
            raise ValueError("linear solver 'jax-air' needs reference Jacobian values (make_solver(..., reference=))")
        return BACKENDS[name](np.asarray(rows), np.asarray(cols), int(n), reference)
    return BACKENDS[name](np.asarray(rows), np.asarray(cols), int(n))
