"""The tools behind the `fhbiometry` command (fhbiometry.cli): one module per subcommand.

Each module has a docstring (its help text), ``EXAMPLES`` (shown under ``--help``),
``add_arguments(parser)`` and ``run(args) -> int``, and keeps its logic in small functions
that the tests import.

Never imports: stages (the library's top layer: nothing in the library imports it).
"""
