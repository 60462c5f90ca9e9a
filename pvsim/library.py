"""The material library: sourced material data and its conversion to :class:`MaterialSpec`.

The data live in ``pvsim/data/materials/*.toml`` (schema and tables: docs/material_library.md).
Each number is a table ``{value, source, confidence[, range][, note]}`` whose key carries the
unit: a :class:`pvsim.materials.MaterialSpec` field name (``band_gap_eV``, ``Nc_cm3``,
``mu_n_cm2_Vs``...) or, under ``properties``, a key ending in a unit (``edge_nm``,
``reduced_mass_m0``). ``source`` names entries of ``references.toml`` or is free text;
``confidence`` is v (checked against the source), m (from memory) or d (derived; the working
in ``note``). The loader checks all of this when it first reads the files.

Names are case-insensitive and punctuation-blind ("CsPbBr3_NC", "cspbbr3-nc" and
"CsPbBr3 NC film" are one entry). Beyond look-ups the module holds two small models:

* the size-dependent gap of cube NCs, E(L) = E_inf + a/L^2 + b/L (L the edge in nm), fitted to
  a table of measured gaps (:func:`nc_band_gap`);
* the ligand effective barrier: drift-diffusion over offsets dE = kT 2 kappa d reproduces the
  WKB transmission exp(-2 kappa d) of a real barrier (:func:`effective_barrier_eV`).
"""

from __future__ import annotations

import copy
import difflib
import math
import re
import tomllib
from dataclasses import dataclass, fields
from functools import lru_cache
from importlib import resources

import numpy as np

from .units import CM2_VS, CM3, HBAR, KB, M0, Q

DATA_PACKAGE = "pvsim"
DATA_DIR = ("data", "materials")

#: MaterialSpec numeric field -> (unit, factor to SI: J, m^-3, m^2/(V s), s, ...)
FIELD_UNITS: dict[str, tuple[str, float]] = {
    "eps_r": ("1", 1.0),
    "electron_affinity_eV": ("eV", Q),
    "band_gap_eV": ("eV", Q),
    "Nc_cm3": ("cm^-3", CM3),
    "Nv_cm3": ("cm^-3", CM3),
    "mu_n_cm2_Vs": ("cm^2/(V s)", CM2_VS),
    "mu_p_cm2_Vs": ("cm^2/(V s)", CM2_VS),
    "tau_n_s": ("s", 1.0),
    "tau_p_s": ("s", 1.0),
    "trap_level_eV": ("eV", Q),
    "radiative_B_cm3_s": ("cm^3/s", 1e-6),
    "auger_Cn_cm6_s": ("cm^6/s", 1e-12),
    "auger_Cp_cm6_s": ("cm^6/s", 1e-12),
    "disorder_n_eV": ("eV", Q),
    "disorder_p_eV": ("eV", Q),
    "poole_frenkel_n": ("(cm/V)^1/2", 0.1),  # gamma sqrt(F) with F in V/cm -> F in V/m
    "poole_frenkel_p": ("(cm/V)^1/2", 0.1),
    "thermal_conductivity_W_mK": ("W/(m K)", 1.0),
    "kappa_T_exponent": ("1", 1.0),
    "band_gap_T_coeff_eV_K": ("eV/K", Q),
    "mobility_T_exponent_n": ("1", 1.0),
    "mobility_T_exponent_p": ("1", 1.0),
    "mobility_disorder_n_eV": ("eV", Q),
    "mobility_disorder_p_eV": ("eV", Q),
    "photon_energy_eV": ("eV", Q),
}

