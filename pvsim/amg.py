"""Device-resident aggregation AMG + flexible GMRES: the ``"jax-amg"`` back end.

The Krylov path for Jacobians too large for a sparse direct solve (3D cells of 1e5-1e6 nodes,
DESIGN.md "Linear solves"). Everything that runs per Newton step is JAX (segment sums, batched
small inverses, one small dense LU, matrix-vector products), so it runs inside the jitted
Newton loop on a GPU, under ``vmap``, and on the CPU unchanged.

**Hierarchy (host, once per sparsity pattern).** Unknowns are grouped by mesh node (all
unknowns of a node: psi, T, phi_n, phi_p, and the extra carrier/thermal sets of split
interfaces). Nodes are aggregated by three passes of pairwise matching on the node graph of
the pattern (aggregates of up to 8 nodes, as in Notay's AGMG, Notay 2010, ETNA 37:123), and
each coarse unknown is one *field* of one aggregate: the prolongation P maps a coarse value
to every unknown of that field in the aggregate, weighted by a near-null vector (unsmoothed
aggregation, "fully coupled": the coupling between the potential and the quasi-Fermi levels
is kept on every level, which field splits lose, see :mod:`pvsim.krylov`). Aggregation uses
the pattern only, never the values, so it is built once and serves every Newton step and
bias point.

**Numeric set-up (device, every Jacobian).** P has one entry per row, so the Galerkin matrix
A_c = P^T A P is a segment sum of the weighted entries p_i a_ij p_j onto the coarse pattern
(precomputed target indices): no sparse matrix product. The weights (see :func:`_setup`)
follow the equilibration scalings, which change every Newton step. Per level the node-block
diagonal (all unknowns of a node or aggregate) is inverted in one batched dense inverse; the
coarsest level (at most ``coarse_max`` unknowns) is LU-factorised densely.

**Cycle.** K-cycle (Notay & Vassilevski 2008, NLAA 15:123): on each coarse level two steps of
flexible GCR, preconditioned by the next level's cycle, replace the single recursive call of a
V-cycle; smoothing is ``nu`` sweeps of multicolour block Gauss-Seidel before (forward) and
after (backward) the coarse correction: the node blocks are coloured greedily on the host so
that blocks of one colour do not couple, and a sweep updates one colour at a time (one partial
product and one batched block solve per colour; 6-7 colours on the 2D diode). Measured, it
needs 1.4-2x fewer FGMRES iterations than damped block Jacobi (``smoother="jacobi"``), which
is kept. The inner GCR steps run in a ``fori_loop``, so the program grows linearly with
the number of levels (not 2^levels). The cycle is a nonlinear operator, so the outer solver
is flexible GMRES(``restart``) (Saad 1993, SIAM J. Sci. Comput. 14:461), with classical
Gram-Schmidt applied twice (matrix-vector products with the basis, which suit a GPU).

**Transposed solves** (the adjoint): the same aggregates serve S^T, with the row and column
index arrays swapped, the block inverses transposed and the weights of S^T's near-null vector.

Convergence test: ||S x - b|| <= rtol ||b|| on the equilibrated system (rtol 1e-10). FGMRES
stops earlier when a restart cycle gains less than a factor 2 (stagnation). A solve that ends
above ``fail_rtol`` (1e-4) returns NaN, so Newton reports it and the continuation cuts its step.
Below it the update is an inexact Newton step (forcing term <= 1e-4, Eisenstat & Walker, SIAM J.
Sci. Comput. 17 (1996) 16), and Newton's update test stays safe: ||F|| <= ||S du|| / (1 - 1e-4),
so a small update means a small residual. (A stalled solve near a relative residual of 1 is
what gave a false convergence: a small update with a large residual.) Far from convergence
the Jacobians are so ill-conditioned in the quasi-Fermi levels of minority carriers that FGMRES
stagnates near 1e-5 (the update there is 1e6 V_T, which Newton's damping cuts anyway); there
the stagnation stop and the 1e-4 threshold let Newton go on (docs/benchmarks.md). Measured on
the 3D NC-monolayer cell: 30-200 FGMRES iterations per Newton step, and the sweep's terminal
currents equal PARDISO's.
"""

from __future__ import annotations

import copy
from abc import abstractmethod
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from .krylov import krylov_stats
from .linalg import Factorization, LinearSolver, equilibrate


# ----------------------------------------------------------------------------- host set-up
def _node_graph(rows, cols, dof_node, n_nodes):
    """CSR (indptr, indices) of the node adjacency of a pattern, without self loops."""
    a, b = dof_node[rows], dof_node[cols]
    off = a != b
    key = np.unique(a[off].astype(np.int64) * n_nodes + b[off])
    src, dst = key // n_nodes, key % n_nodes
    indptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=n_nodes))])
    return indptr, dst


