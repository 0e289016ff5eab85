"""Run a named configuration (a partial params file under configs/) as a DVC experiment.

Every leaf of the configuration becomes one `-S key=value` override of `dvc exp run`, so
params.yaml stays the one place for defaults and the configuration lists only what differs.
Every key of the configuration must exist in params.yaml. Arguments after `--` go to
`dvc exp run` (e.g. a stage name).
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
from pathlib import Path

import yaml

from fhbiometry.tools.common import flatten

SUMMARY = "run a configs/*.yaml as a DVC experiment"  # one line in `fhbiometry --help`
EXAMPLES = """\
Examples:
  fhbiometry exp-config configs/hc18.yaml --name hc18         # dvc exp run -n hc18 -S ...
  fhbiometry exp-config configs/hc18.yaml --print             # only print the command
  fhbiometry exp-config configs/hc18.yaml --name x -- qc      # extra args go to dvc exp run
"""


def override_value(value) -> str:
    """A value in the override grammar `dvc exp run -S` accepts (Hydra's)."""
    if value == "":
        return "''"
    if isinstance(value, (list, dict, bool)) or value is None:
        return json.dumps(value).replace('"', "'")
    return str(value)


def overrides(config_path) -> list[str]:
    config = yaml.safe_load(Path(config_path).read_text()) or {}
    return [f"{key}={override_value(value)}" for key, value in flatten(config).items()]


def apply(params: dict, config: dict) -> dict:
    """params updated by the configuration, key by key (mappings merged, anything else replaced);
    the result must validate against the schema, so a key that is not a parameter (a typo) stops
    with its path and a suggestion, while keys the schema allows but params.yaml omits (a model's
    own ``augment`` override, say) are accepted."""
    from fhbiometry.config.schema import deep_merge, validate_params

    out = deep_merge(params, config)
    validate_params(out, source="params.yaml + configuration")
    return out


def command(config_path, name: str | None, extra: list[str]) -> list[str]:
    """The `dvc exp run` command line for a configuration (checked against params.yaml)."""
    params = yaml.safe_load(Path("params.yaml").read_text())
    apply(params, yaml.safe_load(Path(config_path).read_text()) or {})  # every key must exist
    cmd = ["dvc", "exp", "run"] + (["-n", name] if name else [])
    for item in overrides(config_path):
        cmd += ["-S", item]
    return cmd + list(extra)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="a partial params file, e.g. configs/hc18.yaml")
    parser.add_argument("--name", help="experiment name (dvc exp run -n)")
    parser.add_argument("--print", action="store_true", help="print the command instead of running it")


def run(args: argparse.Namespace) -> int:
    cmd = command(args.config, args.name, args.passthrough)
    print(shlex.join(cmd), flush=True)
    if args.print:
        return 0
    return subprocess.run(cmd).returncode
