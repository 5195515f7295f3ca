"""docs/local-stack.md's walk-through, run as written: ``make run ARGS=--serve`` in its own process (the module the
Makefile runs), then, as a second terminal would, the ``export`` line it printed, the signing function from
docs/tenancy.md (which the walk-through says to paste), and every ``sh`` block of the walk-through's section, in
order and unchanged, with the installed ``extend-deleter`` console script on the PATH and a directory outside the
repository as the working directory.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not all(shutil.which(tool) for tool in ("bash", "curl", "openssl", "awk", "sed")),
        reason="the walk-through uses bash, curl, openssl, awk and sed",
    ),
]

REPO_ROOT = Path(__file__).resolve().parents[2]
WALKTHROUGH = "## Walk-through: a first tenant, a signed DELETE, its status"
READY = "Outcomes as they happen:"


def walkthrough_blocks() -> list[str]:
    """The ``sh`` blocks of the walk-through's section of docs/local-stack.md, in order."""
    text = (REPO_ROOT / "docs" / "local-stack.md").read_text(encoding="utf-8")
    section = text[text.index(WALKTHROUGH) :]
    following = section.find("\n## ", len(WALKTHROUGH))
    section = section if following < 0 else section[:following]
    return re.findall(r"```sh\n(.*?)```", section, re.DOTALL)


def signing_function() -> str:
    """``sign_request``, as docs/tenancy.md gives it (the walk-through says to paste it)."""
    text = (REPO_ROOT / "docs" / "tenancy.md").read_text(encoding="utf-8")
    [function] = [block for block in re.findall(r"```sh\n(.*?)```", text, re.DOTALL) if block.startswith("# sign")]
    return function


@dataclass
class Served:
    """``make run ARGS=--serve`` in its own process, and every line it has printed so far."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    _arrivals: queue.Queue[str | None] = field(default_factory=queue.Queue)

    def read(self, stream: IO[str]) -> None:
        for line in stream:
            self._arrivals.put(line.rstrip("\n"))
        self._arrivals.put(None)

    def wait_for(self, text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not any(text in line for line in self.lines):
            try:
                line = self._arrivals.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"make run ARGS=--serve did not print {text!r}:\n" + self.output) from None
            if line is None:
                raise AssertionError(f"make run ARGS=--serve ended before {text!r}:\n" + self.output)
            self.lines.append(line)

    def drain(self) -> None:
        while True:
            try:
                line = self._arrivals.get_nowait()
            except queue.Empty:
                return
            if line is not None:
                self.lines.append(line)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.demo", "--serve"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    up = Served(process)
    threading.Thread(target=up.read, args=(process.stdout,), daemon=True).start()
    try:
        up.wait_for(READY, timeout_s=240)
        yield up
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C, as the doc says: the stack shuts down
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def exported(served: Served) -> str:
    [line] = [line.strip() for line in served.lines if line.strip().startswith("export AWS_ENDPOINT_URL=")]
    return line


def bash(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # The venv's bin first, as `source .venv/bin/activate` puts it: the installed console script is what runs.
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=180, check=False
    )


def test_the_documented_walkthrough_runs_as_written(served: Served, tmp_path: Path) -> None:
    # Given the walk-through's blocks, after the export line make run printed and the signing function
    blocks = walkthrough_blocks()
    assert len(blocks) >= 4, "the walk-through lost its sh blocks"
    script = "\n".join(["set -euo pipefail", exported(served), signing_function(), *blocks])

    # When a second terminal runs them
    result = bash(script, tmp_path)

    # Then every command succeeded
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    lines = result.stdout.splitlines()
    # the first tenant's signed DELETE deleted its run, and named a deletion request
    [answer] = [json.loads(line) for line in lines if line.startswith('{"id"')]
    assert (answer["parserRunId"], answer["status"]) == ("parser_run_newco_1", "deleted")
    request_id = answer["deletionRequestId"]
    # whose status, read with a signed GET, is completed with the run deleted
    [status] = [json.loads(line) for line in lines if line.startswith('{"deletionRequestId"')]
    assert (status["deletionRequestId"], status["status"]) == (request_id, "completed")
    assert status["counts"]["deleted"] == 1
    # the operator's receipts show it, the smoke test passed, and the tenant was removed
    receipts = [json.loads(line) for line in lines if line.startswith("{") and '"outcome"' in line]
    assert any(r.get("parserRunId") == "parser_run_newco_1" and r.get("outcome") == "deleted" for r in receipts)
    assert "smoke test passed" in lines
    assert "removed tenant newco" in lines
    # and the files holding the tenant's secrets are gone
    assert sorted(path.name for path in tmp_path.iterdir()) == []
    # and the stack's own output saw the API function delete newco's run
    served.drain()
    assert re.search(r"\[api\] newco\s+deleted\s+parser_run_newco_1", served.output), served.output
    # and the registry holds the demo's two tenants again, without newco
    listed = bash(f'{exported(served)}\nextend-deleter --stack-name "$STACK" tenants list', tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert sorted(line.split()[0] for line in listed.stdout.splitlines() if line.strip()) == ["acme", "globex"]