def _match(indptr, indices, n):
    """Greedy pairwise matching of the graph (CSR, no self loops): nodes in order of increasing
    degree (boundary nodes first, as in AGMG) take their first unmatched neighbour. Returns
    labels 0..m-1 (pairs, and singletons where no neighbour is free) and m. On a structured
    mesh the pairs, then pairs of pairs, come out regular; randomised (handshake) matchings
    left ~half the nodes unmatched after 6 rounds and converged worse (measured)."""
    label = np.full(n, -1, np.int64)
    ptr = indptr.tolist()
    idx = indices.tolist()
    m = 0
    for i in np.argsort(np.diff(indptr), kind="stable").tolist():
        if label[i] >= 0:
            continue
        label[i] = m
        for j in idx[ptr[i]:ptr[i + 1]]:
            if label[j] < 0:
                label[j] = m
                break
        m += 1
    return label, m


def aggregate_nodes(rows, cols, dof_node, n_nodes, passes=3):
    """Node aggregates of up to 2^passes nodes: (label per node, number of aggregates)."""
    label = np.arange(n_nodes)
    m = n_nodes
    indptr, indices = _node_graph(rows, cols, dof_node, n_nodes)
    for _ in range(passes):
        lab, m_new = _match(indptr, indices, m)
        if m_new == m:
            break
        label = lab[label]
        src = np.repeat(np.arange(m), np.diff(indptr))
        indptr, indices = _node_graph(src, indices, lab, m_new)  # the graph of the pairs
        m = m_new
    return label, m


def _blocks(dof_node, n):
    """Node blocks of a level: block id and position of every unknown, block size bmax, and the
    (block, position) -> unknown gather index (n for padding)."""
    order = np.argsort(dof_node, kind="stable")
    blk_sorted = dof_node[order]
    starts = np.flatnonzero(np.r_[True, blk_sorted[1:] != blk_sorted[:-1]])
    counts = np.diff(np.r_[starts, n])
    block = np.empty(n, np.int64)
    pos = np.empty(n, np.int64)
    block[order] = np.repeat(np.arange(len(starts)), counts)
    pos[order] = np.arange(n) - np.repeat(starts, counts)
    bmax = int(counts.max()) if n else 1
    gather = np.full((len(starts), bmax), n, np.int64)
    gather[block, pos] = np.arange(n)
    return block, pos, bmax, gather


def _static():
    return field(metadata=dict(static=True))


# Hierarchy, Level and Colouring are pytrees: their index arrays are leaves, so a jitted caller
# passes them as arguments (AMGSolver.topology / bind) instead of embedding them as constants;
# sizes and colour bounds (used for shapes and slices) are static.
@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class Colouring:
    """Blocks of a level sorted by colour (no two neighbouring blocks share one) and, for S and
    S^T, the entries sorted by the colour of their row's block: one block Gauss-Seidel sweep
    updates all blocks of a colour at once from one partial product."""

    order: np.ndarray  # (n_blocks,) block ids in colour order
    gather: np.ndarray  # (n_blocks, bmax) unknowns of the sorted blocks (n = padding)
    perm: tuple  # per direction (S, S^T): entries in colour order of their row's block
    local: tuple  # per direction: each sorted entry's row within its colour's slice
    other: tuple  # per direction: each sorted entry's column
    bounds: tuple = _static()  # (n_colours + 1,) slices of ``order`` per colour
    ebounds: tuple = _static()  # per direction: slices of the sorted entries per colour


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class Level:
    """Index data of one level."""

    rows: np.ndarray | None  # None on the finest level (its pattern arrives traced)
    cols: np.ndarray | None
    # node-block smoothers
    diag_entry: np.ndarray  # entries of the pattern inside a node block
    diag_flat: np.ndarray  # their (block, pos_r, pos_c) flat index
    gather: np.ndarray  # (n_blocks, bmax) unknown index, n = padding
    block: np.ndarray  # (n,) block of each unknown
    pos: np.ndarray  # (n,) position in its block
    n: int = _static()
    n_blocks: int = _static()
    bmax: int = _static()
    # to the next coarser level (None on the coarsest)
    coarse_of: np.ndarray | None = None  # (n,) coarse unknown of each unknown (P as a map)
    coarse_entry: np.ndarray | None = None  # (nnz,) coarse entry each entry adds into
    n_coarse_entries: int = field(default=0, metadata=dict(static=True))
    gs: Colouring | None = None  # for the Gauss-Seidel smoother


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class Hierarchy:
    levels: tuple[Level, ...]
    coarse_rows: np.ndarray  # pattern of the coarsest level (dense LU)
    coarse_cols: np.ndarray

    @property
    def sizes(self) -> list[int]:
        return [lv.n for lv in self.levels]


