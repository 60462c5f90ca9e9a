"""Unknowns and their numbering.

Two kinds of unknowns (DESIGN.md, "Unknowns"):

* **node fields**, one per mesh node: the potential ``psi``;
* **thermal fields** (heat on), one lattice temperature ``T`` per *thermal set*: all sites of
  a node share one, except across an interface with a finite thermal conductance (a
  temperature jump), which gives each side its own;
* **carrier fields**, one per *carrier set*: ``phi_n``, ``phi_p``. A carrier set belongs to
  semiconductor sites of one mesh node. At a *continuous* interface (the default) the sites
  of the adjacent semiconductor regions share one carrier set (continuous quasi-Fermi
  levels); a *split* interface (thermionic emission, tunnelling) gives each side its own
  set (duplicated interface nodes), coupled by an **interface link** that carries the
  interface flux (see :mod:`pvsim.physics.interface`). Sites are grouped into sets per node
  as the connected components of "same node, and the two regions are not split". Insulator
  sites have no carrier set.

Unknowns are numbered node by node (psi, the temperature of each thermal set, then the
carrier fields of each carrier set at that node), so the number of unknowns per node is data, and the matrix
bandwidth follows the mesh ordering. Current-controlled contacts append one unknown each:
their voltage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .discretize import Discretization

NODE_FIELDS = ("psi",)
CARRIER_FIELDS = ("phi_n", "phi_p")


@dataclass(frozen=True)
class ContactSpec:
    """A contact: a named mesh boundary with a boundary-condition kind.

    kind: ``"ohmic"`` (charge-neutral Dirichlet, for doped semiconductors),
    ``"work_function"`` (psi = V - W/q, so n = Nc exp(-(W - chi)/kT) and
    p = Nv exp(-(IE - W)/kT), for undoped organics and LED stacks; also gates on insulators)
    or ``"schottky"`` (psi as for a work-function contact with W = chi + ``barrier_eV``, the
    carriers exchanged with the metal at finite surface recombination velocities
    ``s_n_cm_s``/``s_p_cm_s`` instead of being fixed; Sze & Ng sec. 3.2.4).
    control: ``"voltage"`` or ``"current"`` (the contact voltage becomes an unknown fixed by the
    terminal current).
    """

    name: str
    kind: str = "ohmic"
    control: str = "voltage"
    barrier_eV: float | None = None  # Schottky: electron barrier W - chi
    s_n_cm_s: float = 2.7e6  # Schottky: Richardson velocity of a free electron at 300 K
    s_p_cm_s: float = 2.7e6


@dataclass(frozen=True)
class Links:
    """Interface links: one per (interface, node on it); all arrays have shape (L,)."""

    interface: np.ndarray  # index into the device's interface list
    site_a: np.ndarray  # site on the first region of the interface
    site_b: np.ndarray
    carrier_a: np.ndarray  # carrier set of each side (equal at a continuous interface)
    carrier_b: np.ndarray
    area: np.ndarray  # lumped interface area of the node (scaled)


@dataclass(frozen=True)
class Layout:
    n_dof: int
    psi_dof: np.ndarray  # (N,)
    site_carrier: np.ndarray  # (S,) carrier set of each site, -1 for insulator sites
    phin_dof: np.ndarray  # (C,)
    phip_dof: np.ndarray  # (C,)
    carrier_node: np.ndarray  # (C,)
    node_carrier: np.ndarray  # (N,) first carrier set of each node (region first in the mesh), -1
    semiconductor: np.ndarray  # (R,) bool
    contacts: tuple[ContactSpec, ...]
    contact_nodes: tuple[np.ndarray, ...]
    contact_site: tuple[np.ndarray, ...]  # site whose material fixes psi at each contact node
    contact_carriers: tuple[np.ndarray, ...]
    voltage_dof: np.ndarray  # (K,) extra unknown of current-controlled contacts, else -1
    links: Links
    site_thermal: np.ndarray  # (S,) thermal set of each site (-1: heat off)
    T_dof: np.ndarray  # (H,) temperature unknown of each thermal set
    thermal_node: np.ndarray  # (H,)

    @property
    def heat(self) -> bool:
        return len(self.T_dof) > 0

    @property
    def n_carriers(self) -> int:
        return len(self.phin_dof)

    def dof_groups(self) -> tuple[np.ndarray, np.ndarray]:
        """Mesh node and field (0 psi, 1 T, 2 phi_n, 3 phi_p) of every unknown, for the node-block
        smoother and the aggregation of :mod:`pvsim.amg`. All carrier (thermal) sets of a node
        share its field: labelling them by region as well (so that no coarse unknown averages
        the two sides of an interface) stalled FGMRES on the 3D NC cell (measured with unweighted
        aggregates, before the near-null weights of :mod:`pvsim.amg`). The voltage
        unknown of a current-controlled contact is a node of its own."""
        node = np.full(self.n_dof, -1, np.int64)
        field = np.zeros(self.n_dof, np.int64)
        node[self.psi_dof] = np.arange(len(self.psi_dof))
        for dofs, owner, kind in ((self.T_dof, self.thermal_node, 1), (self.phin_dof, self.carrier_node, 2),
                                  (self.phip_dof, self.carrier_node, 3)):
            node[dofs] = owner
            field[dofs] = kind
        extra = np.flatnonzero(node < 0)
        node[extra] = len(self.psi_dof) + np.arange(len(extra))
        return node, field


def _components(regs: np.ndarray, split: set) -> np.ndarray:
    """Connected-component label of each site at one node (union-find)."""
    parent = list(range(len(regs)))

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i

    for i in range(len(regs)):
        for j in range(i + 1, len(regs)):
            if frozenset((int(regs[i]), int(regs[j]))) not in split:
                parent[root(j)] = root(i)
    return np.array([root(i) for i in range(len(regs))])


def _site_sets(disc: Discretization, semi_site: np.ndarray, split: set) -> np.ndarray:
    """Set label of each site where ``semi_site`` (-1 elsewhere), numbered node-major.

    Sites at a node share a set unless their regions form a split interface; the sets of a
    node are the connected components of that relation (carrier sets over semiconductor
    sites, thermal sets over all sites).
    """
    label = np.zeros(disc.n_sites, dtype=np.int64)
    if split:
        sites = np.nonzero(semi_site)[0]
        sites = sites[np.argsort(disc.site_node[sites], kind="stable")]
        _, first, count = np.unique(disc.site_node[sites], return_index=True, return_counts=True)
        for f, c in zip(first[count > 1], count[count > 1]):
            at = sites[f:f + c]
            label[at] = _components(disc.site_region[at], split)
    # number the sets node-major: sort by (node, label)
    out = -np.ones(disc.n_sites, dtype=np.int64)
    if semi_site.any():
        pairs = np.stack([disc.site_node[semi_site], label[semi_site]], axis=1)
        _, inv = np.unique(pairs, axis=0, return_inverse=True)
        out[semi_site] = inv.ravel()
    return out


def _set_nodes(disc: Discretization, label: np.ndarray, n_nodes: int):
    """(node of each set, first set of each node or -1, count of sets per node)."""
    has = label >= 0
    n_set = int(label.max()) + 1 if has.any() else 0
    set_node = np.zeros(n_set, dtype=np.int64)
    set_node[label[has]] = disc.site_node[has]
    first = np.full(n_nodes, n_set, dtype=np.int64)
    np.minimum.at(first, set_node, np.arange(n_set))
    first[first == n_set] = -1
    return set_node, first, np.bincount(set_node, minlength=n_nodes)


def build_layout(disc: Discretization, semiconductor: np.ndarray,
                 contacts: tuple[ContactSpec, ...], interfaces=(), heat: bool = False,
                 thermal_split=()) -> Layout:
    """Number the unknowns for a discretisation; ``semiconductor`` flags each region.

    ``interfaces``: sequence of (region index a, region index b, split) for every interface
    that has a link (a flux kernel, interface recombination or sheet charge); ``split``
    gives the two sides their own carrier sets. ``heat`` adds the temperature unknowns;
    ``thermal_split``: region pairs (a, b) whose interface carries a temperature jump.
    """
    semiconductor = np.asarray(semiconductor, dtype=bool)
    n_nodes = disc.mesh.n_nodes
    semi_site = semiconductor[disc.site_region]
    split = {frozenset((int(a), int(b))) for a, b, sp in interfaces if sp}
    site_carrier = _site_sets(disc, semi_site, split)
    carrier_node, node_carrier, sets_per_node = _set_nodes(disc, site_carrier, n_nodes)
    n_car = len(carrier_node)
    all_sites = np.full(disc.n_sites, heat)
    site_thermal = _site_sets(disc, all_sites, {frozenset((int(a), int(b))) for a, b in thermal_split})
    thermal_node, node_thermal, thermal_per_node = _set_nodes(disc, site_thermal, n_nodes)

    # node-major numbering: psi, T of each thermal set, (phi_n, phi_p) of each carrier set
    per_node = len(NODE_FIELDS) + thermal_per_node + len(CARRIER_FIELDS) * sets_per_node
    start = np.concatenate([[0], np.cumsum(per_node)[:-1]])
    psi_dof = start
    t_rank = np.arange(len(thermal_node)) - node_thermal[thermal_node]
    T_dof = start[thermal_node] + 1 + t_rank
    rank = np.arange(n_car) - node_carrier[carrier_node]  # index of the set within its node
    phin_dof = start[carrier_node] + 1 + thermal_per_node[carrier_node] + 2 * rank
    phip_dof = phin_dof + 1
    n_dof = int(per_node.sum())

    contact_nodes, contact_site, contact_carriers = [], [], []
    voltage_dof = -np.ones(len(contacts), dtype=np.int64)
    # site fixing psi at each node: a semiconductor site if the node has one
    order = np.lexsort((~semi_site, disc.site_node))  # by node, semiconductor sites first
    first = np.ones(len(order), bool)
    first[1:] = disc.site_node[order][1:] != disc.site_node[order][:-1]
    node_site = np.empty(n_nodes, dtype=np.int64)
    node_site[disc.site_node[order][first]] = order[first]
    owner = {}
    for k, c in enumerate(contacts):
        nodes = disc.mesh.boundary_nodes(c.name)
        for nd in nodes:
            if int(nd) in owner:
                x = disc.mesh.points[nd].tolist()
                raise ValueError(f"contacts '{owner[int(nd)]}' and '{c.name}' share the node at "
                                 f"{x} m; contacts must not touch (leave a gap in the mesh groups)")
            owner[int(nd)] = c.name
        cars = np.nonzero(np.isin(carrier_node, nodes))[0]
        if c.control == "current" and len(cars) == 0:
            raise ValueError(f"contact '{c.name}' touches no semiconductor: its terminal current is "
                             "identically 0 and cannot be controlled")
        contact_nodes.append(nodes)
        contact_site.append(node_site[nodes])
        contact_carriers.append(cars)
        if c.control == "current":
            voltage_dof[k] = n_dof
            n_dof += 1
    return Layout(
        n_dof=n_dof, psi_dof=psi_dof, site_carrier=site_carrier, phin_dof=phin_dof,
        phip_dof=phip_dof, carrier_node=carrier_node, node_carrier=node_carrier,
        semiconductor=semiconductor,
        contacts=tuple(contacts), contact_nodes=tuple(contact_nodes),
        contact_site=tuple(contact_site), contact_carriers=tuple(contact_carriers),
        voltage_dof=voltage_dof, links=_links(disc, site_carrier, interfaces),
        site_thermal=site_thermal, T_dof=T_dof, thermal_node=thermal_node,
    )


def _links(disc: Discretization, site_carrier: np.ndarray, interfaces) -> Links:
    """One link per node of each listed interface, with its lumped interface area."""
    from .discretize import node_areas, shared_facets

    names = disc.region_names
    cols = [[] for _ in range(6)]
    for k, (a, b, _) in enumerate(interfaces):
        facets = shared_facets(disc.mesh, names[a], names[b])
        if len(facets) == 0:
            raise ValueError(f"regions '{names[a]}' and '{names[b]}' share no interface in the mesh")
        nodes, area = node_areas(disc.mesh, facets, disc.L_ref)
        sa, sb = disc.site_at(a, nodes), disc.site_at(b, nodes)
        ca, cb = site_carrier[sa], site_carrier[sb]
        # an insulator side has no carriers: the link then acts on the semiconductor side only
        ca, cb = np.where(ca >= 0, ca, cb), np.where(cb >= 0, cb, ca)
        for col, v in zip(cols, (np.full(len(nodes), k), sa, sb, ca, cb, area)):
            col.append(v)
    cat = [np.concatenate(c) if c else np.zeros(0) for c in cols]
    return Links(*(c.astype(np.int64) for c in cat[:5]), area=cat[5].astype(float))
