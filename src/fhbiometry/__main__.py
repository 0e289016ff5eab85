"""`python -m fhbiometry`: the same as the `fhbiometry` command (fhbiometry.cli)."""
from fhbiometry.cli import main

raise SystemExit(main())
