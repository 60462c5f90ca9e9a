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
    raise RuntimeError("manufactured-solution Newton did not converge "
                       f"(last update {np.max(np.abs(du)):.3g})")


def convergence_order(h, err) -> float:
    """Slope of log(err) against log(h) (least squares)."""
    return float(np.polyfit(np.log(h), np.log(err), 1)[0])


def gradient_check(f, theta, typical=None, rel_step: float = 1e-5):
    """Adjoint Jacobian of a vector function against central finite differences.

    ``f(theta) -> (M,)`` (JAX-traceable, e.g. figures of merit of a steady state);
    ``theta`` (K,). The reverse-mode Jacobian is built row by row from one compiled VJP;
    column k of the finite-difference Jacobian uses h_k = rel_step max(|theta_k|,
    typical_k). Returns (jacobian (M, K), finite differences (M, K), relative error per
    column: ||J_k - FD_k|| / ||J_k|| with each output normalised by |f(theta)|).
    """
    theta = jax.numpy.asarray(theta, dtype=float)
    typical = np.ones(theta.shape) if typical is None else np.asarray(typical, dtype=float)
    fj = jax.jit(f)
    f0 = np.asarray(fj(theta))
    vjp = jax.jit(lambda t, ct: jax.vjp(f, t)[1](ct)[0])
    jac = np.stack([np.asarray(vjp(theta, jax.numpy.eye(len(f0))[m])) for m in range(len(f0))])
    fd = np.zeros_like(jac)
    for k in range(len(theta)):
        h = rel_step * max(abs(float(theta[k])), typical[k])
        e = jax.numpy.zeros_like(theta).at[k].set(h)
        fd[:, k] = (np.asarray(fj(theta + e)) - np.asarray(fj(theta - e))) / (2 * h)
    norm = np.where(np.abs(f0) > 0, np.abs(f0), 1.0)[:, None]
    err = np.linalg.norm((jac - fd) / norm, axis=0) / np.linalg.norm(jac / norm, axis=0)
    return jac, fd, err
