"""Run a named configuration (a partial params file under configs/) as a DVC experiment.

    python scripts/exp_config.py configs/hc18.yaml --name hc18            # dvc exp run -n hc18 -S ...
    python scripts/exp_config.py configs/hc18.yaml --print                # only print the command
    python scripts/exp_config.py configs/hc18.yaml --name x -- qc         # extra args go to dvc exp run

Every leaf of the configuration becomes one `-S key=value` override, so params.yaml stays the
one place for defaults and the configuration lists only what differs.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

import yaml


def flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


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
    """params updated by the configuration, key by key (used by tests and for a quick look)."""
    out = json.loads(json.dumps(params))
    for key, value in flatten(config).items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            if part not in node or not isinstance(node[part], dict):
                raise KeyError(f"configuration key '{key}' does not exist in params.yaml")
            node = node[part]
        if leaf not in node:
            raise KeyError(f"configuration key '{key}' does not exist in params.yaml")
        node[leaf] = value
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("--name", help="experiment name (dvc exp run -n)")
    parser.add_argument("--print", action="store_true", help="print the command instead of running it")
    argv = sys.argv[1:]
    rest = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    args = parser.parse_args(argv)
    params = yaml.safe_load(Path("params.yaml").read_text())
    apply(params, yaml.safe_load(Path(args.config).read_text()) or {})  # every key must exist
    cmd = ["dvc", "exp", "run"] + (["-n", args.name] if args.name else [])
    for item in overrides(args.config):
        cmd += ["-S", item]
    cmd += rest
    print(shlex.join(cmd), flush=True)
    if args.print:
        return 0
    return subprocess.run(cmd).returncode


if __name__ == "__main__":
    sys.exit(main())
