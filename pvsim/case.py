"""Case files (TOML): typed, validated at load, turned into a :class:`~pvsim.device.Device`.

Every section maps to one pydantic model; keys carry their unit (``thickness_nm``,
``donors_cm3`` ...). Any problem raises :class:`CaseError` whose message is one paragraph:
the key, the value, what was expected and an example. See ``docs/case_files.md``.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .units import thermal_voltage

Pos = Annotated[float, Field(gt=0)]
NonNeg = Annotated[float, Field(ge=0)]


class CaseError(ValueError):
    """A case file that cannot be run; the message says what to change."""


class _Model(BaseModel):
    # NaN and infinity are refused in every number (a lifetime may be inf: no SRH)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class SimulationSection(_Model):
    name: str = "pvsim case"
    description: str = ""
    temperature_K: Annotated[float, Field(ge=40, le=1000)] = 300.0


class LayerSection(_Model):
    region: str
    material: str | None = None
    thickness_nm: Pos
    spacing_nm: Pos | None = None
    min_spacing_nm: Pos | None = None


class MeshSection(_Model):
    file: str | None = None
    length_unit: Literal["m", "mm", "um", "nm", "cm", "A"] = "nm"
    axisymmetric: bool = False
    layers: list[LayerSection] | None = None
    left_contact: str | None = None
    right_contact: str | None = None

    @model_validator(mode="after")
    def _one_source(self):
        if (self.file is None) == (self.layers is None):
            raise ValueError("give exactly one of 'file' (a gmsh .msh) or [[mesh.layers]] (1D stack)")
        if self.layers is not None and {"length_unit", "axisymmetric"} & self.model_fields_set:
            raise ValueError("'length_unit' and 'axisymmetric' apply to a mesh 'file'; layer "
                             "thicknesses are in nm (thickness_nm)")
        if self.file is not None and {"left_contact", "right_contact"} & self.model_fields_set:
            raise ValueError("'left_contact'/'right_contact' name the ends of a [[mesh.layers]] "
                             "stack; a mesh file names its contacts with physical groups")
        return self


class GeometrySection(BaseModel):
    """``[geometry]``: a mesh built by a named generator (pvsim.geometry); every other key is
    one of its parameters (``pvsim mesh GENERATOR --help`` lists them)."""

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)
    generator: str
    save_msh: str | None = None  # also write the generated mesh (.msh 2.2) here

    @model_validator(mode="after")
    def _params(self):
        from .geometry.registry import check_parameters

        def finite(key, v):
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"geometry parameter '{key}' = {v} is not a finite number")
            for x in v if isinstance(v, (list, tuple)) else ():
                finite(key, x)

        for key, value in self.params.items():
            finite(key, value)
        check_parameters(self.generator, self.params)
        return self

    @property
    def params(self) -> dict:
        return dict(self.model_extra or {})


class MaterialSection(_Model):
    kind: Literal["semiconductor", "insulator"] = "semiconductor"
    eps_r: Pos
    electron_affinity_eV: float = 4.0
    band_gap_eV: Pos | None = None
    intrinsic_density_cm3: Pos | None = None
    Nc_cm3: Pos = 1e19
    Nv_cm3: Pos = 1e19
    mu_n_cm2_Vs: Pos = 1.0
    mu_p_cm2_Vs: Pos = 1.0
    tau_n_s: Annotated[float, Field(gt=0, allow_inf_nan=True)] = math.inf  # inf: no SRH
    tau_p_s: Annotated[float, Field(gt=0, allow_inf_nan=True)] = math.inf
    trap_level_eV: float = 0.0
    radiative_B_cm3_s: NonNeg = 0.0
    auger_Cn_cm6_s: NonNeg = 0.0
    auger_Cp_cm6_s: NonNeg = 0.0
    statistics: Literal["boltzmann", "blakemore", "fermi_dirac", "gauss_fermi"] = "boltzmann"
    disorder_n_eV: Annotated[float, Field(ge=0, le=0.3)] = 0.0
    disorder_p_eV: Annotated[float, Field(ge=0, le=0.3)] = 0.0
    poole_frenkel_n: NonNeg = 0.0  # (cm/V)^1/2
    poole_frenkel_p: NonNeg = 0.0
    # heat and temperature laws (values at 300 K; see docs/physics.md, "Heat")
    thermal_conductivity_W_mK: Pos | None = None
    kappa_T_exponent: Annotated[float, Field(ge=-3, le=3)] = 0.0
    band_gap_T_coeff_eV_K: Annotated[float, Field(ge=-2e-3, le=2e-3)] = 0.0
    mobility_T_exponent_n: Annotated[float, Field(ge=-5, le=5)] = 0.0
    mobility_T_exponent_p: Annotated[float, Field(ge=-5, le=5)] = 0.0
    mobility_disorder_n_eV: Annotated[float, Field(ge=0, le=0.3)] = 0.0
    mobility_disorder_p_eV: Annotated[float, Field(ge=0, le=0.3)] = 0.0
    photon_energy_eV: Pos | None = None

    @model_validator(mode="after")
    def _gap(self):
        if self.kind == "semiconductor" and (self.band_gap_eV is None) == (self.intrinsic_density_cm3 is None):
            raise ValueError("give exactly one of 'band_gap_eV' or 'intrinsic_density_cm3'")
        if self.statistics == "gauss_fermi" and min(self.disorder_n_eV, self.disorder_p_eV) < 0.013:
            raise ValueError("statistics = \"gauss_fermi\" needs the Gaussian widths "
                             "'disorder_n_eV' and 'disorder_p_eV' (0.013 to 0.3 eV), e.g. "
                             "disorder_n_eV = 0.1; below ~kT/2 use \"boltzmann\"")
        return self


class DopingSection(_Model):
    type: Literal["uniform", "step", "gaussian"] = "uniform"
    donors_cm3: NonNeg = 0.0
    acceptors_cm3: NonNeg = 0.0
    axis: Literal["x", "y", "z"] = "x"
    position_nm: float = 0.0
    side: Literal["above", "below"] = "above"
    center_nm: float = 0.0
    sigma_nm: Pos = 1.0


class RegionSection(_Model):
    material: str | None = None
    donors_cm3: NonNeg = 0.0
    acceptors_cm3: NonNeg = 0.0
    doping: list[DopingSection] = []


class ContactSection(_Model):
    type: Literal["ohmic", "work_function", "schottky"] = "ohmic"
    work_function_eV: Pos | None = None
    barrier_eV: float | None = None
    s_n_cm_s: Pos = 2.7e6
    s_p_cm_s: Pos = 2.7e6
    control: Literal["voltage", "current"] = "voltage"

    @model_validator(mode="after")
    def _wf(self):
        if (self.type == "schottky") != (self.barrier_eV is not None):
            raise ValueError("'barrier_eV' (electron barrier W - chi, e.g. barrier_eV = 0.7) is "
                             "required by, and only used by, type = \"schottky\" contacts")
        if self.type != "schottky" and {"s_n_cm_s", "s_p_cm_s"} & self.model_fields_set:
            raise ValueError("'s_n_cm_s'/'s_p_cm_s' (surface recombination velocities) apply to "
                             "type = \"schottky\" contacts only")
        if self.type == "work_function" and self.work_function_eV is None:
            raise ValueError("a work_function contact needs 'work_function_eV', e.g. work_function_eV = 5.1")
        if self.type == "ohmic" and self.work_function_eV is not None:
            raise ValueError("'work_function_eV' is used by type = \"work_function\" contacts only; an "
                             "ohmic contact takes its potential from charge neutrality")
        return self


class InterfaceSection(_Model):
    regions: Annotated[list[str], Field(min_length=2, max_length=2)]
    model: Literal["continuous", "thermionic", "tunnelling"] = "continuous"
    velocity: Literal["richardson", "scott_malliaras"] = "richardson"
    velocity_cm_s: Pos | None = None
    electron_mass: Pos = 1.0
    hole_mass: Pos = 1.0
    organic_region: str | None = None
    barrier_thickness_nm: NonNeg = 0.0
    electron_barrier_eV: NonNeg = 0.0
    hole_barrier_eV: NonNeg = 0.0
    barrier_mass_n: Pos = 1.0
    barrier_mass_p: Pos = 1.0
    s_n_cm_s: NonNeg = 0.0
    s_p_cm_s: NonNeg = 0.0
    trap_level_eV: float = 0.0
    sheet_charge_cm2: float = 0.0
    thermal_conductance_MW_m2K: Pos | None = None

    @model_validator(mode="after")
    def _consistent(self):
        if self.model != "tunnelling" and self.barrier_thickness_nm > 0:
            raise ValueError("'barrier_thickness_nm' sets a tunnelling barrier: use model = "
                             "\"tunnelling\"")
        if self.model == "tunnelling" and self.barrier_thickness_nm == 0:
            raise ValueError("model = \"tunnelling\" needs 'barrier_thickness_nm' (e.g. 1.5 for an "
                             "oleylamine/oleic-acid ligand shell) and the barrier heights")
        if self.velocity == "scott_malliaras" and self.organic_region is None:
            raise ValueError("velocity = \"scott_malliaras\" needs 'organic_region' (the hopping "
                             "side whose eps_r and mobility set the velocity)")
        if (self.s_n_cm_s > 0) != (self.s_p_cm_s > 0):
            raise ValueError("surface recombination needs both 's_n_cm_s' and 's_p_cm_s' > 0")
        return self


class SweepSection(_Model):
    contact: str
    voltages_V: list[float] | None = None
    start_V: float | None = None
    stop_V: float | None = None
    step_V: Pos | None = None
    extra_V: list[float] = []
    currents_A_cm2: list[float] | None = None  # 1D
    currents_A_m: list[float] | None = None  # 2D planar, per metre of depth
    currents_A: list[float] | None = None  # 3D, axisymmetric

    @model_validator(mode="after")
    def _values(self):
        ranges = self.start_V is not None or self.stop_V is not None or self.step_V is not None
        given = [self.voltages_V is not None, ranges,
                 any(x is not None for x in (self.currents_A_cm2, self.currents_A_m, self.currents_A))]
        if sum(given) != 1:
            raise ValueError("give one of 'voltages_V', ('start_V', 'stop_V', 'step_V') or a currents list")
        if ranges and None in (self.start_V, self.stop_V, self.step_V):
            raise ValueError("'start_V', 'stop_V' and 'step_V' go together")
        if given[2] and self.extra_V:
            raise ValueError("'extra_V' adds voltages to a voltage sweep; this sweep gives currents")
        if ranges:
            steps = abs(self.stop_V - self.start_V) / self.step_V
            if abs(steps - round(steps)) > 1e-9 * max(1.0, steps):
                raise ValueError(f"stop_V - start_V = {self.stop_V - self.start_V:g} V is not a whole "
                                 f"number of step_V = {self.step_V:g} V steps")
        return self

    def voltage_list(self) -> list[float] | None:
        if self.voltages_V is not None:
            return list(self.voltages_V) + list(self.extra_V)
        if self.start_V is None:
            return None
        n = int(round(abs(self.stop_V - self.start_V) / self.step_V))
        sign = 1.0 if self.stop_V >= self.start_V else -1.0
        return [self.start_V + sign * k * self.step_V for k in range(n + 1)] + list(self.extra_V)


class ThermalBoundarySection(_Model):
    name: str
    type: Literal["fixed", "robin"] = "fixed"
    temperature_K: Annotated[float, Field(ge=40, le=1000)] = 300.0
    h_W_m2K: Pos | None = None

    @model_validator(mode="after")
    def _h(self):
        if (self.type == "robin") != (self.h_W_m2K is not None):
            raise ValueError("'h_W_m2K' (heat-transfer coefficient, e.g. h_W_m2K = 1e4) is required by, "
                             "and only used by, type = \"robin\" boundaries")
        return self


class HeatSection(_Model):
    escape_fraction: Annotated[float, Field(ge=0, le=1)] = 0.2
    sources_W_m3: dict[str, float] = {}
    boundaries: Annotated[list[ThermalBoundarySection], Field(min_length=1)]


class SolverSection(_Model):
    tolerance: Pos = 1e-9
    max_iterations: Annotated[int, Field(ge=1, le=500)] = 40
    max_step: Pos = 10.0
    linear_solver: Literal["auto", "pardiso", "klu", "scipy", "gmres-ilu", "gmres-amg", "jax-gmres",
                           "jax-amg", "jax-air", "cudss"] = "auto"
    predictor: Literal["tangent", "secant", "none"] = "tangent"


class Case(_Model):
    simulation: SimulationSection = SimulationSection()
    mesh: MeshSection | None = None
    geometry: GeometrySection | None = None
    materials: dict[str, MaterialSection]
    regions: dict[str, RegionSection] = {}
    contacts: dict[str, ContactSection]
    interfaces: list[InterfaceSection] = []
    sweep: SweepSection | None = None
    solver: SolverSection = SolverSection()
    heat: HeatSection | None = None

    @model_validator(mode="after")
    def _one_mesh(self):
        if (self.mesh is None) == (self.geometry is None):
            raise ValueError("give exactly one of [mesh] (a .msh file or a 1D layer stack) or "
                             "[geometry] (a generator, e.g. generator = \"nc_monolayer\")")
        return self


# --------------------------------------------------------------------------- errors
_EXAMPLES = {
    "thickness_nm": "thickness_nm = 30", "temperature_K": "temperature_K = 300",
    "eps_r": "eps_r = 11.1", "band_gap_eV": "band_gap_eV = 1.12",
    "mu_n_cm2_Vs": "mu_n_cm2_Vs = 400", "mu_p_cm2_Vs": "mu_p_cm2_Vs = 200",
    "donors_cm3": "donors_cm3 = 1e17", "acceptors_cm3": "acceptors_cm3 = 1e17",
    "work_function_eV": "work_function_eV = 5.1", "file": 'file = "meshes/diode_2d.msh"',
    "contact": 'contact = "anode"', "material": 'material = "silicon"',
    "tau_n_s": "tau_n_s = 1e-5", "tau_p_s": "tau_p_s = 1e-5", "region": 'region = "htl"',
    "thermal_conductivity_W_mK": "thermal_conductivity_W_mK = 0.4",
    "boundaries": '[[heat.boundaries]]\nname = "anode"\ntype = "fixed"\ntemperature_K = 300',
}
_KNOWN_KEYS = sorted({f for m in (SimulationSection, LayerSection, MeshSection, GeometrySection,
                                  MaterialSection, DopingSection, RegionSection, ContactSection,
                                  SweepSection, InterfaceSection, SolverSection, HeatSection,
                                  ThermalBoundarySection, Case)
                      for f in m.model_fields})


def _explain(err: dict, source: str) -> str:
    loc = ".".join(str(x) for x in err["loc"])
    key = str(err["loc"][-1]) if err["loc"] else ""
    value = err.get("input")
    kind = err["type"]
    if kind == "extra_forbidden":
        stem = key.rsplit("_", 1)[0]
        close = [k for k in _KNOWN_KEYS if k.startswith(stem + "_")] or \
            difflib.get_close_matches(key, _KNOWN_KEYS, n=1)
        hint = f" Did you mean '{close[0]}' (keys carry their unit)?" if close else ""
        return f"{source}: unknown key '{loc}'.{hint}"
    if kind == "missing":
        ex = _EXAMPLES.get(key, f"{key} = ...")
        return f"{source}: missing key '{loc}'. Add it, for example: {ex}"
    if kind == "value_error" and isinstance(value, dict):  # a rule across keys of a table
        msg = err["msg"].removeprefix("Value error, ")
        return f"{source}: [{loc or 'case'}]: {msg}."
    ex = _EXAMPLES.get(key)
    tail = f" Example: {ex}" if ex else ""
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return f"{source}: '{loc}' = {shown} is not valid: {err['msg']}.{tail}"


def load_case(source: str | Path | dict, base_dir: str | Path | None = None) -> tuple[Case, Path]:
    """Parse and validate a case from a TOML path or a dict; returns (case, base directory)."""
    if isinstance(source, dict):
        data, name, base = source, "case", Path(base_dir or ".")
    elif not isinstance(source, (str, Path)):
        raise CaseError(f"a case is a TOML file path or a dict of its tables, not {type(source).__name__}")
    else:
        path = Path(source)
        if not path.exists():
            raise CaseError(f"case file '{path}' not found")
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise CaseError(f"{path}: not valid TOML ({exc}); check quotes and brackets") from None
        name, base = str(path), Path(base_dir or path.parent)
    data = _with_library(data, name)
    try:
        case = Case.model_validate(data)
    except ValidationError as exc:
        raise CaseError(" ".join(_explain(e, name) for e in exc.errors()[:3])) from None
    return case, base


def _with_library(data: dict, source: str) -> dict:
    """Materials from the library (pvsim/data/materials): ``[materials.X] base = "NAME"`` takes
    the entry and overrides its keys; a region or layer whose material is not defined in the
    case but names a library entry gets that entry. Names defined in the case win."""
    from . import library
    from .materials import MaterialSpec

    if not isinstance(data, dict) or not isinstance(data.get("materials", {}), dict):
        return data
    data = dict(data)
    materials = dict(data.get("materials", {}))
    regions = data.get("regions")
    used = [r.get("material") for r in regions.values() if isinstance(r, dict)] \
        if isinstance(regions, dict) else []
    mesh = data.get("mesh")
    if isinstance(mesh, dict) and isinstance(mesh.get("layers"), list):
        used += [lay.get("material") for lay in mesh["layers"] if isinstance(lay, dict)]
    for name in used:
        if isinstance(name, str) and name not in materials:
            try:
                library.canonical_name(name)
            except (KeyError, ValueError):
                continue  # reported later as an undefined material
            materials[name] = {"base": name}
    spec_fields = set(MaterialSpec.__dataclass_fields__)
    for key, table in materials.items():
        if not (isinstance(table, dict) and "base" in table):
            continue
        table = dict(table)
        base = table.pop("base")
        try:
            entry = library.material_spec(str(base))
        except (KeyError, ValueError) as exc:
            raise CaseError(f"{source}: [materials.{key}] base = {base!r}: {exc}") from None
        values = {f: getattr(entry, f) for f in spec_fields
                  if f in MaterialSection.model_fields and getattr(entry, f) is not None}
        if "intrinsic_density_cm3" in table:
            values.pop("band_gap_eV", None)
        if values.get("kind") == "insulator":  # insulators take eps_r (and thermal keys) only
            values = {f: v for f, v in values.items() if f == "kind" or f == "eps_r" or "thermal" in f
                      or f.startswith("kappa")}
        materials[key] = {**values, **table}
    data["materials"] = materials
    return data


# --------------------------------------------------------------------------- device
def build_device(case: Case, base: Path, mesh=None):
    """Mesh, materials, doping and contacts of a validated case (physical checks here).

    ``mesh``: the :class:`~pvsim.mesh.Mesh` this case's [mesh]/[geometry] section builds, when
    the caller already has it (parameter sweeps reuse one mesh for many members).
    """
    from .device import Device
    from .doping import DopingProfile
    from .layout import ContactSpec
    from .materials import InterfaceSpec, MaterialSpec
    from .newton import NewtonOptions

    m = case.mesh
    region_material = {k: r.material for k, r in case.regions.items() if r.material}
    for layer in (m.layers or []) if m is not None else []:
        if layer.material:
            other = region_material.setdefault(layer.region, layer.material)
            if other != layer.material:
                raise CaseError(f"region '{layer.region}' gets material '{layer.material}' from "
                                f"[[mesh.layers]] and '{other}' elsewhere; give it once.")
    if mesh is None:
        mesh = _case_mesh(case, base)

    for name in case.regions:
        if name not in mesh.regions:
            raise CaseError(f"[regions.{name}]: the mesh has no region '{name}'; its regions are "
                            f"{sorted(mesh.regions)} (gmsh physical groups of the top dimension).")
    materials = {}
    for region in mesh.regions:
        mat = region_material.get(region)
        if mat is None:
            raise CaseError(f"region '{region}' has no material: add [regions.{region}] "
                            f"material = \"...\" (one of {sorted(case.materials)}).")
        if mat not in case.materials:
            raise CaseError(f"region '{region}': material '{mat}' is not defined; define "
                            f"[materials.{mat}], use one of {sorted(case.materials)} or a library "
                            "entry (`pvsim materials` lists them).")
        materials[region] = _material_spec(case.materials[mat], case.simulation.temperature_K,
                                           MaterialSpec)
    for name in case.contacts:
        if name not in mesh.boundaries:
            raise CaseError(f"[contacts.{name}]: the mesh has no boundary '{name}'; its boundary "
                            f"groups are {sorted(mesh.boundaries)}.")
    for name, r in case.regions.items():
        if not materials[name].is_semiconductor and (r.donors_cm3 or r.acceptors_cm3 or r.doping):
            raise CaseError(f"[regions.{name}] is an insulator ({region_material[name]}): doping "
                            "applies to semiconductor regions only.")
    for name, c in case.contacts.items():
        nodes = mesh.boundary_nodes(name)
        touches = {r for r, cells in mesh.regions.items() if np.isin(cells, nodes).any()}
        if c.type == "ohmic" and not any(materials[r].is_semiconductor for r in touches):
            raise CaseError(f"[contacts.{name}] is ohmic but touches only insulators {sorted(touches)}; "
                            "use type = \"work_function\" with work_function_eV for a gate.")
    doping = {}
    for name, r in case.regions.items():
        prof = [DopingProfile("uniform", r.donors_cm3, r.acceptors_cm3)] if (r.donors_cm3 or r.acceptors_cm3) else []
        for d in r.doping:
            prof.append(DopingProfile(d.type, d.donors_cm3, d.acceptors_cm3, d.axis,
                                      d.position_nm * 1e-9, d.side, d.center_nm * 1e-9,
                                      d.sigma_nm * 1e-9))
        doping[name] = prof
    contacts = tuple(ContactSpec(n, c.type, c.control, c.barrier_eV, c.s_n_cm_s, c.s_p_cm_s)
                     for n, c in case.contacts.items())
    interfaces = []
    for k, itf in enumerate(case.interfaces):
        for r in itf.regions + ([itf.organic_region] if itf.organic_region else []):
            if r not in mesh.regions:
                raise CaseError(f"[[interfaces]] #{k + 1}: the mesh has no region '{r}'; its regions "
                                f"are {sorted(mesh.regions)}.")
        if itf.organic_region and itf.organic_region not in itf.regions:
            raise CaseError(f"[[interfaces]] #{k + 1}: organic_region '{itf.organic_region}' is not "
                            f"one of its regions {itf.regions}.")
        fields = itf.model_dump()
        fields["regions"] = tuple(itf.regions)
        interfaces.append(InterfaceSpec(**fields))
    wf = {n: c.work_function_eV for n, c in case.contacts.items() if c.work_function_eV}
    heat = _heat_spec(case, mesh)
    s = case.solver
    try:
        return Device(mesh=mesh, materials=materials, contacts=contacts, doping=doping,
                      work_functions_eV=wf, temperature_K=case.simulation.temperature_K,
                      interfaces=tuple(interfaces), linear_solver=s.linear_solver, heat=heat,
                      newton=NewtonOptions(tol=s.tolerance, max_iter=s.max_iterations,
                                           max_step=s.max_step))
    except ValueError as exc:  # physical inconsistencies found while building the device
        raise CaseError(f"{exc}.".replace("..", ".")) from None


def _case_mesh(case, base):
    """The mesh a case describes: a [geometry] generator, [mesh] layers, or a mesh file."""
    from .geometry import Layer, layer_stack
    from .mesh import read_msh

    m = case.mesh
    if case.geometry is not None:
        from .geometry.registry import generate

        g = case.geometry
        try:
            return generate(g.generator, g.params, msh_path=base / g.save_msh if g.save_msh else None)
        except ValueError as exc:
            raise CaseError(f"[geometry]: {exc}") from None
    if m.layers is not None:
        return layer_stack(
            [Layer(x.region, x.thickness_nm * 1e-9,
                   x.spacing_nm * 1e-9 if x.spacing_nm else None,
                   x.min_spacing_nm * 1e-9 if x.min_spacing_nm else None) for x in m.layers],
            m.left_contact, m.right_contact)
    return read_msh(base / m.file, length_unit=m.length_unit, axisymmetric=m.axisymmetric)


def _heat_spec(case: Case, mesh):
    """The device's HeatSpec from the [heat] section (None: isothermal)."""
    from .device import HeatSpec, ThermalBoundary

    h = case.heat
    if h is None:
        return None
    for k, b in enumerate(h.boundaries):
        if b.name not in mesh.boundaries:
            raise CaseError(f"[[heat.boundaries]] #{k + 1}: the mesh has no boundary '{b.name}'; its "
                            f"boundary groups are {sorted(mesh.boundaries)}.")
    for r in h.sources_W_m3:
        if r not in mesh.regions:
            raise CaseError(f"[heat] sources_W_m3: the mesh has no region '{r}'; its regions are "
                            f"{sorted(mesh.regions)}.")
    return HeatSpec(boundaries=tuple(ThermalBoundary(b.name, b.type, b.temperature_K, b.h_W_m2K or 0.0)
                                     for b in h.boundaries),
                    escape_fraction=h.escape_fraction, sources_W_m3=dict(h.sources_W_m3))


