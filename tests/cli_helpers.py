"""Run the real console entry point in-process, the way a user's shell would, and start and end
the child processes a test signals."""

from __future__ import annotations

import signal
import subprocess
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


def default_signals() -> None:
    """`preexec_fn` for a child the test will interrupt: SIGINT back to its default, so Python
    installs its KeyboardInterrupt handler even when pytest runs from a background job of a
    non-interactive shell (started with SIGINT ignored, which a child would inherit)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def end(proc: subprocess.Popen) -> None:
    """Always end a child a test started: kill it if it is still running, then reap it."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()