def _greedy_colours(indptr, indices, n):
    """Greedy colouring of a graph (CSR, no self loops), vertices in index order."""
    colour = np.full(n, -1, np.int64)
    ptr, idx, col = indptr.tolist(), indices.tolist(), colour.tolist()
    for i in range(n):
        taken = {col[j] for j in idx[ptr[i]:ptr[i + 1]]}
        c = 0
        while c in taken:
            c += 1
        col[i] = c
    return np.asarray(col, np.int64)


def _colouring(rows, cols, block, pos, bmax, gather) -> Colouring:
    nb = gather.shape[0]
    colour = _greedy_colours(*_node_graph(rows, cols, block, nb), nb)
    order = np.argsort(colour, kind="stable")
    bounds = np.searchsorted(colour[order], np.arange(colour.max() + 2))
    rank = np.empty(nb, np.int64)
    rank[order] = np.arange(nb)
    perms, ebounds, locals_, others = [], [], [], []
    for r, c in ((rows, cols), (cols, rows)):  # S, then S^T (rows and columns swapped)
        key = rank[block[r]]
        perm = np.argsort(key, kind="stable")
        eb = np.searchsorted(key[perm], bounds)
        first = np.repeat(bounds[:-1], np.diff(eb))  # first sorted block of the entry's colour
        perms.append(perm)
        ebounds.append(tuple(int(x) for x in eb))
        locals_.append((key[perm] - first) * bmax + pos[r[perm]])
        others.append(c[perm])
    return Colouring(order, gather[order], tuple(perms), tuple(locals_), tuple(others),
                     bounds=tuple(int(x) for x in bounds), ebounds=tuple(ebounds))


def _level(rows, cols, n, dof_node, keep_pattern, colour):
    block, pos, bmax, gather = _blocks(dof_node, n)
    inside = block[rows] == block[cols]
    diag_entry = np.flatnonzero(inside)
    flat = (block[rows[diag_entry]] * bmax + pos[rows[diag_entry]]) * bmax + pos[cols[diag_entry]]
    return dict(n=int(n), rows=rows if keep_pattern else None, cols=cols if keep_pattern else None,
                diag_entry=diag_entry, diag_flat=flat, n_blocks=gather.shape[0], bmax=bmax,
                gather=gather, block=block, pos=pos,
                gs=_colouring(rows, cols, block, pos, bmax, gather) if colour else None)


def build_hierarchy(rows, cols, n, dof_node=None, dof_field=None, coarse_max=1200, max_levels=12,
                    passes=3, colour=False) -> Hierarchy:
    """Aggregation hierarchy of a pattern (CSR-ordered ``rows``, ``cols``); ``colour``: also
    the block colourings of the Gauss-Seidel smoother.

    ``dof_node`` (n,): the mesh node (or any grouping) of each unknown; ``dof_field`` (n,):
    its field (:meth:`pvsim.layout.Layout.dof_groups`: 0 psi, 1 T, 2 phi_n, 3 phi_p). Without
    them each unknown is its own node of field 0 (scalar aggregation).
    """
    rows = np.asarray(rows, np.int64)
    cols = np.asarray(cols, np.int64)
    dof_node = np.arange(n) if dof_node is None else np.asarray(dof_node, np.int64)
    dof_field = np.zeros(n, np.int64) if dof_field is None else np.asarray(dof_field, np.int64)
    levels = []
    n_fields = int(dof_field.max()) + 1 if n else 1
    r, c, size, node, field = rows, cols, n, dof_node, dof_field
    while size > coarse_max and len(levels) < max_levels - 1:
        info = _level(r, c, size, node, keep_pattern=bool(levels), colour=colour)
        n_nodes = int(node.max()) + 1
        agg, _ = aggregate_nodes(r, c, node, n_nodes, passes=passes)
        key = agg[node] * n_fields + field
        ukey, coarse_of = np.unique(key, return_inverse=True)
        nc = len(ukey)
        if nc > 0.85 * size:  # aggregation stalled (e.g. a dense pattern): stop here
            break
        ekey = coarse_of[r] * nc + coarse_of[c]
        uent, coarse_entry = np.unique(ekey, return_inverse=True)
        levels.append(Level(**info, coarse_of=coarse_of, coarse_entry=coarse_entry,
                            n_coarse_entries=len(uent)))
        r, c, size = uent // nc, uent % nc, nc
        node, field = ukey // n_fields, ukey % n_fields
    if size > 4 * coarse_max:  # the coarsest level is factorised densely
        raise ValueError(f"jax-amg: aggregation stopped coarsening at {size} unknowns (a pattern with "
                         "dense rows?); use a direct or host Krylov back end for this device")
    levels.append(Level(**_level(r, c, size, node, keep_pattern=bool(levels), colour=False)))
    return Hierarchy(tuple(levels), r, c)


