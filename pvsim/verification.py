"""Tools for verification studies (manufactured solutions, convergence rates).

:func:`solve_dirichlet` runs Newton on the production residual and Jacobian
(:meth:`pvsim.assembly.Assembler.raw`) with an arbitrary set of unknowns held at given
values, so a manufactured solution can prescribe Dirichlet data on any boundary and any
field. :func:`convergence_order` fits log(error) against log(h).
"""

from __future__ import annotations

import jax
import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

from .assembly import Assembler
from .params import Params


def solve_dirichlet(asm: Assembler, params: Params, u_fixed: np.ndarray, free: np.ndarray,
                    u0: np.ndarray | None = None, tol: float = 1e-12, max_iter: int = 30):
    """Solve the raw equations for the ``free`` unknowns; others stay at ``u_fixed``."""
    raw = jax.jit(asm.raw)
    u = np.array(u_fixed if u0 is None else u0, dtype=float)
    u[~free] = np.asarray(u_fixed)[~free]
    rows, cols = np.asarray(asm.rows), np.asarray(asm.cols)
    idx = np.nonzero(free)[0]
    for _ in range(max_iter):
        f, vals = (np.asarray(a) for a in raw(u, params))
        jac = sp.csr_matrix((vals, (rows, cols)), shape=(asm.n_dof, asm.n_dof))[idx][:, idx]
        du = spsolve(jac.tocsc(), -f[idx])
        u[idx] += du
        if np.max(np.abs(du)) < tol:
            return u
    raise RuntimeError(f"manufactured-solution Newton did not converge (last update {np.max(np.abs(du)):.3g})")


def convergence_order(h, err) -> float:
    """Slope of log(err) against log(h) (least squares)."""
    return float(np.polyfit(np.log(h), np.log(err), 1)[0])
