"""Run a named configuration (a partial params file under configs/) as a DVC experiment.

Every leaf of the configuration becomes one `-S key=value` override of `dvc exp run`, so
params.yaml stays the one place for defaults and the configuration lists only what differs.
Every key of the configuration must be a parameter (the schema); a key that params.yaml omits (a
model's own ``augment``) is added (`-S +key=value`). `-S` takes Hydra's override grammar: a value
that the grammar would read as something else (spaces, brackets or parentheses, a comma that
would make a sweep, a string that looks like a number, ``true`` or ``null``) is quoted, and every
override is parsed back with Hydra's own parser (installed with DVC) before anything runs.
Arguments after `--` go to `dvc exp run` (e.g. a stage name: ``-- qc``).
"""
from __future__ import annotations

import argparse
import math
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from fhbiometry.config.schema import deep_merge, validate_params
from fhbiometry.tools.common import flatten

SUMMARY = "run a configs/*.yaml as a DVC experiment"  # one line in `fhbiometry --help`
EXAMPLES = """\
Examples:
  fhbiometry exp-config configs/hc18.yaml --name hc18         # dvc exp run -n hc18 -S ...
  fhbiometry exp-config configs/hc18.yaml --print             # only print the command
  fhbiometry exp-config configs/hc18.yaml --name hc18 -- qc   # extra args go to dvc exp run (a stage)
"""
PLAIN = re.compile(r"[A-Za-z0-9_./@-]+")  # strings left unquoted when they read back as themselves
LADDER_KEYS = {"base", "rows"}  # an ablation ladder (configs/*_ablation.yaml), not a configuration


def parse_override(line: str):
    """Hydra's reading of one override, as `dvc exp run -S` reads it."""
    from hydra.core.override_parser.overrides_parser import OverridesParser  # lazy: hydra only when an override is parsed; kept out of `fhbiometry --help`

    return OverridesParser.create().parse_override(line)


def same(a, b) -> bool:
    """Equal values of the same types, recursively (``1 == True`` is not the same here)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


def quote(text: str) -> str:
    """``text`` as a single-quoted Hydra string: backslashes are doubled where they precede a
    quote or the closing quote (elsewhere Hydra keeps them literally), quotes are escaped."""
    body = re.sub(r"(\\*)('|$)", lambda m: m.group(1) * 2 + ("\\'" if m.group(2) else ""), text)
    return f"'{body}'"


def reads_back(text: str, value) -> bool:
    try:
        parsed = parse_override(f"k={text}")
    except Exception:  # noqa: BLE001 - Hydra raises its own exception types for grammar errors
        return False
    return parsed.value_type.name == "ELEMENT" and same(parsed.value(), value)


def element(value) -> str:
    """One value in Hydra's grammar (unchecked: ``override_value`` checks the whole value)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(element(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{element(k)}: {element(v)}" for k, v in value.items()) + "}"
    text = str(value)
    return text if PLAIN.fullmatch(text) and reads_back(text, text) else quote(text)


def strings(value) -> list[str]:
    """Every string in a value (keys of mappings too), recursively."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in strings(k) + strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def floats(value) -> list[float]:
    """Every float in a value, recursively."""
    if isinstance(value, float):
        return [value]
    if isinstance(value, (dict, list)):
        return [f for v in (value.values() if isinstance(value, dict) else value) for f in floats(v)]
    return []


def override_value(value, key: str = "value") -> str:
    """``value`` as `dvc exp run -S` (Hydra's override grammar) must receive it, checked by parsing
    it back with Hydra's parser; a value it cannot carry stops with its key."""
    for text in strings(value):
        if "${" in text:
            raise ValueError(f"{key}: {value!r}: `${{` would be read as an interpolation by "
                             "`dvc exp run -S`; set this key in params.yaml instead")
    for number in floats(value):
        if "e" in repr(number) and "." not in repr(number):
            raise ValueError(f"{key}: {value!r}: `dvc exp run` writes the number {number!r} as "
                             f"`{number!r}`, which params.yaml's YAML reader takes for text; set "
                             "this key in params.yaml instead")
    text = element(value)
    if not reads_back(text, value):
        raise ValueError(f"{key}: {value!r} has no form in Hydra's override grammar that reads "
                         f"back as itself (tried {text}); set this key in params.yaml instead")
    return text


def is_ladder(config: dict) -> bool:
    return LADDER_KEYS <= set(config)


def load_config(config_path) -> dict:
    config = yaml.safe_load(Path(config_path).read_text()) or {}
    if is_ladder(config):
        raise ValueError(f"{config_path} is an ablation ladder (keys base, rows), not a configuration: "
                         f"run it with `fhbiometry ablation {config_path}`, or its base "
                         f"`fhbiometry exp-config {config.get('base')}`")
    return config


def config_overrides(config: dict, params: dict | None = None) -> list[str]:
    """``key=value`` for every leaf of a configuration; ``+key=value`` where ``params`` (the
    params.yaml it applies to) has no such key, as Hydra requires for a new key."""
    known = flatten(params) if params is not None else {}
    out = []
    for key, value in flatten(config).items():
        new = params is not None and key not in known and not any(k.startswith(key + ".") for k in known)
        out.append(f"{'+' if new else ''}{key}={override_value(value, key)}")
    return out


def overrides(config_path, params: dict | None = None) -> list[str]:
    """The overrides of the configuration file ``config_path`` (``config_overrides``)."""
    return config_overrides(load_config(config_path), params)


def apply(params: dict, config: dict) -> dict:
    """params updated by the configuration, key by key (mappings merged, anything else replaced);
    the result must validate against the schema, so a key that is not a parameter (a typo) stops
    with its path and a suggestion, while keys the schema allows but params.yaml omits (a model's
    own ``augment`` override, say) are accepted."""
    out = deep_merge(params, config)
    validate_params(out, source="params.yaml + configuration")
    return out


def command(config_path, name: str | None, extra: list[str]) -> list[str]:
    """The `dvc exp run` command line for a configuration (checked against params.yaml)."""
    params = yaml.safe_load(Path("params.yaml").read_text())
    apply(params, load_config(config_path))  # every key must be a parameter
    cmd = ["dvc", "exp", "run"] + (["-n", name] if name else [])
    for item in overrides(config_path, params):
        cmd += ["-S", item]
    return cmd + list(extra)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="a partial params file, e.g. configs/hc18.yaml; arguments after "
                                       "`--` go to dvc exp run (e.g. `-- qc`: only up to that stage)")
    parser.add_argument("--name", help="experiment name (dvc exp run -n)")
    parser.add_argument("--print", action="store_true", help="print the command instead of running it")


def run(args: argparse.Namespace) -> int:
    try:
        cmd = command(args.config, args.name, args.passthrough)
    except ValueError as err:
        print(f"exp-config: {err}", file=sys.stderr)
        return 2
    print(shlex.join(cmd), flush=True)
    if args.print:
        return 0
    return subprocess.run(cmd).returncode
