"""B5 footprint: the function's zip, the dependencies layer unzipped, and the peak RSS of a warm instance.

* Function: every ``.py`` under ``handler/`` deflated into a zip, as ``sam build`` packages the CodeUri.
* Layer: ``layers/dependencies/requirements.txt`` installed for the Lambda platform (arm64, CPython 3.14) into a
  temporary directory, cleaned as the layer's Makefile does (no ``bin/``, no ``__pycache__``, no RECORD), then
  measured file by file. Without network, the same distributions are copied from this interpreter's
  site-packages (all of them are pure Python, so the files are the same) and the line says so.
* RSS: the peak resident set (``VmHWM``) of a warm instance after 2,000 deletes in batches of 10.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

from bench.b2_warm_overhead import delivered_batches
from bench.harness import HANDLER_DIR, ROOT, BenchServices, Result, median, run_child

# The function's own code, deflated: it grows with what the service does (it passed 100 KB with the trust
# boundaries' checks). Lambda fetches it once per cold start; at this size that is noise beside the imports (B1).
FUNCTION_LIMIT = 150_000
LAYER_LIMIT = 5_000_000
RSS_LIMIT_MIB = 100
REQUIREMENTS = ROOT / "layers" / "dependencies" / "requirements.txt"
LAMBDA_PIP_ARGS = (
    "--platform",
    "manylinux2014_aarch64",
    "--implementation",
    "cp",
    "--python-version",
    "3.14",
    "--only-binary=:all:",
    "--no-compile",
)


def function_zip_bytes(source: Path = HANDLER_DIR) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(source.rglob("*.py")):
            archive.write(path, path.relative_to(source))
    return len(buffer.getvalue())


def tree_bytes(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())


def clean_like_the_layer_makefile(target: Path) -> None:
    for cache in list(target.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(target / "bin", ignore_errors=True)
    for name in ("RECORD", "INSTALLER", "REQUESTED"):
        for path in target.glob(f"*.dist-info/{name}"):
            path.unlink()


def build_layer(target: Path) -> str:
    """Install the layer into ``target``; returns how ("pip, Lambda platform" or "copied from site-packages")."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        *LAMBDA_PIP_ARGS,
        "--target",
        str(target),
        "-r",
        str(REQUIREMENTS),
    ]
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=300)
        how = "pip install for manylinux2014_aarch64 / cp3.14"
    except (subprocess.SubprocessError, OSError):
        shutil.rmtree(target, ignore_errors=True)
        copy_installed_distributions(target)
        how = "copied from site-packages (pip install failed: offline?)"
    clean_like_the_layer_makefile(target)
    return how


def copy_installed_distributions(target: Path) -> None:
    pending = [
        line.split("==")[0].strip()
        for line in REQUIREMENTS.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name.lower() in seen:
            continue
        seen.add(name.lower())
        distribution = metadata.distribution(name)
        for file in distribution.files or ():
            source = Path(str(distribution.locate_file(file)))
            if "__pycache__" in file.parts or not source.is_file():
                continue
            destination = target / file
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)
        for requirement in distribution.requires or ():
            if "extra ==" not in requirement:
                pending.append(
                    requirement.split(";")[0]
                    .split("[")[0]
                    .split("<")[0]
                    .split(">")[0]
                    .split("=")[0]
                    .split("!")[0]
                    .split("~")[0]
                    .strip()
                )


def run(services: BenchServices, runs: int) -> list[Result]:
    function_bytes = function_zip_bytes()
    with tempfile.TemporaryDirectory(prefix="layer-") as directory:
        layer_dir = Path(directory) / "python"
        how = build_layer(layer_dir)
        layer_bytes = tree_bytes(layer_dir)
    rss = []
    for _ in range(max(1, runs // 3)):
        ids = services.new_ids(2001)
        events = delivered_batches(services, ids, 10)
        child = run_child("warm_ours.py", services.queue_env(), ids=ids, events=events, consumed=services.consumed)
        rss.append(child.report["rss_kb"])
    rss_mib = median(rss) / 1024
    return [
        Result(
            "B5",
            "function zip (handler/**/*.py, deflated)",
            function_bytes,
            None,
            None,
            f"< {FUNCTION_LIMIT // 1000} KB",
            function_bytes < FUNCTION_LIMIT,
            unit="B",
        ),
        Result(
            "B5",
            "layer unzipped, without boto3",
            layer_bytes,
            None,
            None,
            f"< {LAYER_LIMIT // 1_000_000} MB",
            layer_bytes < LAYER_LIMIT,
            unit="B",
            detail={"how": how},
        ),
        Result(
            "B5",
            "peak RSS (VmHWM), warm, after 2,000 deletes",
            rss_mib,
            None,
            None,
            "< 100 MiB",
            rss_mib < RSS_LIMIT_MIB,
            unit="MiB",
            detail={"runs_kb": rss},
        ),
    ]