#: unit suffixes of other keys (properties, contacts), longest first
SUFFIX_UNITS: tuple[tuple[str, str, float], ...] = (
    ("_cm2_Vs", "cm^2/(V s)", CM2_VS),
    ("_cm3_s", "cm^3/s", 1e-6),
    ("_cm6_s", "cm^6/s", 1e-12),
    ("_eV_K", "eV/K", Q),
    ("_W_mK", "W/(m K)", 1.0),
    ("_cm_s", "cm/s", 1e-2),
    ("_cm3", "cm^-3", CM3),
    ("_eV", "eV", Q),
    ("_nm", "nm", 1e-9),
    ("_m0", "m0", M0),
    ("_K", "K", 1.0),
    ("_s", "s", 1.0),
)
DIMENSIONLESS = frozenset({"eps_inf", "volume_fraction"})
CONFIDENCE = {"v": "checked against the source", "m": "from memory, not re-checked",
              "d": "derived (working in the note)"}
FLAGS = frozenset({"band_alignment_on_CsPbX3"})
_STRUCTURE = frozenset({"description", "aliases", "kind", "statistics", "host", "properties"})
_QUANTITY_KEYS = frozenset({"value", "source", "confidence", "range", "note"})
_KINDS = ("semiconductor", "insulator")
_STATISTICS = ("boltzmann", "blakemore", "fermi_dirac", "gauss_fermi")


def unit_of(key: str) -> tuple[str, float]:
    """(unit, factor to SI) of a data key: a MaterialSpec field or a unit-suffixed name."""
    if key in FIELD_UNITS:
        return FIELD_UNITS[key]
    if key in DIMENSIONLESS:
        return ("1", 1.0)
    for suffix, unit, factor in SUFFIX_UNITS:
        if key.endswith(suffix):
            return unit, factor
    raise KeyError(f"{key!r} names no unit: use a MaterialSpec field or end the key in one of "
                   f"{[s for s, _, _ in SUFFIX_UNITS]}")


def si_value(key: str, value: float) -> float:
    """``value`` of data key ``key`` in SI units (energies in J, densities in m^-3, ...)."""
    return value * unit_of(key)[1]


def _normal(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


# --------------------------------------------------------------------------- loading
@dataclass(frozen=True)
class _Library:
    references: dict
    materials: dict   # canonical name -> entry
    contacts: dict
    confinement: dict  # table name -> table
    index: dict       # ("material" | "contact", normalised name or alias) -> canonical name


def _check_source(where: str, src, refs: dict) -> None:
    """A source is ';'-separated reference keys and/or free text (which contains a space)."""
    if not isinstance(src, str) or not src.strip():
        raise ValueError(f"{where} has an empty source")
    for token in (t.strip() for t in src.split(";")):
        if " " not in token and token not in refs:
            raise ValueError(f"{where} cites {token!r}, which references.toml does not define")


def _check_quantity(where: str, key: str, q, refs: dict) -> None:
    if not isinstance(q, dict) or not {"value", "source", "confidence"} <= q.keys():
        raise ValueError(f"{where}: {key} must be a table {{ value = ..., source = \"...\", "
                         f"confidence = \"v|m|d\" }}, got {q!r}")
    if extra := set(q) - _QUANTITY_KEYS:
        raise ValueError(f"{where}: {key} has unknown fields {sorted(extra)}; "
                         f"allowed {sorted(_QUANTITY_KEYS)}")
    v = q["value"]
    if key in FLAGS:
        if not isinstance(v, str):
            raise ValueError(f"{where}: flag {key} must be a string")
    else:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"{where}: {key} = {v!r} is not a number")
        try:
            unit_of(key)
        except KeyError as err:
            raise ValueError(f"{where}: {err.args[0]}") from None
    src = q["source"]
    _check_source(f"{where}: {key}", src, refs)
    if q["confidence"] not in CONFIDENCE:
        raise ValueError(f"{where}: {key} confidence {q['confidence']!r} is not one of {sorted(CONFIDENCE)}")
    if q["confidence"] == "d" and not q.get("note") and not any(" " in t.strip() for t in src.split(";")):
        raise ValueError(f"{where}: {key} is derived (d) but gives no working (a note or free-text source)")
    if "range" in q:
        lo, hi = q["range"]
        if not lo <= v <= hi:
            raise ValueError(f"{where}: {key} = {v} lies outside its range [{lo}, {hi}]")


