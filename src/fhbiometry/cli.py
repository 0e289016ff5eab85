"""The project's tools, one subcommand each; run them from the repository root.

`fhbiometry <command>` and `python -m fhbiometry <command>` are the same. Each subcommand is a
module of fhbiometry.tools.
"""
from __future__ import annotations

import argparse
import sys

from fhbiometry.tools import (ablation, accuracy_report, bench_predict, bench_train, check_reproduction, ensemble, exp_config,
                              export, intervals_table,
                              label_agreement, near_duplicates, paired_compare, predict, reject_probe, reproduction_spread,
                              results_table, size_bias)

SUBCOMMANDS = {
    "check-reproduction": check_reproduction,
    "reproduction-spread": reproduction_spread,
    "exp-config": exp_config,
    "ablation": ablation,
    "results-table": results_table,
    "accuracy-report": accuracy_report,
    "paired-compare": paired_compare,
    "ensemble": ensemble,
    "size-bias": size_bias,
    "intervals-table": intervals_table,
    "label-agreement": label_agreement,
    "near-duplicates": near_duplicates,
    "predict": predict,
    "reject-probe": reject_probe,
    "export": export,
    "bench-predict": bench_predict,
    "bench-train": bench_train,
}
PASSTHROUGH = ("exp-config",)  # subcommands that take `-- ARGS...` (handed on to another program)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fhbiometry", description=__doc__.strip().splitlines()[0],
        epilog="Run `fhbiometry <command> --help` for what a command does and an example.")
    commands = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    for name, module in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=module.SUMMARY, description=module.__doc__.strip(),
                                  epilog=module.EXAMPLES,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def split_passthrough(argv: list[str]) -> tuple[list[str], list[str]]:
    """The arguments before the first `--`, and those after it."""
    if "--" not in argv:
        return argv, []
    i = argv.index("--")
    return argv[:i], argv[i + 1:]


def main(argv: list[str] | None = None) -> int:
    argv, passthrough = split_passthrough(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    args = parser.parse_args(argv)
    if passthrough and args.command not in PASSTHROUGH:
        parser.error(f"{args.command} takes no arguments after `--` (got {passthrough})")
    args.passthrough = passthrough
    return args.run(args)
