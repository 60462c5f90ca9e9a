"""Property-based fuzzing of case-file validation (hypothesis): malformed case files, dicts and
plain garbage each give a clean :class:`~pvsim.case.CaseError` whose message names the field
that is wrong; never another exception type, never a hang. Validation only: nothing is solved.

Each run generates fresh cases (no example database): 500 malformed TOML case files, 200
malformed dicts (types TOML cannot write, such as None) and 200 garbage texts.
"""

import math
import re
import tomllib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pvsim.case import _KNOWN_KEYS, CaseError, load_case

BASE_TEXT = """
[simulation]
name = "fuzz base"
temperature_K = 300.0

[mesh]
left_contact = "anode"
right_contact = "cathode"

[[mesh.layers]]
region = "p_side"
material = "silicon"
thickness_nm = 200
spacing_nm = 20

[[mesh.layers]]
region = "n_side"
material = "silicon"
thickness_nm = 150
spacing_nm = 10

[materials.silicon]
eps_r = 11.1
electron_affinity_eV = 4.05
intrinsic_density_cm3 = 1e10
mu_n_cm2_Vs = 400
mu_p_cm2_Vs = 200
tau_n_s = 1e-7
tau_p_s = 1e-7

[regions.p_side]
acceptors_cm3 = 1e17

[[regions.n_side.doping]]
type = "gaussian"
donors_cm3 = 1e18
center_nm = 300
sigma_nm = 20

[contacts.anode]
type = "work_function"
work_function_eV = 5.0

[contacts.cathode]
type = "ohmic"

[[interfaces]]
regions = ["p_side", "n_side"]
model = "thermionic"
velocity_cm_s = 1e5

[sweep]
contact = "anode"
voltages_V = [0.0, 0.2, 0.4]

[solver]
tolerance = 1e-9
max_iterations = 40

[heat]
escape_fraction = 0.2
[[heat.boundaries]]
name = "cathode"
type = "fixed"
temperature_K = 300
"""
BASE = tomllib.loads(BASE_TEXT)

# keys whose value must be > 0 (or >= 0): a negative number is always wrong
POSITIVE = {"temperature_K", "thickness_nm", "spacing_nm", "eps_r", "intrinsic_density_cm3", "mu_n_cm2_Vs",
            "mu_p_cm2_Vs", "tau_n_s", "tau_p_s", "acceptors_cm3", "donors_cm3", "sigma_nm",
            "work_function_eV", "velocity_cm_s", "tolerance", "max_iterations", "escape_fraction"}
# keys that cannot be left out (alone, or as one of a required pair)
REQUIRED = [("mesh", "layers", 0, "region"), ("mesh", "layers", 1, "thickness_nm"),
            ("materials", "silicon", "eps_r"), ("materials", "silicon", "intrinsic_density_cm3"),
            ("contacts",), ("mesh",), ("mesh", "layers"), ("sweep", "contact"),
            ("sweep", "voltages_V"), ("contacts", "anode", "work_function_eV"), ("interfaces", 0, "regions"),
            ("heat", "boundaries"), ("heat", "boundaries", 0, "name")]
# tables that take a fixed set of keys (name-keyed tables such as [materials] do not)
TABLES = [("simulation",), ("mesh",), ("mesh", "layers", 0), ("materials", "silicon"), ("regions", "p_side"),
          ("regions", "n_side", "doping", 0), ("contacts", "anode"), ("interfaces", 0), ("sweep",),
          ("solver",), ("heat",), ("heat", "boundaries", 0)]


def _leaves(data, prefix=()):
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _leaves(v, prefix + (k,))
    elif isinstance(data, list) and data and all(isinstance(v, dict) for v in data):
        for i, v in enumerate(data):
            yield from _leaves(v, prefix + (i,))
    else:
        yield prefix, data


LEAVES = list(_leaves(BASE))
NUMERIC = [p for p, v in LEAVES if isinstance(v, (int, float)) and not isinstance(v, bool)]
TEXT = [p for p, v in LEAVES if isinstance(v, str)]
LISTS = [p for p, v in LEAVES if isinstance(v, list)]


def _dotted(path) -> str:
    return ".".join(str(p) for p in path)


def _copy_with(path, value=None, delete=False) -> dict:
    import copy

    data = copy.deepcopy(BASE)
    node = data
    for p in path[:-1]:
        node = node[p]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


def _not_a_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return True
    return False


words = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=12)
junk_text = words.filter(_not_a_number)
tables = st.dictionaries(st.sampled_from(["a", "b", "x_nm"]), st.integers(), min_size=0, max_size=2)