def _check_entry(where: str, entry: dict, refs: dict, spec_fields: set, material: bool) -> None:
    if not isinstance(entry.get("description"), str):
        raise ValueError(f"{where}: a description string is required")
    if material:
        if entry.get("kind") not in _KINDS:
            raise ValueError(f"{where}: kind must be one of {_KINDS}")
        if entry.get("statistics", "boltzmann") not in _STATISTICS:
            raise ValueError(f"{where}: statistics must be one of {_STATISTICS}")
    for key, q in entry.items():
        if key in _STRUCTURE:
            continue
        if material and key not in spec_fields and key not in FLAGS:
            close = difflib.get_close_matches(key, sorted(spec_fields), n=3)
            raise ValueError(f"{where}: {key!r} is not a MaterialSpec field (close: {close}); "
                             "put other data under [...properties] with a unit suffix")
        _check_quantity(where, key, q, refs)
    for key, q in entry.get("properties", {}).items():
        if key in spec_fields:
            raise ValueError(f"{where}.properties: {key} is a MaterialSpec field; give it in the entry")
        _check_quantity(f"{where}.properties", key, q, refs)


def _check_confinement(where: str, t: dict, refs: dict, materials: dict) -> None:
    for key in ("applies_to", "quantity", "edge_nm", "gap_eV", "source", "confidence",
                "valid_edge_nm", "tolerance_eV"):
        if key not in t:
            raise ValueError(f"{where}: {key} is required")
    if len(t["edge_nm"]) != len(t["gap_eV"]) or not t["edge_nm"]:
        raise ValueError(f"{where}: edge_nm and gap_eV must be non-empty lists of equal length")
    if ("limit" in t) == ("shape_from" in t):
        raise ValueError(f"{where}: give exactly one of limit (an entry) or shape_from (a table)")
    if "limit" in t and t["limit"] not in materials:
        raise ValueError(f"{where}: limit {t['limit']!r} is not a material")
    if t["confidence"] not in CONFIDENCE:
        raise ValueError(f"{where}: confidence must be one of {sorted(CONFIDENCE)}")
    _check_source(where, t["source"], refs)


@lru_cache(maxsize=1)
def _library() -> _Library:
    from .materials import MaterialSpec

    spec_fields = {f.name for f in fields(MaterialSpec)} - {"kind", "statistics"}
    if spec_fields != set(FIELD_UNITS):
        raise RuntimeError(f"FIELD_UNITS is out of step with MaterialSpec: {spec_fields ^ set(FIELD_UNITS)}")
    refs, materials, contacts, confinement, origin = {}, {}, {}, {}, {}
    folder = resources.files(DATA_PACKAGE).joinpath(*DATA_DIR)
    for path in sorted((p for p in folder.iterdir() if p.name.endswith(".toml")), key=lambda p: p.name):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        for section, store in (("reference", refs), ("material", materials), ("contact", contacts),
                               ("confinement", confinement)):
            for name, value in data.pop(section, {}).items():
                if (section, name) in origin:
                    raise ValueError(f"{path.name}: [{section}.{name}] also in {origin[section, name]}")
                origin[section, name] = path.name
                store[name] = value
        if data:
            raise ValueError(f"{path.name}: unknown top-level tables {sorted(data)}; "
                             "use [reference], [material.X], [contact.X], [confinement.X]")
    for name, e in materials.items():
        _check_entry(f"[material.{name}] ({origin['material', name]})", e, refs, spec_fields, True)
    for name, e in materials.items():
        if "host" in e and e["host"] not in materials:
            raise ValueError(f"[material.{name}]: host {e['host']!r} is not a material")
    for name, e in contacts.items():
        _check_entry(f"[contact.{name}] ({origin['contact', name]})", e, refs, spec_fields, False)
        if "work_function_eV" not in e:
            raise ValueError(f"[contact.{name}]: work_function_eV is required")
    for name, t in confinement.items():
        _check_confinement(f"[confinement.{name}]", t, refs, materials)
    index = {}
    for kind, store in (("material", materials), ("contact", contacts)):
        for name, e in store.items():
            for alias in [name, *e.get("aliases", [])]:
                key = (kind, _normal(alias))
                if index.get(key, name) != name:
                    raise ValueError(f"{kind} alias {alias!r} names both {index[key]} and {name}")
                index[key] = name
    return _Library(refs, materials, contacts, confinement, index)


