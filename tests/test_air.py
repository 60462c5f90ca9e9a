"""The device-resident AIR back end (pvsim.air) against independent constructions.

* every row of R annihilates A on the neighbours it keeps: (R A)[i, N_i] = 0, the defining
  identity of local approximate ideal restriction, checked with scipy products;
* the coarse matrix built by segment sums over precomputed pieces equals R A P formed with
  scipy from the explicit R and P, and the chunked product (large meshes) equals the one-shot one;
* the transposed cycle is the adjoint of the cycle: <M x, y> = <x, M^T y>;
* on a convection-dominated matrix (the one-sided coupling of minority carriers in a field)
  FGMRES converges in few iterations to the SuperLU solution, serially and under vmap, and the
  transposed solve too; the structure is fixed from a *different* reference matrix;
* on the 2D diode's Newton system one step after a jump from equilibrium to 0.3 V (where the
  aggregation AMG needs the Slotboom vectors, tests/test_amg.py), with the splitting fixed from
  the Jacobian at the initial guess, the solve matches the direct one.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla
from helpers import laplacian_3d

from pvsim import air


def _explicit(lv, data, nnz_pattern):
    """R (nc x n) and P (n x nc) of one level as scipy matrices from the set-up."""
    n, nc = lv.n, lv.nc
    z, nbr = np.asarray(data["z"]), np.asarray(lv.nbr)
    keep = nbr < n
    r = sp.csr_matrix((z[keep], (np.nonzero(keep)[0], nbr[keep])), shape=(nc, n))
    has = np.asarray(lv.coarse_of) < nc
    p = sp.csr_matrix((np.ones(has.sum()), (np.flatnonzero(has), np.asarray(lv.coarse_of)[has])), shape=(n, nc))
    return r, p


@pytest.fixture(scope="module")
def convection():
    """Upwind convection-diffusion (Peclet 20 per cell) on a 12^3 grid; the reference matrix
    has half the convection, so the fixed structure is not tuned to the solved matrix."""
    rows, cols, vals, a = laplacian_3d(12, convection=20.0)
    _, _, ref, _ = laplacian_3d(12, convection=10.0)
    solver = air.AIRSolver(rows, cols, a.shape[0], reference=ref, coarse_max=100)
    return dict(rows=rows, cols=cols, vals=vals, a=a, solver=solver)


def test_restriction_annihilates_the_kept_neighbourhood(convection):
    s = convection
    h, a = s["solver"].hierarchy, s["a"]
    data = air.air_setup(h, jnp.asarray(s["vals"]), jnp.asarray(s["rows"]), jnp.asarray(s["cols"]))
    lv = h.levels[0]
    r, _ = _explicit(lv, data[0], len(s["vals"]))
    ra = (r @ a).toarray()
    offdiag = abs(a - sp.diags(a.diagonal())).max(axis=1).toarray().ravel()
    kept = checked = 0
    for i, c in enumerate(np.asarray(lv.c_points)):
        nb = np.asarray(lv.nbr)[i, :-1]
        nb = nb[nb < lv.n]
        strong = np.abs(a[c, nb].toarray().ravel()) >= 0.05 * offdiag[c]  # pyamg's local AIR, theta 0.05
        kept += strong.sum()
        checked += len(nb)
        np.testing.assert_allclose(ra[i, nb[strong]], 0.0, atol=1e-12 * abs(a[c]).max())
    assert kept > 0.5 * lv.nc  # most C-points keep neighbours: the identity is not vacuous
    print(f"{lv.nc} C-points of {lv.n}: kept {kept} of {checked} neighbourhood slots")


def test_coarse_operator_equals_explicit_rap(convection):
    s = convection
    h = s["solver"].hierarchy
    data = air.air_setup(h, jnp.asarray(s["vals"]), jnp.asarray(s["rows"]), jnp.asarray(s["cols"]))
    a = s["a"]
    for k, lv in enumerate(h.levels):
        r, p = _explicit(lv, data[k], None)
        rap = (r @ a @ p).tocoo()
        nxt = h.levels[k + 1] if k + 1 < len(h.levels) else None
        cr, cc = (nxt.rows, nxt.cols) if nxt is not None else (h.coarse_rows, h.coarse_cols)
        vals = np.asarray(data[k + 1]["vals"]) if nxt is not None else None
        got = sp.csr_matrix((vals if vals is not None else np.zeros(len(cr)), (np.asarray(cr), np.asarray(cc))),
                            shape=(lv.nc, lv.nc))
        if vals is None:  # coarsest: compare through its dense LU
            lu, piv = (np.asarray(x) for x in data[k + 1]["lu"])
            got = sp.csr_matrix(_unpack_lu(lu, piv))
        np.testing.assert_allclose(got.toarray(), rap.toarray(), rtol=0, atol=1e-12 * abs(rap).max())
        a = rap.tocsr()
    assert len(h.levels) >= 2


def _unpack_lu(lu, piv):
    """The matrix whose LAPACK getrf factors are (lu, piv)."""
    n = lu.shape[0]
    m = (np.tril(lu, -1) + np.eye(n)) @ np.triu(lu)
    perm = np.arange(n)
    for i, j in enumerate(piv):
        perm[i], perm[j] = perm[j], perm[i]
    out = np.empty_like(m)
    out[perm] = m
    return out


def test_transposed_cycle_is_the_adjoint(convection):
    s = convection
    h = s["solver"].hierarchy
    r, c = jnp.asarray(s["rows"]), jnp.asarray(s["cols"])
    data = air.air_setup(h, jnp.asarray(s["vals"]), r, c)
    m, a = air.air_preconditioner(h, data, r, c)
    mt, at = air.air_preconditioner(h, data, r, c, transpose=True)
    assert at is None  # the transposed solve takes FGMRES's COO product S^T x
    rng = np.random.default_rng(3)
    for _ in range(3):
        x, y = (jnp.asarray(rng.standard_normal(s["a"].shape[0])) for _ in range(2))
        lhs, rhs = float(jnp.vdot(m(x), y)), float(jnp.vdot(x, mt(y)))
        assert abs(lhs - rhs) <= 1e-12 * abs(lhs)
        # the packed product (F rows and C rows apart) is S x
        np.testing.assert_allclose(a(x), s["a"] @ np.asarray(x), rtol=1e-13, atol=1e-13 * np.abs(s["a"]).max())


def test_convection_dominated_solve_serial_vmap_transpose(convection):
    s = convection
    solver, a = s["solver"], s["a"]
    n = a.shape[0]
    r, c = jnp.asarray(s["rows"]), jnp.asarray(s["cols"])
    scale = jnp.asarray([1.0, 5.0])
    v = jnp.asarray(s["vals"])[None, :] * scale[:, None]
    rng = np.random.default_rng(4)
    b = jnp.asarray(rng.standard_normal((2, n)))
    xb, fact = jax.jit(jax.vmap(solver.factor_solve, in_axes=(0, 0, None, None)))(v, b, r, c)
    its = np.asarray(fact.token)
    print(f"AIR levels {solver.hierarchy.sizes}: FGMRES iterations {its}")
    assert np.all(its <= 20)
    for k in range(2):
        ak = (a * float(scale[k])).tocsc()
        x_ref = sla.spsolve(ak, np.asarray(b[k]))
        xs = np.asarray(jax.jit(solver.solve)(v[k], b[k], r, c))
        np.testing.assert_allclose(np.asarray(xb[k]), xs, rtol=0, atol=1e-9 * np.abs(xs).max())
        np.testing.assert_allclose(xs, x_ref, rtol=0, atol=1e-8 * np.abs(x_ref).max())
    xt = np.asarray(jax.jit(jax.vmap(solver.resolve_transpose, in_axes=(0, 0, None, None)))(fact, b, r, c))
    for k in range(2):
        ak = a * float(scale[k])
        assert np.linalg.norm(ak.T @ xt[k] - np.asarray(b[k])) <= 1e-9 * np.linalg.norm(np.asarray(b[k]))


def test_needs_reference_values():
    from pvsim.linalg import make_solver

    rows, cols, vals, a = laplacian_3d(4)
    with pytest.raises(ValueError, match="reference"):
        make_solver("jax-air", rows, cols, a.shape[0])


def test_diode_newton_system_far_from_equilibrium(diode_far):
    """The 2D diode one Newton step after a jump from equilibrium to 0.3 V (quasi-Fermi levels
    spread over ~12 V_T), splitting fixed from the Jacobian at the initial guess: the solution
    equals SuperLU's in the equilibrated unknowns."""
    from pvsim.linalg import equilibrate

    dev, u, f, vals = diode_far
    rows, cols, n = np.asarray(dev.asm.rows), np.asarray(dev.asm.cols), dev.asm.n_dof
    solver = air.AIRSolver(rows, cols, n, reference=dev._reference_jacobian())
    x, fact = jax.jit(solver.factor_solve)(vals, -f, jnp.asarray(rows), jnp.asarray(cols))
    jac = sp.csr_matrix((np.asarray(vals), (rows, cols)), shape=(n, n))
    x_ref = sla.spsolve(jac.tocsc(), -np.asarray(f))
    rr, cc = (np.asarray(t) for t in equilibrate(jnp.asarray(rows), jnp.asarray(cols), vals, n))
    y, y_ref = np.asarray(x) / cc, x_ref / cc  # equilibrated unknowns
    res = np.linalg.norm(rr * (jac @ np.asarray(x) + np.asarray(f))) / np.linalg.norm(rr * np.asarray(f))
    err = np.max(np.abs(y - y_ref)) / np.max(np.abs(y_ref))
    print(f"levels {solver.hierarchy.sizes}: FGMRES iterations {int(fact.token)}, equilibrated residual "
          f"{res:.1e}, forward error {err:.1e}")
    assert int(fact.token) <= 60 and res < 1e-9 and err < 1e-6