@st.composite
def malformed(draw, toml_only=True):
    """(case dict, path of the bad field, the word its message must contain)."""
    kind = draw(st.sampled_from(["type", "number", "negative", "missing", "unknown", "list_item",
                                 "table_type"]))
    if kind == "type":  # a value of the wrong type
        if draw(st.booleans()):
            path = draw(st.sampled_from(NUMERIC))
            value = draw(st.one_of(junk_text, st.lists(st.integers(), max_size=2), tables))
        else:
            path = draw(st.sampled_from(TEXT))
            value = draw(st.one_of(st.integers(), st.floats(allow_nan=False), st.lists(words, max_size=2),
                                   tables))
        return _copy_with(path, value), path, _dotted(path)
    if kind == "number":  # NaN or infinite
        path = draw(st.sampled_from(NUMERIC))
        values = [math.nan, -math.inf] + ([] if path[-1].startswith("tau_") else [math.inf])
        return _copy_with(path, draw(st.sampled_from(values))), path, _dotted(path)
    if kind == "negative":
        path = draw(st.sampled_from([p for p in NUMERIC if p[-1] in POSITIVE]))
        value = -draw(st.floats(min_value=1e-6, max_value=1e30))
        return _copy_with(path, value), path, _dotted(path)
    if kind == "missing":
        path = draw(st.sampled_from(REQUIRED))
        return _copy_with(path, delete=True), path, str(path[-1])
    if kind == "unknown":  # a key that is no field of its table
        table = draw(st.sampled_from(TABLES))
        key = draw(st.from_regex(r"[a-z][a-z0-9_]{0,14}", fullmatch=True)
                   .filter(lambda k: k not in _KNOWN_KEYS))
        value = draw(st.one_of(st.integers(), words, st.booleans()))
        return _copy_with(table + (key,), value), table + (key,), key
    if kind == "list_item":  # a bad entry inside an array
        path = draw(st.sampled_from(LISTS))
        bad = draw(st.one_of(tables, st.lists(st.integers(), min_size=1, max_size=2),
                             st.just(math.nan) if path[-1] == "voltages_V" else st.integers()))
        items = list(dict(LEAVES)[path])
        items.insert(draw(st.integers(0, len(items))), bad)
        return _copy_with(path, items), path, _dotted(path)
    # a table replaced by a value that is not a table
    table = draw(st.sampled_from(TABLES + [("regions",), ("contacts",), ("materials",)]))
    value = draw(st.one_of(st.integers(), words, st.lists(st.integers(), max_size=2)))
    return _copy_with(table, value), table, _dotted(table)


def _toml_string(s: str) -> str:
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def to_toml(value) -> str:
    """TOML text of plain data: every table inline (a nested inline table is still TOML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(to_toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{_toml_string(str(k))} = {to_toml(v)}" for k, v in value.items()) + "}"


def toml_file(data: dict) -> str:
    return "\n".join(f"{_toml_string(str(k))} = {to_toml(v)}" for k, v in data.items()) + "\n"


FUZZ = settings(max_examples=500, deadline=2000, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def test_base_case_is_valid_and_the_writer_round_trips(fuzz_dir):
    load_case(BASE, ".")
    assert tomllib.loads(toml_file(BASE)) == BASE
    path = fuzz_dir / "base.toml"
    path.write_text(toml_file(BASE))
    load_case(path)


def _check(exc: CaseError, path, word):
    text = str(exc)
    assert word in text, f"message does not name '{word}' (changed {_dotted(path)}): {text}"
    assert "Traceback" not in text and len(text) < 2000


@FUZZ
@given(malformed())
def test_malformed_case_files_name_the_field(fuzz_dir, case):
    data, path, word = case
    file = fuzz_dir / "case.toml"
    file.write_text(toml_file(data))
    with pytest.raises(CaseError) as info:
        load_case(file)
    _check(info.value, path, word)


@settings(FUZZ, max_examples=200)
@given(malformed(), st.sampled_from([(), object()]))
def test_malformed_dicts_name_the_field(case, odd):
    """The Python entry point takes dicts, which can hold what TOML cannot (None, tuples...)."""
    data, path, word = case
    with pytest.raises(CaseError) as info:
        load_case(data, ".")
    _check(info.value, path, word)
    if path not in REQUIRED and path not in LISTS:  # the same field, an odd Python value
        data = _copy_with(path, odd)
        with pytest.raises(CaseError) as info:
            load_case(data, ".")
        assert _dotted(path) in str(info.value)


@settings(FUZZ, max_examples=200)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
                 st.lists(st.sampled_from(BASE_TEXT.splitlines()), max_size=30).map("\n".join)))
def test_garbage_text_is_a_clean_error(fuzz_dir, text):
    """Random text or shuffled lines of a real case: a TOML error with its line and column, or a
    validation error naming a key; nothing else."""
    file = fuzz_dir / "garbage.toml"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(CaseError) as info:
        load_case(file)
    msg = str(info.value)
    located = "not valid TOML" in msg and re.search(r"line \d+|end of document", msg)
    assert located or "'" in msg or "[" in msg, msg