# ----------------------------------------------------------------------------- device part
#: set True before a solver is traced to count FGMRES solves, iterations and solves that
#: ended above ``rtol`` in :data:`pvsim.krylov.krylov_stats` (one host callback per solve)
record_stats = False


def _count(its, missed):
    its, missed = np.asarray(its), np.asarray(missed)
    krylov_stats["solves"] += its.size
    krylov_stats["iterations"] += int(its.sum())
    krylov_stats["not_converged"] += int(missed.sum())


def _spmv(vals, rows, cols, n, x, transpose=False):
    """S x (S^T x) for S in COO form with CSR-ordered ``rows``."""
    r, c = (cols, rows) if transpose else (rows, cols)
    return jax.ops.segment_sum(vals * x[c], r, num_segments=n, indices_are_sorted=not transpose)


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class Packed:
    """Row-chunked ELL layout of a sparse product y[out] += v[entry] x[in], for the products
    inside a cycle.

    Each output row is cut into chunks of ``w`` slots; a chunk is one row of the (m, w) arrays.
    y is then a gather, a product and a sum along the chunk, plus a sorted segment sum over the
    m chunks when rows span several. Measured on the 1e4 cell's Jacobian (2 CPU cores, 3.0M
    entries): 3.8 ms against 16 ms for the segment sum over all entries (a scatter), which is
    what the COO product costs; the values are packed once per Jacobian (one gather)."""

    entry: np.ndarray  # (m, w) entry of each slot (nnz: padding)
    col: np.ndarray  # (m, w) input index of each slot (0 at padding)
    owner: np.ndarray | None  # (m,) output row of each chunk; None when each row is one chunk (m = n)
    n: int = _static()  # output length


