"""cuDSS, NVIDIA's sparse direct solver, as a linear back end that keeps the Jacobian on the GPU.

The equilibrated matrix values and the right-hand side reach the solver as device buffers
(``jax.experimental.buffer_callback``: CuPy views of XLA's buffers, on XLA's stream), so a
Newton step -- assembly, factorisation, solve, update, convergence test -- never copies the
system to the host. cuDSS is called through its C interface (``ctypes``); the library comes
from the ``nvidia-cudss-cu13`` (or ``-cu12``) wheel, ``PVSIM_CUDSS_LIB=<path>`` or the
loader's search path.

Per sparsity pattern and batch size one cuDSS object is kept:

* the reordering and symbolic analysis (``CUDSS_PHASE_ANALYSIS``) are done once, at the
  first factorisation, and reused for every later Newton step and bias point;
* each ``factor_solve`` runs the numeric factorisation (``CUDSS_PHASE_FACTORIZATION``) and
  a solve; ``resolve`` reuses the factors while they are still the ones its token names
  (the same serial-number rule as :class:`pvsim.linalg._PardisoSlots`);
* ``resolve_transpose`` (the adjoint) factorises S^T -- cuDSS 0.7 has no transposed solve
  -- on a second object whose CSR pattern is that of S^T, its values a fixed permutation of
  S's (built once on the host), analysed once and refactorised only when asked for;
* under ``vmap`` the whole batch is one *uniform batch* (``CUDSS_CONFIG_UBATCH_SIZE``):
  one analysis, all members factorised and solved in one call.

Failed factorisations (a zero pivot reported by ``CUDSS_DATA_INFO``) return NaN, which
Newton turns into a step reduction, as for the host back ends.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .linalg import LinearSolver, host_stats

# cudss.h (0.7): enum values used here
_CUDA_R_64F, _CUDA_R_32I = 1, 10
_MTYPE_GENERAL, _MVIEW_FULL, _BASE_ZERO, _COL_MAJOR = 0, 0, 0, 0
_PHASE_ANALYSIS, _PHASE_FACTORIZATION, _PHASE_SOLVE = 3, 4, 1008
_CONFIG_IR_N_STEPS, _CONFIG_UBATCH_SIZE = 6, 19
_DATA_INFO, _DATA_LU_NNZ = 0, 1

#: iterative-refinement steps per solve (cuDSS replaces tiny pivots; refinement recovers
#: the accuracy, as PARDISO's does)
REFINEMENT_STEPS = 2

_LIB = None


def _nvidia_roots() -> list[str]:
    """Folders of the ``nvidia`` namespace package of NVIDIA's wheels (none if absent)."""
    try:
        import nvidia
    except ImportError:
        return []
    return list(nvidia.__path__)


def _candidates():
    env = os.environ.get("PVSIM_CUDSS_LIB")
    if env:
        yield env
    for root in _nvidia_roots():
        for sub in ("cu13/lib", "cu12/lib", "cudss/lib"):
            yield from sorted(glob.glob(os.path.join(root, sub, "libcudss.so*")))
    found = ctypes.util.find_library("cudss")
    if found:
        yield found
    yield "libcudss.so.0"


def _preload_cublas():
    """cuDSS links libcublas by soname; NVIDIA's wheels keep it off the loader's path."""
    for root in _nvidia_roots():
        for path in sorted(glob.glob(os.path.join(root, "*", "lib", "libcublas.so.1[23]"))):
            try:
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            except OSError:
                continue


def load_library():
    """The cuDSS shared library (ctypes), loaded once; ``None`` when none can be loaded."""
    global _LIB
    if _LIB is None:
        _preload_cublas()
        for path in _candidates():
            try:
                _LIB = ctypes.CDLL(path)
                break
            except OSError:
                continue
    return _LIB


def available() -> bool:
    """cuDSS can run here: a CUDA device for JAX, CuPy, and the library."""
    try:
        if jax.default_backend() != "gpu":
            return False
        import cupy  # noqa: F401
    except Exception:
        return False
    return load_library() is not None


def _check(status, what):
    if status == 2:  # CUDSS_STATUS_ALLOC_FAILED
        raise MemoryError(f"cuDSS {what}: out of GPU memory. JAX takes 75 % of the GPU at start unless "
                          "XLA_PYTHON_CLIENT_PREALLOCATE=false (pvsim sets it on import when unset); a 3D "
                          "Jacobian of 5e5 unknowns needs ~16 GB of LU factors (docs/benchmarks.md)")
    if status != 0:
        raise RuntimeError(f"cuDSS {what} failed with status {status}")