def _resolve(kind: str, name: str) -> str:
    lib = _library()
    hit = lib.index.get((kind, _normal(name)))
    if hit is None:
        names = sorted(lib.materials if kind == "material" else lib.contacts)
        close = difflib.get_close_matches(_normal(name), [k for (t, k) in lib.index if t == kind], n=3)
        hint = f" Close: {list(dict.fromkeys(lib.index[kind, c] for c in close))}." if close else ""
        raise ValueError(f"no {kind} {name!r} in the library.{hint} Known: {names}")
    return hit


def _citation(source: str) -> str:
    """A source string with its reference keys spelled out."""
    refs = _library().references
    return "; ".join(refs.get(t.strip(), t.strip()) for t in source.split(";"))


def _with_citations(entry: dict) -> dict:
    """Deep copy with each quantity's ``citation`` (its source keys spelled out) added."""
    out = copy.deepcopy(entry)
    for table in (out, out.get("properties", {})):
        for q in table.values():
            if isinstance(q, dict) and "source" in q:
                q["citation"] = _citation(q["source"])
    return out


# --------------------------------------------------------------------------- public look-ups
def list_materials() -> list[str]:
    """Canonical names of the library's materials."""
    return sorted(_library().materials)


def list_contacts() -> list[str]:
    """Canonical names of the library's work-function contacts."""
    return sorted(_library().contacts)


def canonical_name(name: str) -> str:
    """The canonical material name behind ``name`` (any case, punctuation or alias)."""
    return _resolve("material", name)


def material_entry(name: str) -> dict:
    """The raw entry (a copy) with sources; each quantity gains its ``citation`` text."""
    canonical = _resolve("material", name)
    return {"name": canonical, **_with_citations(_library().materials[canonical])}


def contact_entry(name: str) -> dict:
    """The raw contact entry (a copy) with sources and citations."""
    canonical = _resolve("contact", name)
    return {"name": canonical, **_with_citations(_library().contacts[canonical])}


def reference(key: str) -> str:
    """The full citation of a reference key of references.toml."""
    return _library().references[key]


def contact_work_function(name: str) -> float:
    """Work function (eV) of a library contact, e.g. "ITO", "LiF/Al"."""
    return float(_library().contacts[_resolve("contact", name)]["work_function_eV"]["value"])


def band_alignment_on_perovskite(name: str) -> str | None:
    """The flagged band alignment of a shell material on CsPbX3 ("type-II"), or None."""
    flag = _library().materials[_resolve("material", name)].get("band_alignment_on_CsPbX3")
    return None if flag is None else flag["value"]


def is_type_ii_on_perovskite(name: str) -> bool:
    """True for shell materials whose band alignment on CsPbX3 is staggered (type-II)."""
    return band_alignment_on_perovskite(name) == "type-II"


def material_spec(name: str, **overrides):
    """The library entry as a :class:`pvsim.materials.MaterialSpec`, with field overrides.

    ``material_spec("CsPbBr3_NC", mu_n_cm2_Vs=1e-2)``; an override key that is not a
    MaterialSpec field raises ValueError naming it and its closest field names.
    """
    from .materials import MaterialSpec

    canonical = _resolve("material", name)
    entry = _library().materials[canonical]
    allowed = set(FIELD_UNITS) | {"kind", "statistics"}
    for key in overrides:
        if key not in allowed:
            close = [f for f in sorted(allowed) if f.startswith(key)][:3]
            close = close or difflib.get_close_matches(key, sorted(allowed), n=3, cutoff=0.5)
            raise ValueError(f"material_spec({canonical!r}): unknown override {key!r}"
                             + (f"; did you mean {' or '.join(close)}?" if close else "")
                             + " Overrides are MaterialSpec fields (units in the name).")
    values = {k: float(q["value"]) for k, q in entry.items() if k in FIELD_UNITS}
    values["kind"] = entry["kind"]
    values["statistics"] = entry.get("statistics", "boltzmann")
    values.update(overrides)
    return MaterialSpec(**values)