def _material_spec(m: MaterialSection, T: float, cls):
    fields = m.model_dump(exclude={"intrinsic_density_cm3"})
    if m.kind == "semiconductor" and m.band_gap_eV is None:
        # ni = sqrt(Nc Nv) exp(-Eg / 2kT)  ->  Eg = kT ln(Nc Nv / ni^2)
        fields["band_gap_eV"] = thermal_voltage(T) * np.log(m.Nc_cm3 * m.Nv_cm3 / m.intrinsic_density_cm3**2)
    if fields["band_gap_eV"] is None:
        fields["band_gap_eV"] = 10.0  # insulators: unused
    return cls(**fields)


def sweep_targets(case: Case, device) -> list:
    """The bias points of the case's [sweep] section."""
    from .sweep import BiasPoint

    sw = case.sweep
    if sw is None:
        return []
    names = device.contact_names
    if sw.contact not in names:
        raise CaseError(f"[sweep] contact = '{sw.contact}' is not a contact; contacts are {names}.")
    k = names.index(sw.contact)
    ctl = device.contacts[k].control
    volts = sw.voltage_list()
    zeros = np.zeros(len(names))
    if volts is not None:
        if ctl != "voltage":
            raise CaseError(f"[sweep] gives voltages but contact '{sw.contact}' is current-controlled; "
                            "give a currents list or set control = \"voltage\".")
        return [BiasPoint(np.where(np.arange(len(names)) == k, v, 0.0), zeros.copy()) for v in volts]
    dim_eff = device.scales.dim_eff
    key = {1: "currents_A_cm2", 2: "currents_A_m", 3: "currents_A"}[dim_eff]
    values = getattr(sw, key)
    if values is None:
        kind = "axisymmetric" if device.mesh.axisymmetric else f"{dim_eff}D"
        raise CaseError(f"[sweep]: current control of this {kind} device takes '{key}' "
                        f"(currents in {key.split('_', 1)[1].replace('_', '/')}).")
    if ctl != "current":
        raise CaseError(f"[sweep] gives currents but contact '{sw.contact}' has control = \"voltage\"; "
                        "set control = \"current\" in its [contacts] table.")
    scale = 1e4 if key == "currents_A_cm2" else 1.0
    return [BiasPoint(zeros.copy(), np.where(np.arange(len(names)) == k, i * scale, 0.0))
            for i in values]

