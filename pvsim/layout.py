"""Unknowns and their numbering.

Two kinds of unknowns (DESIGN.md, "Unknowns"):

* **node fields**, one per mesh node: the potential ``psi`` (later also ``T``);
* **carrier fields**, one per *carrier set*: ``phi_n``, ``phi_p``. A carrier set belongs to
  the semiconductor sites of one mesh node. At a *continuous* interface the sites of the
  adjacent semiconductor regions share one carrier set (continuous quasi-Fermi levels, the
  default and the only kind in this version); an interface with its own flux kernel
  (thermionic emission, tunnelling) gives each side its own set and couples them by an
  interface link. Insulator sites have no carrier set.

Unknowns are numbered node by node (the node field(s), then the carrier fields of each
carrier set at that node), so the number of unknowns per node is data, and the matrix
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

    kind: ``"ohmic"`` (charge-neutral Dirichlet, for doped semiconductors) or
    ``"work_function"`` (psi = V - W/q, so n = Nc exp(-(W - chi)/kT) and
    p = Nv exp(-(IE - W)/kT), for undoped organics and LED stacks; also gates on insulators).
    control: ``"voltage"`` or ``"current"`` (the contact voltage becomes an unknown fixed by the
    terminal current).
    """

    name: str
    kind: str = "ohmic"
    control: str = "voltage"


@dataclass(frozen=True)
class Layout:
    n_dof: int
    psi_dof: np.ndarray  # (N,)
    site_carrier: np.ndarray  # (S,) carrier set of each site, -1 for insulator sites
    phin_dof: np.ndarray  # (C,)
    phip_dof: np.ndarray  # (C,)
    carrier_node: np.ndarray  # (C,)
    semiconductor: np.ndarray  # (R,) bool
    contacts: tuple[ContactSpec, ...]
    contact_nodes: tuple[np.ndarray, ...]
    contact_site: tuple[np.ndarray, ...]  # site whose material fixes psi at each contact node
    contact_carriers: tuple[np.ndarray, ...]
    voltage_dof: np.ndarray  # (K,) extra unknown of current-controlled contacts, else -1

    @property
    def n_carriers(self) -> int:
        return len(self.phin_dof)


def build_layout(disc: Discretization, semiconductor: np.ndarray,
                 contacts: tuple[ContactSpec, ...]) -> Layout:
    """Number the unknowns for a discretisation; ``semiconductor`` flags each region."""
    semiconductor = np.asarray(semiconductor, dtype=bool)
    n_nodes = disc.mesh.n_nodes
    semi_site = semiconductor[disc.site_region]
    # one carrier set per node that has semiconductor sites (continuous interfaces)
    has_carriers = np.zeros(n_nodes, dtype=bool)
    has_carriers[disc.site_node[semi_site]] = True
    node_carrier = -np.ones(n_nodes, dtype=np.int64)
    node_carrier[has_carriers] = np.arange(has_carriers.sum())
    site_carrier = np.where(semi_site, node_carrier[disc.site_node], -1)
    carrier_node = np.nonzero(has_carriers)[0]

    # node-major numbering: psi, then (phi_n, phi_p) of the node's carrier set
    per_node = len(NODE_FIELDS) + len(CARRIER_FIELDS) * has_carriers
    start = np.concatenate([[0], np.cumsum(per_node)[:-1]])
    psi_dof = start
    phin_dof = start[carrier_node] + 1
    phip_dof = start[carrier_node] + 2
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
        cars = node_carrier[nodes][node_carrier[nodes] >= 0]
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
        phip_dof=phip_dof, carrier_node=carrier_node, semiconductor=semiconductor,
        contacts=tuple(contacts), contact_nodes=tuple(contact_nodes),
        contact_site=tuple(contact_site), contact_carriers=tuple(contact_carriers),
        voltage_dof=voltage_dof,
    )