# --------------------------------------------------------------------------- ligand barrier
def effective_barrier_eV(barrier_eV: float, mass_m0: float, thickness_nm: float, T: float = 300.0) -> float:
    """Offset dE (eV) whose Boltzmann factor equals the WKB transmission of a real barrier.

    dE = kT 2 kappa d, kappa = sqrt(2 m* q E_b) / hbar, so exp(-dE/kT) = exp(-2 kappa d): a
    meshed layer with band offsets dE passes, by drift-diffusion, the fraction of carriers that
    tunnel through the barrier of height ``barrier_eV``, mass ``mass_m0`` (m0) and thickness
    ``thickness_nm`` at the band edge. Valid at temperature ``T`` only (dE scales with T).
    """
    if barrier_eV < 0 or mass_m0 <= 0 or thickness_nm < 0 or T <= 0:
        raise ValueError("effective_barrier_eV needs barrier_eV >= 0, mass_m0 > 0, thickness_nm >= 0, T > 0")
    kappa = math.sqrt(2.0 * mass_m0 * M0 * Q * barrier_eV) / HBAR  # 1/m
    return KB * T / Q * 2.0 * kappa * thickness_nm * 1e-9


def barrier_matched_mobility_cm2_Vs(thickness_nm: float, attempt_mass_m0: float = 0.25,
                                    T: float = 300.0) -> float:
    """Mobility whose diffusion velocity D/d equals the Richardson velocity of the host.

    mu = v_R d q / kT, v_R = sqrt(kT / (2 pi m*)): the drift-diffusion flux over the barrier
    layer, (D/d) n exp(-dE/kT), then equals the tunnelling-link flux v_R T n.
    """
    v_r = math.sqrt(KB * T / (2.0 * math.pi * attempt_mass_m0 * M0))
    return v_r * thickness_nm * 1e-9 * Q / (KB * T) / CM2_VS


def ligand_barrier_spec(thickness_nm: float | None = None, host: str | None = None, *,
                        barrier_eV: float | None = None, mass_m0: float | None = None,
                        T: float | None = None, name: str = "OA_OLA_ligand", **overrides):
    """The effective-barrier ligand material for a shell ``thickness_nm`` around ``host``.

    Affinity = host affinity - dE, gap = host gap + 2 dE, Nc/Nv = the host's, mobility from
    :func:`barrier_matched_mobility_cm2_Vs`; the rest from the library entry ``name``. Omitted
    arguments take the entry's reference values (1.5 nm, CsPbBr3_NC, 1.4 eV, 0.42 m0, 300 K).
    """
    entry = _library().materials[_resolve("material", name)]
    prop = {k: q["value"] for k, q in entry["properties"].items()}
    d = prop["reference_thickness_nm"] if thickness_nm is None else thickness_nm
    T = prop["reference_temperature_K"] if T is None else T
    dE = effective_barrier_eV(prop["barrier_eV"] if barrier_eV is None else barrier_eV,
                              prop["tunnelling_mass_m0"] if mass_m0 is None else mass_m0, d, T)
    h = material_spec(entry["host"] if host is None else host)
    mu = barrier_matched_mobility_cm2_Vs(d, prop["attempt_mass_m0"], T)
    derived = dict(electron_affinity_eV=h.electron_affinity_eV - dE, band_gap_eV=h.band_gap_eV + 2 * dE,
                   Nc_cm3=h.Nc_cm3, Nv_cm3=h.Nv_cm3, mu_n_cm2_Vs=mu, mu_p_cm2_Vs=mu)
    return material_spec(name, **{**derived, **overrides})


