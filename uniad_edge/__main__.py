"""`python -m uniad_edge ...` runs the CLI where the `uniad-edge` script is not on PATH (a
checkout on PYTHONPATH, a container that never ran pip install)."""

from .cli import main

main()