class _System:
    """One cuDSS solver object: a CSR pattern, a uniform batch of ``batch`` matrices."""

    def __init__(self, indptr, indices, n: int, batch: int):
        import cupy as cp

        lib = load_library()
        self.lib, self.n, self.batch = lib, n, batch
        self.nnz = len(indices)
        self.indptr = cp.asarray(indptr, dtype=cp.int32)
        self.indices = cp.asarray(indices, dtype=cp.int32)
        self.vals = cp.zeros(batch * self.nnz)
        self.x = cp.zeros(batch * n)
        self.b = cp.zeros(batch * n)
        vp = ctypes.c_void_p
        self.handle, self.config, self.data = vp(), vp(), vp()
        self.A, self.X, self.B = vp(), vp(), vp()
        _check(lib.cudssCreate(ctypes.byref(self.handle)), "create")
        _check(lib.cudssConfigCreate(ctypes.byref(self.config)), "config")
        _check(lib.cudssDataCreate(self.handle, ctypes.byref(self.data)), "data")
        self._config(_CONFIG_IR_N_STEPS, REFINEMENT_STEPS)
        if batch > 1:
            self._config(_CONFIG_UBATCH_SIZE, batch)
        i64 = ctypes.c_int64
        _check(lib.cudssMatrixCreateCsr(
            ctypes.byref(self.A), i64(n), i64(n), i64(self.nnz), vp(self.indptr.data.ptr), vp(None),
            vp(self.indices.data.ptr), vp(self.vals.data.ptr), ctypes.c_int(_CUDA_R_32I),
            ctypes.c_int(_CUDA_R_64F), ctypes.c_int(_MTYPE_GENERAL), ctypes.c_int(_MVIEW_FULL),
            ctypes.c_int(_BASE_ZERO)), "matrix")
        for mat, arr in ((self.X, self.x), (self.B, self.b)):
            _check(lib.cudssMatrixCreateDn(ctypes.byref(mat), i64(n), i64(1), i64(n), vp(arr.data.ptr),
                                           ctypes.c_int(_CUDA_R_64F), ctypes.c_int(_COL_MAJOR)), "dense")
        self.analysed = False
        self.serial = -1  # serial number of the factors held

    def _config(self, param, value):
        v = ctypes.c_int(value)
        _check(self.lib.cudssConfigSet(self.config, ctypes.c_int(param), ctypes.byref(v),
                                       ctypes.c_size_t(4)), "config set")

    def _execute(self, phase, what):
        _check(self.lib.cudssExecute(self.handle, ctypes.c_int(phase), self.config, self.data,
                                     self.A, self.X, self.B), what)

    def _info(self, param, ctype):
        out, written = ctype(0), ctypes.c_size_t(0)
        _check(self.lib.cudssDataGet(self.handle, self.data, ctypes.c_int(param), ctypes.byref(out),
                                     ctypes.c_size_t(ctypes.sizeof(out)), ctypes.byref(written)), "data get")
        return out.value

    def factor(self, vals, stream, serial: int) -> bool:
        """Factorise the batch ``vals`` (batch, nnz) on ``stream``; False on a zero pivot."""
        import cupy as cp

        _check(self.lib.cudssSetStream(self.handle, ctypes.c_void_p(stream)), "set stream")
        self.vals[...] = vals.reshape(-1)
        if not self.analysed:
            self._execute(_PHASE_ANALYSIS, "analysis")
            self.analysed = True
        self._execute(_PHASE_FACTORIZATION, "factorisation")
        cp.cuda.ExternalStream(stream).synchronize()  # the pivot report is read on the host
        ok = self._info(_DATA_INFO, ctypes.c_int) == 0
        self.serial = serial if ok else -1
        return ok

    def solve(self, b, stream):
        _check(self.lib.cudssSetStream(self.handle, ctypes.c_void_p(stream)), "set stream")
        self.b[...] = b.reshape(-1)
        self._execute(_PHASE_SOLVE, "solve")
        return self.x.reshape(self.batch, self.n)

    def lu_nnz(self) -> int:
        """Entries in the factors (the fill), after the analysis."""
        return int(self._info(_DATA_LU_NNZ, ctypes.c_int64))

    def __del__(self):
        lib = getattr(self, "lib", None)
        if lib is None:
            return
        for mat in (self.A, self.X, self.B):
            if mat.value:
                lib.cudssMatrixDestroy(mat)
        if self.data.value:
            lib.cudssDataDestroy(self.handle, self.data)
        if self.config.value:
            lib.cudssConfigDestroy(self.config)
        if self.handle.value:
            lib.cudssDestroy(self.handle)


