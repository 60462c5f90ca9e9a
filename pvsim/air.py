"""Device-resident AIR algebraic multigrid + flexible GMRES: the ``"jax-air"`` back end.

Why AIR. Away from equilibrium the minority-carrier continuity rows of the Jacobian are
advection-dominated: Scharfetter-Gummel couplings are exponentially one-sided in a field, so a
row couples strongly to its upstream neighbour and hardly at all downstream. Galerkin
aggregation (:mod:`pvsim.amg`, R = P^T) misses that and stalls (docs/benchmarks.md, 1e4 cell:
368 iterations with an exact coarse solve, 1000 and NaN in the sweep). Approximate ideal
restriction (Manteuffel, Ruge and Southworth 2018, SIAM J. Sci. Comput. 40:A4105;
Manteuffel, Southworth et al. 2019, SIAM J. Sci. Comput. 41:S242) builds R so that R A
vanishes on a neighbourhood of F-points, which is what a one-sided coupling needs.

Static shapes. pyamg's AIR (the CPU ``gmres-amg`` back end) chooses everything from the
values of each matrix; inside a jitted Newton loop the shapes must be fixed. Measured on the
Newton systems of the 1e4 cell and the 2D diode (docs/benchmarks.md), the parts can be fixed
as follows, once per device, from a *reference* Jacobian (the one at the initial guess):

* the C/F splitting of every level (classical strength, theta 0.3, Ruge-Stueben splitting with
  second pass, as pyamg's ``air_solver``) and the one-point interpolation P (each F-point takes
  the value of its strongest C-neighbour in the reference): a fixed map;
* the neighbourhood of every C-point: its F-neighbours in the level's pattern, at most ``k_max``
  of them (the largest in the reference).

What must follow the current values is R: for each C-point i the row z of R on its
neighbourhood N solves z A[N, N] = -A[i, N] (a batch of small dense solves, one per C-point),
where N keeps only the neighbours strongly coupled to i in the *current* matrix
(|a_ij| >= 0.05 max_k |a_ik|, pyamg's local AIR, degree 1); the others are masked out of the
local system. Neighbourhoods taken from the reference strength instead gave 1066 iterations on
the first Newton system after a bias step, against 14 with the masking. The coarse matrix
R A P then has a fixed pattern; its values are two segment sums, B = A P (one target per
entry of A) and R B in pieces: one entry of R times w consecutive entries of a row of B, with
only the coarse target of each product stored (4 bytes per product instead of 12 for explicit
(R entry, B entry, coarse entry) triples; the 1e5 cell has 4e8 such products).

Cycle: V-cycle without pre-smoothing, post-smoothing by Jacobi on the F-points twice and then on
the C-points (pyamg's default "FFC" for AIR); the coarsest level (at most ``coarse_max``
unknowns) is factorised densely. Each sweep forms only its own rows of the residual, from the
F rows and the C rows of the level's matrix packed apart in row-chunked ELL layouts
(:class:`pvsim.amg.Packed`: a gather and a sum per row, no scatter), so the three sweeps cost
1.6 products with A instead of 3 (63 % F-points on the 1e4 cell). Measured on the 1e4 cell (2
CPU cores): one cycle 88 ms with COO products (segment sums), 25 ms packed, 15 ms with the F/C
rows apart. The transposed solve (adjoint) applies the exact transpose of this cycle with the
same set-up, so S^T M^T = (M S)^T has the spectrum of the forward preconditioned operator; its
products are COO segment sums over the level's pattern (packing A^T too would add half again to
the hierarchy's indices, 1.0 of 5.4 GiB on the 1e5 cell, for one transposed solve per gradient).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from .amg import DeviceKrylov, Packed, _static, pack_rows, packed_matvec, packed_values
from .linalg import equilibrate

#: strength threshold of the neighbours kept in R's local systems (as pyamg's air_solver)
R_THETA = 0.05

#: products of R B per step of the coarse-product loop and per block of the host build: bounds
#: their temporaries (two gathers and a product of this length, ~0.3 GB) whatever the mesh size
TRIPLE_CHUNK = 1 << 24


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class RowBlock:
    """The rows of one point set of a level (its F-points or its C-points): A[S, :] packed for
    the products of the Jacobi sweeps on S. The transposed sweeps (adjoint) use the level's COO
    pattern instead: a packed A[S, :]^T would double these indices, for one transposed solve per
    gradient against tens of forward solves per bias point."""

    points: np.ndarray  # (ns,) index of each point of the set
    slot: np.ndarray  # (n,) each unknown's place in ``points`` (ns: not in the set)
    pack: Packed  # y_S = A[S, :] x


def _row_block(in_set, rows, cols, n) -> RowBlock:
    points = np.flatnonzero(in_set)
    slot = np.full(n, len(points), np.int64)
    slot[points] = np.arange(len(points))
    e = np.flatnonzero(in_set[rows])
    i32 = lambda a: a.astype(np.int32)  # noqa: E731
    return RowBlock(i32(points), i32(slot), pack_rows(slot[rows[e]], cols[e], len(points), e, len(rows)))


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class AIRLevel:
    """Index data of one level (the pattern of the finest level arrives traced)."""

    rows: np.ndarray | None
    cols: np.ndarray | None
    diag: np.ndarray  # (n,) entry of each diagonal (nnz: absent)
    off: np.ndarray  # (nnz,) True off the diagonal
    coarse_of: np.ndarray  # (n,) coarse unknown each unknown takes its value from (nc: none)
    nbr: np.ndarray  # (nc, k+1) neighbourhood (n: padding), last column the C-point itself
    local_entry: np.ndarray  # (nc, k, k) entry of A[N_a, N_b] (nnz: absent)
    row_entry: np.ndarray  # (nc, k) entry of A[i, N_a] (nnz: absent)
    b_of: np.ndarray  # (nnz,) entry of B = A P each entry of A adds into (nnz_b: none)
    p_slot: np.ndarray  # (pieces,) R B in pieces: flat index into z (nc * (k+1)) of each piece
    p_start: np.ndarray  # (pieces,) ... its first entry of B (w consecutive ones)
    t_q: np.ndarray  # (pieces, w) ... the coarse entry of each product (nnz_coarse: padding)
    blocks: tuple[RowBlock, RowBlock]  # the F rows and the C rows (the smoothing sweeps' products)
    n: int = _static()
    nc: int = _static()
    nnz_b: int = _static()
    nnz_coarse: int = _static()
    piece_step: int = _static()  # pieces per step of the coarse-product loop (divides len(p_slot))

    @property
    def c_points(self):  # (nc,) fine index of each C-point
        return self.blocks[1].points


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class AIRHierarchy:
    levels: tuple[AIRLevel, ...]
    coarse_rows: np.ndarray  # pattern of the coarsest level (dense LU)
    coarse_cols: np.ndarray
    n_coarse: int = _static()

    @property
    def sizes(self) -> list[int]:
        return [lv.n for lv in self.levels] + [self.n_coarse]


def _entry_lookup(rows, cols, n):
    """f(r, c) -> entry index of (r, c) in a CSR-sorted pattern, len(rows) where absent."""
    key = rows.astype(np.int64) * n + cols
    if np.any(np.diff(key) <= 0):
        raise ValueError("jax-air: the pattern must be CSR-ordered without duplicates")

    def find(r, c):
        k = np.asarray(r, np.int64) * n + np.asarray(c, np.int64)
        pos = np.minimum(np.searchsorted(key, k), len(key) - 1)
        return np.where((key[pos] == k) & (np.asarray(r) < n) & (np.asarray(c) < n), pos, len(key))

    return find


def _local_air(v, lv: AIRLevel, theta):
    """Rows z (nc, k+1) of R on the neighbourhoods (last column: 1 at the C-point), from the
    current values ``v`` (one batched dense solve per level)."""
    nnz = v.shape[0]
    vp = jnp.concatenate([v, jnp.zeros(1, v.dtype)])
    rows = lv.rows
    offmax = jax.ops.segment_max(jnp.where(lv.off, jnp.abs(v), 0.0), rows, num_segments=lv.n)
    a_row = vp[lv.row_entry]  # (nc, k)
    keep = (jnp.abs(a_row) >= theta * offmax[lv.c_points][:, None]) & (lv.row_entry < nnz) & (a_row != 0)
    m = vp[lv.local_entry]  # (nc, k, k)
    both = keep[:, :, None] & keep[:, None, :]
    k = m.shape[-1]
    eye = jnp.eye(k, dtype=v.dtype)
    m = jnp.where(both, m, eye)
    rhs = jnp.where(keep, -a_row, 0.0)
    z = jnp.linalg.solve(jnp.swapaxes(m, 1, 2), rhs[..., None])[..., 0]
    z = jnp.where(jnp.all(jnp.isfinite(z), axis=1, keepdims=True), z, 0.0)
    return jnp.concatenate([z, jnp.ones((z.shape[0], 1), v.dtype)], axis=1)


def build_air(rows, cols, n, reference, k_max=12, coarse_max=1000, max_levels=12, theta=0.3, second_pass=True):
    """AIR hierarchy (index data) of a CSR-ordered pattern from the reference values."""
    from pyamg.classical.interpolate import one_point_interpolation
    from pyamg.classical.split import RS
    from pyamg.strength import classical_strength_of_connection

    rows = np.asarray(rows, np.int64)
    cols = np.asarray(cols, np.int64)
    r, c = (np.asarray(x) for x in equilibrate(rows, cols, jnp.asarray(reference), n))
    vals = np.asarray(reference) * r[rows] * c[cols]
    levels = []
    while n > coarse_max and len(levels) < max_levels - 1:
        find = _entry_lookup(rows, cols, n)
        a0 = sp.csr_matrix((vals, cols, np.r_[0, np.cumsum(np.bincount(rows, minlength=n))]), shape=(n, n))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s0 = classical_strength_of_connection(a0, theta=theta, norm="min")
            split = RS(s0, second_pass=second_pass)
            p0 = sp.csr_matrix(one_point_interpolation(a0, s0, split))
        c_pts = np.flatnonzero(split == 1)
        nc = len(c_pts)
        if nc == 0 or nc == n or nc > 0.9 * n:
            break
        coarse_of = np.full(n, nc, np.int64)
        has = np.diff(p0.indptr) > 0
        coarse_of[has] = p0.indices[p0.indptr[:-1][has]]
        # neighbourhoods: the k_max largest F-neighbours (reference) of each C-point
        is_f = split == 0
        cand = is_f[cols] & (rows != cols) & (split[rows] == 1)
        er, ec, ea = rows[cand], cols[cand], np.abs(vals[cand])
        order = np.lexsort((-ea, er))
        er, ec = er[order], ec[order]
        start = np.searchsorted(er, er, side="left")
        rank = np.arange(len(er)) - start
        sel = rank < k_max
        er, ec, rank = er[sel], ec[sel], rank[sel]
        k = int(rank.max()) + 1 if len(rank) else 1
        cidx = np.full(n, -1, np.int64)
        cidx[c_pts] = np.arange(nc)
        nbr = np.full((nc, k + 1), n, np.int64)
        nbr[cidx[er], rank] = ec
        nbr[:, k] = c_pts
        local_entry = find(nbr[:, :k, None], nbr[:, None, :k])
        row_entry = find(c_pts[:, None], nbr[:, :k])
        # R A P in two stages. B = A P: entry (i, j) adds into (i, coarse_of[j]) (F-points without
        # a C-neighbour interpolate nothing: their entries drop to the padding slot nnz_b).
        ok = coarse_of[cols] < nc
        bkey = rows * nc + coarse_of[cols]
        ubkey, b_of = np.unique(np.where(ok, bkey, n * nc), return_inverse=True)
        nnz_b = len(ubkey) - int(not ok.all())
        b_rows, b_cols = ubkey[:nnz_b] // nc, ubkey[:nnz_b] % nc
        # then R B in pieces: z slot (I, a) times w consecutive entries of row nbr[I, a] of B
        # (B's rows are about half as long as A's: 38 % fewer products than R (A P) at once)
        bptr = np.r_[0, np.cumsum(np.bincount(b_rows, minlength=n))]
        p_slot, p_start, t_q, ukey, piece_step = _coarse_pieces(nbr, bptr, b_cols, n, nc)
        info = dict(rows=rows if levels else None, cols=cols if levels else None,
                    diag=find(np.arange(n), np.arange(n)), off=rows != cols,
                    coarse_of=coarse_of, nbr=nbr, local_entry=local_entry, row_entry=row_entry,
                    b_of=b_of, p_slot=p_slot, p_start=p_start, t_q=t_q,
                    blocks=(_row_block(is_f, rows, cols, n), _row_block(~is_f, rows, cols, n)),
                    n=int(n), nc=int(nc), nnz_b=int(nnz_b), nnz_coarse=len(ukey), piece_step=int(piece_step))
        # int32 indices: half the memory on the device
        lv = AIRLevel(**{name: (a.astype(np.int32) if isinstance(a, np.ndarray) and a.dtype == np.int64 else a)
                         for name, a in info.items()})
        # the reference values of the coarse level
        z = _local_air(jnp.asarray(vals), _with_pattern(lv, rows, cols), R_THETA)
        vals = np.asarray(_coarse_values(jnp.asarray(vals), z, lv))
        levels.append(lv)
        rows, cols, n = ukey // nc, ukey % nc, nc
    if n > 4 * coarse_max:
        raise ValueError(f"jax-air: coarsening stopped at {n} unknowns; use a direct or host Krylov back end")
    return AIRHierarchy(tuple(levels), rows, cols, n_coarse=int(n))


def _with_pattern(lv: AIRLevel, rows, cols) -> AIRLevel:
    """The level with the fine pattern filled in (the finest level's arrives traced)."""
    return lv if lv.rows is not None else dataclasses.replace(lv, rows=rows, cols=cols)


def _piece_width(length):
    """Piece width minimising the stored indices: padded slots plus two per piece (its z slot
    and its first entry of B), over powers of two and the longest row."""
    longest = max(int(length.max()) if len(length) else 1, 1)
    widths = [w for w in (1, 2, 4, 8, 16, 32, 64, 128, 256) if w < longest] + [longest]
    return min(widths, key=lambda w: int(np.sum(-(-length // w))) * (w + 2))


def _coarse_pieces(nbr, bptr, b_cols, n, nc):
    """Index data of R B: each z slot (I, a) times row j = nbr[I, a] of B, cut into pieces of w
    consecutive entries of B. Per piece its z slot and first entry of B; per product its coarse
    entry t_q (pieces, w), the padding (past the row's end) into the dropped slot. Only t_q is
    stored per product (4 bytes, against 12 for explicit (z, B, coarse) triples). The coarse keys
    I * nc + column are numbered a block of C-points at a time (TRIPLE_CHUNK products per
    block: bounded host memory), which keeps them sorted since a block's keys all exceed the
    previous block's. Returns (p_slot, p_start, t_q, sorted coarse keys, pieces per step)."""
    k1 = nbr.shape[1]
    flat = nbr.reshape(-1)
    j = np.minimum(flat, n - 1)
    length = np.where(flat < n, bptr[j + 1] - bptr[j], 0)
    w = _piece_width(length[flat < n])
    count = -(-length // w)
    p_slot = np.repeat(np.arange(len(flat)), count)
    first = np.cumsum(count) - count
    p_start = bptr[j[p_slot]] + (np.arange(len(p_slot)) - first[p_slot]) * w
    p_end = bptr[j[p_slot] + 1]
    step = max(TRIPLE_CHUNK // w, 1)  # pieces per step of the set-up loop and per host block
    cum = np.r_[0, np.cumsum(count.reshape(-1, k1).sum(axis=1))]  # first piece of each C-point
    bounds = np.unique(np.r_[0, np.searchsorted(cum, np.arange(step, cum[-1], step)), nc])
    t_q = np.empty((len(p_slot), w), np.int32)  # (the device's type: no int64 copy of the largest array)
    keys, done = [], 0
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        at = slice(cum[lo], cum[hi])
        e = p_start[at, None] + np.arange(w)
        inside = e < p_end[at, None]
        key = (p_slot[at, None] // k1) * nc + b_cols[np.minimum(e, len(b_cols) - 1)]
        u, inv = np.unique(key[inside], return_inverse=True)
        q = np.full(inside.shape, -1, np.int64)
        q[inside] = inv + done
        t_q[at] = q
        keys.append(u)
        done += len(u)
    t_q[t_q < 0] = done
    pad = -len(p_slot) % step if len(p_slot) > step else 0  # whole steps (set-up loop)
    p_slot, p_start = np.r_[p_slot, np.zeros(pad, np.int64)], np.r_[p_start, np.zeros(pad, np.int64)]
    t_q = np.concatenate([t_q, np.full((pad, w), done, np.int32)])
    return p_slot, p_start, t_q, np.concatenate(keys), step


def _coarse_values(v, z, lv: AIRLevel):
    """Values of the coarse matrix R A P: B = A P by one segment sum, then R B piece by piece
    (one entry of R times w consecutive entries of B), ``lv.piece_step`` pieces per step (fixed
    by the build: the pieces are padded to whole steps)."""
    w = lv.t_q.shape[1]
    b = jax.ops.segment_sum(v, lv.b_of, num_segments=lv.nnz_b + w)  # B, its dropped slot, the overrun
    zf, lane, n_seg = z.reshape(-1), jnp.arange(w), lv.nnz_coarse + 1  # the last slot: padding

    def part(slot, start, t_q):
        prod = zf[slot][:, None] * b[start[:, None] + lane]
        return jax.ops.segment_sum(prod.reshape(-1), t_q.reshape(-1), num_segments=n_seg)

    step, n_p = lv.piece_step, lv.p_slot.shape[0]
    if n_p <= step:
        return part(lv.p_slot, lv.p_start, lv.t_q)[:-1]

    def loop(i, acc):
        cut = lambda a: jax.lax.dynamic_slice_in_dim(a, i * step, step)  # noqa: E731
        return acc + part(cut(lv.p_slot), cut(lv.p_start), cut(lv.t_q))

    return jax.lax.fori_loop(0, n_p // step, loop, jnp.zeros(n_seg, zf.dtype))[:-1]


def air_setup(h: AIRHierarchy, vals, rows, cols):
    """Per-level values, R rows, Jacobi weights and the coarsest LU (device, every Jacobian)."""
    out = []
    v = vals
    for lv in h.levels:
        lv = _with_pattern(lv, rows, cols)
        z = _local_air(v, lv, R_THETA)
        d = jnp.concatenate([v, jnp.zeros(1, v.dtype)])[lv.diag]
        inv_d = jnp.where(d != 0, 1.0 / jnp.where(d != 0, d, 1.0), 0.0)
        out.append(dict(vals=v, z=z, packed=tuple(packed_values(s.pack, v) for s in lv.blocks),
                        inv_d=tuple(inv_d[s.points] for s in lv.blocks)))
        v = _coarse_values(v, z, lv)
    dense = jnp.zeros((h.n_coarse, h.n_coarse), v.dtype).at[h.coarse_rows, h.coarse_cols].add(v)
    out.append(dict(lu=jax.scipy.linalg.lu_factor(dense)))
    return out


def air_preconditioner(h: AIRHierarchy, data, rows, cols, transpose=False):
    """(M, A): M(b) ~ S^-1 b and A(x) = S x from the packed rows (``transpose``: the exact
    transpose of the same cycle, with COO products, and A None: FGMRES's own S^T x).

    Post-smoothing is Jacobi on the F-points twice, then on the C-points; a sweep on the point
    set S needs only the rows A[S, :] (F: 50-65 % of the rows), so the three sweeps cost 1.5-1.7
    products with A rather than 3."""
    levels = [_with_pattern(lv, rows, cols) for lv in h.levels]
    F, C = 0, 1

    def expand(k, s, y):  # a vector on point set s -> full length (0 elsewhere)
        return jnp.concatenate([y, jnp.zeros(1, y.dtype)])[levels[k].blocks[s].slot]

    def product(x):  # S x on the finest level: the two row sets together
        return sum(expand(0, s, packed_matvec(blk.pack, data[0]["packed"][s], x))
                   for s, blk in enumerate(levels[0].blocks))

    def product_t(k, x):  # A^T x on level k (COO)
        lv = levels[k]
        return jax.ops.segment_sum(data[k]["vals"] * x[lv.rows], lv.cols, num_segments=lv.n)

    def restrict(k, b):  # R b
        lv = levels[k]
        bp = jnp.concatenate([b, jnp.zeros(1, b.dtype)])
        return jnp.sum(data[k]["z"] * bp[lv.nbr], axis=1)

    def restrict_t(k, e):  # R^T e
        lv = levels[k]
        return jnp.zeros(lv.n + 1, e.dtype).at[lv.nbr].add(data[k]["z"] * e[:, None])[:-1]

    def prolong(k, e):  # P e
        return jnp.concatenate([e, jnp.zeros(1, e.dtype)])[levels[k].coarse_of]

    def prolong_t(k, x):  # P^T x
        return jax.ops.segment_sum(x, levels[k].coarse_of, num_segments=levels[k].nc + 1)[:-1]

    def cycle(k, b):
        if k == len(levels):
            return jax.scipy.linalg.lu_solve(data[k]["lu"], b)
        x = prolong(k, cycle(k + 1, restrict(k, b)))
        for s in (F, F, C):  # x_S += D_S^-1 (b - A x)_S
            blk = levels[k].blocks[s]
            res = b[blk.points] - packed_matvec(blk.pack, data[k]["packed"][s], x)
            x = x + expand(k, s, data[k]["inv_d"][s] * res)
        return x

    def cycle_t(k, y):
        if k == len(levels):
            return jax.scipy.linalg.lu_solve(data[k]["lu"], y, trans=1)
        z = jnp.zeros_like(y)
        for s in (C, F, F):  # M^T = B^T G1^T G2^T G3^T + W1 G2^T G3^T + W2 G3^T + W3
            blk = levels[k].blocks[s]
            wy = expand(k, s, data[k]["inv_d"][s] * y[blk.points])
            z = z + wy
            y = y - product_t(k, wy)
        return z + restrict_t(k, cycle_t(k + 1, prolong_t(k, y)))

    return ((lambda b: cycle_t(0, b)), None) if transpose else ((lambda b: cycle(0, b)), product)


@dataclass(frozen=True, eq=False)
class AIRSolver(DeviceKrylov):
    """FGMRES preconditioned by the static-pattern AIR V-cycle, all in JAX. ``reference``: the
    Jacobian values (nnz,) from which the splitting and neighbourhoods are fixed.

    ``token`` of the factorisation: the FGMRES iterations of that solve."""

    reference: np.ndarray | None = None
    k_max: int = 12
    coarse_max: int = 1000
    # Ruge-Stueben's second pass. Without it (1e4 cell): 1.8x less index memory (0.28 against
    # 0.51 GiB), but Newton took 24 and 12 iterations instead of 18 and 8 and the sweep 1.4x longer
    second_pass: bool = True

    def __post_init__(self):
        if self.reference is None:
            raise ValueError("jax-air needs reference Jacobian values (Device passes the initial guess's)")
        object.__setattr__(self, "hierarchy", build_air(self.rows, self.cols, self.n, self.reference,
                                                        k_max=self.k_max, coarse_max=self.coarse_max,
                                                        second_pass=self.second_pass))

    def _krylov(self, vals, b, rows, cols, data, transpose):
        m, matvec = air_preconditioner(self.hierarchy, data, rows, cols, transpose)
        return self._fgmres(vals, b, rows, cols, m, transpose, matvec)

    def _data(self, scaled, c, rows, cols, near_null):
        return air_setup(self.hierarchy, scaled, rows, cols)

    def _resolve_transpose(self, fact, b, rows, cols):  # the transposed cycle, same set-up
        return self._krylov(fact.vals, b, rows, cols, fact.aux, True)[0]


__all__ = ["AIRSolver", "build_air", "air_setup", "air_preconditioner"]