def pack_rows(out, inp, n, entries=None, nnz=None, scatter_cost=4.0) -> Packed:
    """Packed layout of y[out[e]] += v[entries[e]] x[inp[e]] (y of length ``n``; ``entries``:
    default all of v, in order; ``nnz``: len(v), the padding entry). S x is
    ``pack_rows(rows, cols, n)``, S^T x ``pack_rows(cols, rows, n)``, and a subset of rows
    (renumbered) passes its entries. The chunk width minimises padded slots + ``scatter_cost``
    x chunks (a chunk's segment-sum item costs about four gathered products on the CPU), over
    powers of two and the longest row."""
    out, inp = np.asarray(out, np.int64), np.asarray(inp, np.int64)
    entries = np.arange(len(out)) if entries is None else np.asarray(entries, np.int64)
    nnz = len(out) if nnz is None else nnz
    order = np.lexsort((inp, out))
    out, inp, entries = out[order], inp[order], entries[order]
    count = np.bincount(out, minlength=n)
    longest = max(int(count.max()) if n else 1, 1)
    widths = [w for w in (4, 8, 16, 32, 64, 128, 256) if w < longest] + [longest]

    def cost(w):
        chunks = n if w == longest else int(np.sum(-(-count // w)))
        return chunks * w + (0 if w == longest else scatter_cost * chunks)

    w = min(widths, key=cost)
    chunks = np.maximum(-(-count // w), 1 if w == longest else 0)
    first = np.r_[0, np.cumsum(chunks)[:-1]]
    slot = np.arange(len(out)) - np.r_[0, np.cumsum(count)[:-1]][out]
    m = int(chunks.sum())
    entry = np.full((m, w), nnz, np.int64)
    col = np.zeros((m, w), np.int64)
    at = (first[out] + slot // w, slot % w)
    entry[at], col[at] = entries, inp
    owner = None if w == longest else np.repeat(np.arange(n), chunks)
    i32 = (lambda a: a.astype(np.int32)) if max(n, nnz, len(inp) and inp.max()) < 2**31 else (lambda a: a)  # noqa: E731
    return Packed(i32(entry), i32(col), None if owner is None else i32(owner), n=int(n))


def packed_values(p: Packed, vals):
    """The values in the packed layout (padding 0)."""
    return jnp.concatenate([vals, jnp.zeros(1, vals.dtype)])[p.entry]


def packed_matvec(p: Packed, pv, x):
    """S x from the packed values ``pv``."""
    s = jnp.sum(pv * x[p.col], axis=-1)
    return s if p.owner is None else jax.ops.segment_sum(s, p.owner, num_segments=p.n, indices_are_sorted=True)


def _block_inverses(lv: Level, v):
    """Inverses (n_blocks, bmax, bmax) of the node-block diagonal of one level's matrix."""
    d = jnp.zeros(lv.n_blocks * lv.bmax * lv.bmax, v.dtype).at[lv.diag_flat].add(v[lv.diag_entry])
    d = d.reshape(lv.n_blocks, lv.bmax, lv.bmax)
    pad = jnp.asarray(lv.gather == lv.n)  # padding slots: unit diagonal
    d = d + jnp.where(pad[:, :, None], jnp.eye(lv.bmax, dtype=v.dtype), 0.0)
    dinv = jnp.linalg.inv(d)
    # a singular block (a coarse sum that cancels): fall back to its scaled diagonal
    diag = jnp.diagonal(d, axis1=1, axis2=2)
    safe = jnp.where(diag != 0, 1.0 / jnp.where(diag != 0, diag, 1.0), 1.0)
    ok = jnp.all(jnp.isfinite(dinv), axis=(1, 2))[:, None, None]
    return jnp.where(ok, dinv, safe[:, :, None] * jnp.eye(lv.bmax, dtype=v.dtype))


def _setup(h: Hierarchy, vals, log_weights, rows, cols, transpose=False):
    """Per-level values, prolongation weights, block inverses and the coarsest LU.

    ``log_weights`` (n,): log of the near-null vector B of the fine matrix. The prolongation
    of level k is P[i, I] = B_i / ||B_I|| for the unknowns i of coarse unknown I (the
    tentative prolongator of smoothed aggregation, Vanek et al. 1996), and the coarse B is
    ||B_I||. B is carried as a logarithm, normalised by its largest entry per aggregate, since
    it spans hundreds of decades (Slotboom weights exp(phi) times the equilibration's 1/c).
    For S = R J C with J v ~ 0 the smooth modes are B = v / c for S; for S^T, whose
    continuity blocks have zero column sums, B = 1/r.
    """
    out = []
    v, lw = vals, log_weights
    for k, lv in enumerate(h.levels):
        item = {"vals": v}
        if lv.coarse_of is None:  # coarsest: dense LU
            dense = jnp.zeros((lv.n, lv.n), v.dtype).at[h.coarse_rows, h.coarse_cols].add(v)
            item["lu"] = jax.scipy.linalg.lu_factor(dense)
        else:  # smoothed level: node-block inverses, prolongation, next level's values
            item["dinv"] = _block_inverses(lv, v)
            if lv.gs is not None:  # Gauss-Seidel: blocks and entries in colour order
                item["dinv"] = item["dinv"][lv.gs.order]
                item["gs_vals"] = v[lv.gs.perm[int(transpose)]]
            nc = h.levels[k + 1].n
            top = jax.ops.segment_max(lw, lv.coarse_of, num_segments=nc)
            wn = jnp.exp(lw - top[lv.coarse_of])  # largest entry of each aggregate: 1
            norm = jnp.sqrt(jax.ops.segment_sum(wn * wn, lv.coarse_of, num_segments=nc))
            p = wn / norm[lv.coarse_of]
            r, c = (rows, cols) if lv.rows is None else (lv.rows, lv.cols)
            item["p"] = p
            v = jax.ops.segment_sum(v * p[r] * p[c], jnp.asarray(lv.coarse_entry),
                                    num_segments=lv.n_coarse_entries)
            lw = jnp.log(norm) + top
        out.append(item)
    return out


def gauss_seidel(lv: Level, d, b, x, backward=False, transpose=False):
    """One block Gauss-Seidel sweep on S x = b (S^T x = b) from x, the blocks of one colour at
    a time in colour order (reversed: ``backward``): x <- x + (D + L)^-1 (b - S x), L the
    couplings to blocks of earlier colours (no block couples to another of its own colour).
    ``d``: the level's set-up (colour-ordered block inverses and entry values)."""
    g, bmax, t = lv.gs, lv.bmax, int(transpose)
    ebounds, local, other = g.ebounds[t], g.local[t], g.other[t]
    spec = "bji,bj->bi" if transpose else "bij,bj->bi"
    bp = jnp.concatenate([b, jnp.zeros(1, b.dtype)])
    colours = range(len(g.bounds) - 1)
    for c in (reversed(colours) if backward else colours):
        s, e, a, z = g.bounds[c], g.bounds[c + 1], ebounds[c], ebounds[c + 1]
        sx = jax.ops.segment_sum(d["gs_vals"][a:z] * x[other[a:z]], local[a:z], num_segments=(e - s) * bmax)
        unknowns = g.gather[s:e]
        res = (bp[unknowns].reshape(-1) - sx).reshape(e - s, bmax)
        x = x.at[unknowns.reshape(-1)].add(jnp.einsum(spec, d["dinv"][s:e], res).reshape(-1), mode="drop")
    return x


@dataclass(frozen=True)
class AMGOptions:
    nu: int = 2  # smoothing steps before and after the coarse correction
    omega: float = 0.7  # block-Jacobi damping
    kcycle: bool = True  # False: plain V-cycle
    inner: int = 2  # flexible GCR steps per coarse level of the K-cycle
    smoother: str = "gs"  # "gs": multicolour block Gauss-Seidel; "jacobi": damped block Jacobi


def make_preconditioner(h: Hierarchy, data, rows, cols, transpose=False, options=AMGOptions()):
    """M(b) ~ S^-1 b (or S^-T b) for the set-up ``data`` of :func:`_setup`."""
    levels = h.levels

    def apply_a(k, x):
        lv = levels[k]
        r, c = (rows, cols) if lv.rows is None else (lv.rows, lv.cols)
        return _spmv(data[k]["vals"], r, c, lv.n, x, transpose)

    def block_jacobi(k, v):
        lv = levels[k]
        vp = jnp.concatenate([v, jnp.zeros(1, v.dtype)])[lv.gather]
        spec = "bji,bj->bi" if transpose else "bij,bj->bi"
        y = jnp.einsum(spec, data[k]["dinv"], vp)
        return y[lv.block, lv.pos]

    def smooth(k, b, x, post):
        """``nu`` sweeps from x (None: zero); Gauss-Seidel runs backward after the correction."""
        for _ in range(options.nu):
            if levels[k].gs is not None:
                x = gauss_seidel(levels[k], data[k], b, jnp.zeros_like(b) if x is None else x,
                                 backward=post, transpose=transpose)
            elif x is None:
                x = options.omega * block_jacobi(k, b)
            else:
                x = x + options.omega * block_jacobi(k, b - apply_a(k, x))
        return x

    def cycle(k, b):
        lv = levels[k]
        if lv.coarse_of is None:
            return jax.scipy.linalg.lu_solve(data[k]["lu"], b, trans=1 if transpose else 0)
        x = smooth(k, b, None, post=False)
        p = data[k]["p"]
        rc = jax.ops.segment_sum(p * (b - apply_a(k, x)), lv.coarse_of, num_segments=levels[k + 1].n)
        coarsest = levels[k + 1].coarse_of is None
        ec = cycle(k + 1, rc) if (coarsest or not options.kcycle) else kcycle(k + 1, rc)
        x = x + p * ec[lv.coarse_of]
        return smooth(k, b, x, post=True)

    def kcycle(k, b):
        """``options.inner`` flexible GCR steps on level k preconditioned by its cycle."""
        def step(_, st):
            x, r, z_old, w_old = st
            z = cycle(k, r)
            w = apply_a(k, z)
            beta = jnp.vdot(w_old, w)
            w, z = w - beta * w_old, z - beta * z_old
            nw = jnp.linalg.norm(w)
            inv = jnp.where(nw > 0, 1.0 / jnp.where(nw > 0, nw, 1.0), 0.0)
            w, z = w * inv, z * inv
            a = jnp.vdot(w, r)
            return x + a * z, r - a * w, z, w

        zero = jnp.zeros_like(b)
        return jax.lax.fori_loop(0, options.inner, step, (zero, b, zero, zero))[0]

    return lambda b: cycle(0, b)


def fgmres(matvec, precond, b, rtol=1e-10, restart=30, maxiter=300, stall=0.5):
    """Flexible GMRES(restart), right preconditioned; traceable. Returns (x, iterations,
    true relative residual). Stops when ||b - A x|| <= rtol ||b||, after ``maxiter``
    Arnoldi steps, or when a full restart cycle reduced the residual by less than the factor
    ``stall`` (stagnation; then the last iterate is returned and the caller judges it)."""
    m = restart
    n = b.shape[-1]
    bn = jnp.linalg.norm(b)
    tol = rtol * bn
    eye = jnp.eye(m, dtype=b.dtype)

    def arnoldi(st):
        j, k, V, Z, H, cs, sn, g = st
        z = precond(V[j])
        w = matvec(z)
        h = V @ w  # classical Gram-Schmidt, twice (rows of V beyond j are zero)
        w = w - V.T @ h
        h2 = V @ w
        w = w - V.T @ h2
        h = h + h2
        hn = jnp.linalg.norm(w)
        V = V.at[j + 1].set(w / jnp.where(hn > 0, hn, 1.0))
        Z = Z.at[j].set(z)
        col = h.at[j + 1].set(hn)

        def rotate(i, col):
            a, bb = col[i], col[i + 1]
            new = col.at[i].set(cs[i] * a + sn[i] * bb).at[i + 1].set(-sn[i] * a + cs[i] * bb)
            return jnp.where(i < j, new, col)

        col = jax.lax.fori_loop(0, m, rotate, col)
        a, bb = col[j], col[j + 1]
        den = jnp.hypot(a, bb)
        c = jnp.where(den > 0, a / jnp.where(den > 0, den, 1.0), 1.0)
        s = jnp.where(den > 0, bb / jnp.where(den > 0, den, 1.0), 0.0)
        col = col.at[j].set(den).at[j + 1].set(0.0)
        g = g.at[j + 1].set(-s * g[j]).at[j].set(c * g[j])
        return j + 1, k + 1, V, Z, H.at[:, j].set(col), cs.at[j].set(c), sn.at[j].set(s), g

    def inner_go(st):
        j, k, *_, g = st
        return (j < m) & (jnp.abs(g[j]) > tol) & (k < maxiter)

    def outer(st):
        x, r, k, rel_old, _ = st
        beta = jnp.linalg.norm(r)
        V = jnp.zeros((m + 1, n), b.dtype).at[0].set(r / jnp.where(beta > 0, beta, 1.0))
        init = (jnp.asarray(0), k, V, jnp.zeros((m, n), b.dtype), jnp.zeros((m + 1, m), b.dtype),
                jnp.zeros(m, b.dtype), jnp.zeros(m, b.dtype), jnp.zeros(m + 1, b.dtype).at[0].set(beta))
        j, k, V, Z, H, cs, sn, g = jax.lax.while_loop(inner_go, arnoldi, init)
        used = jnp.arange(m) < j
        R = jnp.where(used[:, None] & used[None, :], H[:m], eye)
        y = jax.scipy.linalg.solve_triangular(R, jnp.where(used, g[:m], 0.0), lower=False)
        x = x + Z.T @ y
        r = b - matvec(x)  # the true residual: the Arnoldi estimate drifts from it when S is
        # badly conditioned and the preconditioner returns large vectors (measured: an estimate
        # below 1e-10 with a true residual of 3e-4 on a Newton system of the 3D cell)
        return x, r, k, jnp.linalg.norm(r) / jnp.where(bn > 0, bn, 1.0), rel_old

    def outer_go(st):
        _, _, k, rel, rel_before = st
        return (rel > rtol) & (k < maxiter) & (rel < stall * rel_before)

    start = (jnp.zeros_like(b), b, jnp.asarray(0), jnp.asarray(jnp.finfo(b.dtype).max), jnp.asarray(jnp.inf, b.dtype))
    x, _, k, rel, _ = jax.lax.while_loop(outer_go, outer, start)
    return jnp.where(bn > 0, x, 0.0), k, rel


@dataclass(frozen=True, eq=False, kw_only=True)  # keyword-only: subclasses' fields stay positional
class DeviceKrylov(LinearSolver):
    """Shared part of the device-resident Krylov back ends (``jax-amg``, ``jax-air``): a
    multigrid hierarchy of index arrays passed as the jitted caller's argument, and FGMRES
    with the failure rule of the module docstring. Subclasses set ``self.hierarchy``."""

    rtol: float = 1e-10
    fail_rtol: float = 1e-4  # a solve ending above this relative residual returns NaN (docstring)
    restart: int = 100
    maxiter: int = 1000
    stall: float = 0.5  # stop when a restart cycle reduces the residual by less than this factor

    def topology(self):
        # once: the hierarchy's arrays moved to the device, the host copy dropped (on the CPU
        # back end both copies would be in RAM: 2 x 4.45 GiB for jax-air on the 1e5 cell)
        if not isinstance(jax.tree.leaves(self.hierarchy)[0], jax.Array):
            object.__setattr__(self, "hierarchy", jax.tree.map(jnp.asarray, self.hierarchy))
        return self.hierarchy

    def bind(self, topology):
        bound = copy.copy(self)
        object.__setattr__(bound, "hierarchy", topology)
        return bound

    def _fgmres(self, vals, b, rows, cols, precond, transpose, matvec=None):
        """Solve the equilibrated system S x = b (S^T x = b) by FGMRES with ``precond``
        (``matvec``: S x, S^T x, when the set-up has a faster product than the COO one);
        returns (x, or NaN where the solve failed, iterations)."""
        if matvec is None:
            def matvec(x):
                return _spmv(vals, rows, cols, self.n, x, transpose)

        x, its, rel = fgmres(matvec, precond, b, self.rtol, self.restart, self.maxiter, self.stall)
        if record_stats:
            jax.debug.callback(_count, its, rel > self.rtol)
        # a stalled solve is a failure (NaN: Newton reports it and the sweep cuts its step),
        # never a small update that Newton could take for convergence
        return jnp.where(rel <= self.fail_rtol, x, jnp.nan), its.astype(jnp.int32)

    # Subclasses provide the set-up of an equilibrated matrix and the preconditioned solve:
    @abstractmethod
    def _data(self, scaled, c, rows, cols, near_null):
        """Per-Jacobian set-up of S = R J C (kept in ``Factorization.aux``; ``c``: the column scaling)."""

    @abstractmethod
    def _krylov(self, vals, b, rows, cols, data, transpose):
        """Solve S x = b (S^T x = b) with the set-up ``data``: (x, iterations)."""

    # The public calls are overridden: the set-up may need the scalings and is kept in the
    # factorisation, so chord steps and tangents reuse it.
    def factor_solve(self, vals, b, rows, cols, near_null=None):
        r, c = equilibrate(rows, cols, vals, self.n)
        scaled = vals * r[rows] * c[cols]
        data = self._data(scaled, c, rows, cols, near_null)
        y, its = self._krylov(scaled, r * b, rows, cols, data, False)
        return c * y, Factorization(scaled, r, c, its, data)

    def resolve(self, fact, b, rows, cols):
        return fact.c * self._krylov(fact.vals, fact.r * b, rows, cols, fact.aux, False)[0]

    def empty_aux(self, nnz):
        shapes = jax.eval_shape(lambda v, c: self._data(v, c, self.rows, self.cols, None),
                                jax.ShapeDtypeStruct((nnz,), jnp.float64),
                                jax.ShapeDtypeStruct((self.n,), jnp.float64))
        return jax.tree.map(lambda t: jnp.zeros(t.shape, t.dtype), shapes)

    def _factor_solve(self, vals, b, rows, cols):  # the scaled-system interface of LinearSolver
        return self._krylov(vals, b, rows, cols, self._data(vals, jnp.ones_like(b), rows, cols, None), False)


@dataclass(frozen=True, eq=False)
class AMGSolver(DeviceKrylov):
    """FGMRES preconditioned by the aggregation AMG K-cycle, all in JAX.

    ``token`` of the returned factorisation: the FGMRES iterations of that solve (there is no
    host handle), so a caller can read the Krylov cost of a Newton step.
    """

    dof_node: np.ndarray | None = None
    dof_field: np.ndarray | None = None
    coarse_max: int = 1200
    options: AMGOptions = AMGOptions()

    def __post_init__(self):
        object.__setattr__(self, "hierarchy", build_hierarchy(
            self.rows, self.cols, self.n, self.dof_node, self.dof_field, coarse_max=self.coarse_max,
            colour=self.options.smoother == "gs"))

    def _setup(self, vals, log_weights, rows, cols, transpose=False):
        return _setup(self.hierarchy, vals, log_weights, rows, cols, transpose)

    def _krylov(self, vals, b, rows, cols, data, transpose):
        """Solve the equilibrated system S x = b (S^T x = b) with the set-up ``data``."""
        m = make_preconditioner(self.hierarchy, data, rows, cols, transpose, self.options)
        return self._fgmres(vals, b, rows, cols, m, transpose)

    def _data(self, scaled, c, rows, cols, near_null):  # the near-null vector of S is v / c
        log_w = -jnp.log(c) if near_null is None else near_null - jnp.log(c)
        return self._setup(scaled, log_w, rows, cols)

    def resolve_transpose(self, fact, b, rows, cols):  # S^T has its own set-up (near-null 1/r)
        data = self._setup(fact.vals, -jnp.log(fact.r), rows, cols, transpose=True)
        return fact.r * self._krylov(fact.vals, fact.c * b, rows, cols, data, True)[0]

    def _resolve_transpose(self, fact, b, rows, cols):
        data = self._setup(fact.vals, jnp.zeros_like(b), rows, cols, transpose=True)
        return self._krylov(fact.vals, b, rows, cols, data, True)[0]


__all__ = ["AMGSolver", "AMGOptions", "DeviceKrylov", "build_hierarchy", "aggregate_nodes", "fgmres",
           "make_preconditioner"]