# --------------------------------------------------------------------------- NC confinement
@dataclass(frozen=True)
class ConfinementModel:
    """E(L) = E_inf + a / L^2 + b / L for cube NCs of edge L (nm), fitted to measured gaps."""

    table: str
    E_inf_eV: float
    a_eV_nm2: float
    b_eV_nm: float
    edge_nm: tuple
    gap_eV: tuple
    valid_edge_nm: tuple
    tolerance_eV: float
    quantity: str
    source: str

    def __call__(self, edge_nm):
        L = np.asarray(edge_nm, dtype=float)
        return self.E_inf_eV + self.a_eV_nm2 / L**2 + self.b_eV_nm / L

    @property
    def max_residual_eV(self) -> float:
        """Largest |model - table| over the measured points."""
        return float(np.max(np.abs(self(self.edge_nm) - np.asarray(self.gap_eV))))


@lru_cache(maxsize=None)
def _fit_confinement(table: str) -> ConfinementModel:
    lib = _library()
    t = lib.confinement[table]
    L, E = np.asarray(t["edge_nm"], float), np.asarray(t["gap_eV"], float)
    if "limit" in t:  # E_inf = the bulk gap; least squares for a, b
        E_inf = float(lib.materials[t["limit"]]["band_gap_eV"]["value"])
        (a, b), *_ = np.linalg.lstsq(np.c_[1 / L**2, 1 / L], E - E_inf, rcond=None)
    else:  # a, b from another table (same confinement energy); least squares for E_inf
        shape = _fit_confinement(t["shape_from"])
        a, b = shape.a_eV_nm2, shape.b_eV_nm
        E_inf = float(np.mean(E - a / L**2 - b / L))
    return ConfinementModel(table, E_inf, float(a), float(b), tuple(L), tuple(E),
                            tuple(t["valid_edge_nm"]), float(t["tolerance_eV"]), t["quantity"],
                            _citation(t["source"]))


def confinement_model(material: str) -> ConfinementModel:
    """The confinement fit whose table applies to ``material`` (bulk or NC-film entry)."""
    canonical = _resolve("material", material)
    for name, t in _library().confinement.items():
        if canonical in t["applies_to"]:
            return _fit_confinement(name)
    raise ValueError(f"no confinement table applies to {canonical}; tables exist for "
                     f"{sorted(n for t in _library().confinement.values() for n in t['applies_to'])}")


def nc_band_gap(material: str, edge_nm):
    """Band gap (eV) of cube NCs of ``material`` with edge ``edge_nm`` (scalar or array).

    E(L) = E_inf + a/L^2 + b/L fitted to the measured table (:func:`confinement_model`); an
    edge outside the table's validity range (e.g. 4-15 nm for CsPbBr3) raises ValueError.
    """
    model = confinement_model(material)
    L = np.asarray(edge_nm, dtype=float)
    lo, hi = model.valid_edge_nm
    if np.any((L < lo) | (L > hi)):
        raise ValueError(f"edge {edge_nm} nm is outside {lo}-{hi} nm, where the {model.table} "
                         f"confinement fit holds; above {hi} nm use the bulk gap")
    E = model(L)
    return float(E) if E.ndim == 0 else E


def nc_film_spec(name: str, edge_nm: float, **overrides):
    """An NC-film entry carried to another edge length by the confinement model.

    Gap = entry gap + E(L) - E(L_ref) (the entry's calibration kept, the size dependence from
    the fit), affinity lowered by half the change (m_e ~ m_h in CsPbX3). L_ref is the entry's
    ``properties.edge_nm``.
    """
    entry = _library().materials[_resolve("material", name)]
    ref = entry.get("properties", {}).get("edge_nm")
    if ref is None:
        raise ValueError(f"{name} has no properties.edge_nm: not an NC-film entry")
    shift = nc_band_gap(name, edge_nm) - nc_band_gap(name, ref["value"])
    base = material_spec(name)
    derived = dict(band_gap_eV=base.band_gap_eV + shift,
                   electron_affinity_eV=base.electron_affinity_eV - shift / 2)
    return material_spec(name, **{**derived, **overrides})