def test_chunked_coarse_product_equals_one_shot(convection, monkeypatch):
    """Above TRIPLE_CHUNK triples the coarse product runs as a loop over chunks (bounded
    temporaries on 1e6-node meshes); it must give the same coarse matrices."""
    s = convection
    r, c, v = jnp.asarray(s["rows"]), jnp.asarray(s["cols"]), jnp.asarray(s["vals"])
    ref = laplacian_3d(12, convection=10.0)[2]
    one = air.air_setup(air.build_air(s["rows"], s["cols"], s["a"].shape[0], ref, coarse_max=100), v, r, c)
    monkeypatch.setattr(air, "TRIPLE_CHUNK", 1000)
    h = air.build_air(s["rows"], s["cols"], s["a"].shape[0], ref, coarse_max=100)
    assert all(lv.piece_step == 1000 // lv.t_q.shape[1] for lv in h.levels)  # pieces per step
    assert all(lv.t_q.shape[0] % lv.piece_step == 0 and lv.t_q.shape[0] > lv.piece_step for lv in h.levels)
    chunked = jax.jit(lambda v: air.air_setup(h, v, r, c))(v)
    for a, b in zip(one[1:-1], chunked[1:-1]):
        np.testing.assert_allclose(np.asarray(b["vals"]), np.asarray(a["vals"]), rtol=0,
                                   atol=1e-13 * float(jnp.max(jnp.abs(a["vals"]))))
