"""Run the real console entry point in-process, the way a user's shell would."""

from __future__ import annotations

import sys

from uniad_edge.cli import main


def run_main(*args: object) -> int:
    """`uniad-edge ARGS` through main(), which turns UniadError into exit code 2."""
    old = sys.argv
    sys.argv = ["uniad-edge", *map(str, args)]
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        sys.argv = old
    return 0