class _CudssSlots:
    """cuDSS objects per batch size, for S and (on first use) S^T."""

    def __init__(self, rows, cols, n):
        rows, cols = np.asarray(rows), np.asarray(cols)
        if np.any(np.diff(rows) < 0):
            raise ValueError("cudss needs the pattern in CSR order (rows sorted)")
        self.n = n
        self.indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))])
        self.indices = cols
        # S^T in CSR: entries sorted by (col, row); S^T's k-th value is S's tperm[k]-th
        self.tperm = np.lexsort((rows, cols))
        self.t_indptr = np.concatenate([[0], np.cumsum(np.bincount(cols, minlength=n))])
        self.t_indices = rows[self.tperm]
        self.systems: dict[tuple[int, bool], _System] = {}
        self._tperm_dev = None
        self._next = 0

    def _system(self, batch, transpose=False):
        key = (batch, transpose)
        if key not in self.systems:
            if transpose:
                self.systems[key] = _System(self.t_indptr, self.t_indices, self.n, batch)
            else:
                self.systems[key] = _System(self.indptr, self.indices, self.n, batch)
        return self.systems[key]

    def _values(self, vals, transpose):
        if not transpose:
            return vals
        import cupy as cp

        if self._tperm_dev is None:
            self._tperm_dev = cp.asarray(self.tperm)
        return vals[:, self._tperm_dev]

    def factor_solve(self, stream, vals, b):
        """vals (B, nnz), b (B, n) CuPy arrays -> (x (B, n), tokens (B,))."""
        import cupy as cp

        self._next = self._next % (2**31 - 2) + 1
        sysm = self._system(len(b))
        if not sysm.factor(vals, stream, self._next):
            return cp.full(b.shape, cp.nan), cp.full(len(b), self._next, cp.int32)
        return sysm.solve(b, stream), cp.full(len(b), self._next, cp.int32)

    def resolve(self, stream, vals, tokens, b, transpose=False):
        import cupy as cp

        sysm = self._system(len(b), transpose)
        token = int(tokens[0])
        if token <= 0:  # no factorisation yet (an unused branch under vmap)
            return cp.full(b.shape, cp.nan)
        if sysm.serial != token or bool(cp.any(tokens != token)):
            if not sysm.factor(self._values(vals, transpose), stream, token):
                return cp.full(b.shape, cp.nan)
        return sysm.solve(b, stream)


def _call(fn, out_shapes, *args):
    """``buffer_callback`` whose function sees CuPy views with one leading batch axis and
    XLA's CUDA stream; the last argument is a right-hand side (n,) that tells how many
    leading axes are batch axes."""
    from jax.experimental.buffer_callback import buffer_callback

    def callback(ctx, outs, *bufs):
        import cupy as cp

        t0 = time.perf_counter()
        stream = ctx.stream
        with cp.cuda.ExternalStream(stream) as s:
            batch = tuple(bufs[-1].shape[:-1])
            size = int(np.prod(batch)) if batch else 1
            views = [cp.asarray(buf).reshape((size,) + tuple(buf.shape[len(batch):])) for buf in bufs]
            results = fn(stream, *views)
            for out, res in zip(outs, results):
                cp.asarray(out)[...] = res.reshape(out.shape)
            s.synchronize()  # so that host_stats times the solve (a factorisation dwarfs the wait)
        host_stats["calls"] += 1
        host_stats["seconds"] += time.perf_counter() - t0

    return buffer_callback(callback, out_shapes, vmap_method="broadcast_all")(*args)


@dataclass(frozen=True, eq=False)
class CudssSolver(LinearSolver):
    """Sparse direct solves with cuDSS on the GPU (see the module docstring)."""

    def __post_init__(self):
        if not available():
            raise ValueError("linear solver 'cudss' needs a CUDA GPU for JAX, CuPy and the cuDSS library "
                             "(pip install nvidia-cudss-cu13, or set PVSIM_CUDSS_LIB); use 'auto' elsewhere")
        object.__setattr__(self, "_host", _CudssSlots(self.rows, self.cols, self.n))

    def fill(self) -> int | None:
        """Entries of the LU factors of the unbatched system (None before its analysis)."""
        sysm = self._host.systems.get((1, False))
        return sysm.lu_nnz() if sysm is not None and sysm.analysed else None

    def _factor_solve(self, vals, b, rows, cols):
        shapes = (jax.ShapeDtypeStruct(b.shape, b.dtype), jax.ShapeDtypeStruct(b.shape[:-1], jnp.int32))
        return _call(self._host.factor_solve, shapes, vals, b)

    def _resolve(self, fact, b, rows, cols):
        shapes = (jax.ShapeDtypeStruct(b.shape, b.dtype),)
        return _call(lambda s, v, t, r: (self._host.resolve(s, v, t, r),), shapes,
                     fact.vals, fact.token, b)[0]

    def _resolve_transpose(self, fact, b, rows, cols):
        shapes = (jax.ShapeDtypeStruct(b.shape, b.dtype),)
        return _call(lambda s, v, t, r: (self._host.resolve(s, v, t, r, transpose=True),), shapes,
                     fact.vals, fact.token, b)[0]
