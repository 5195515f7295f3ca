"""pip-audit on the pinned runtime requirements, with an explicit verdict for what it could not audit.

``make security`` runs this. pip-audit resolves the pins (and what they pull in) and asks PyPI's advisory data
about each exact version. Where that per-version lookup is unavailable (some networks reach PyPI's index and
project pages but not the per-release JSON), a pin that *is* the project's latest release is checked against
the advisories PyPI lists for that latest release instead. Anything still unchecked is reported by name as
NOT AUDITED: a warning by default, a failure with ``SECURITY_AUDIT_STRICT=1`` (for a CI with full access).

Exit status: 1 if any known vulnerability is found (or, strict, anything is left unaudited), else 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from typing import Any

from pip._internal.models.index import PyPI  # the index pip itself uses; no host is spelled out here

TIMEOUT_S = 30


def run_pip_audit(requirements: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "pip_audit", "--requirement", requirements, "--format", "json",
               "--progress-spinner", "off", "--vulnerability-service", "pypi", "--timeout", str(TIMEOUT_S)]  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if not completed.stdout.strip():
        sys.stderr.write(completed.stderr)
        raise SystemExit(f"pip-audit produced no report (exit {completed.returncode}); see above")
    report: dict[str, Any] = json.loads(completed.stdout)
    return report


def project_document(name: str) -> dict[str, Any] | None:
    url = f"{PyPI.pypi_url}/{name}/json"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            document: dict[str, Any] = json.load(response)
    except (OSError, ValueError):
        return None
    return document


def fallback_audit(name: str, version: str) -> tuple[str, list[str]]:
    """('audited', vulnerability ids) when the pin is the latest release, else ('not audited', [])."""
    document = project_document(name)
    if document is None:
        return "not audited: PyPI project data unreachable", []
    latest = document.get("info", {}).get("version")
    if latest != version:
        return f"not audited: per-release advisories unreachable and {version} is not the latest ({latest})", []
    vulnerabilities = [v["id"] for v in document.get("vulnerabilities") or [] if not v.get("withdrawn")]
    return "audited (latest release's advisories)", vulnerabilities


def main(requirements: str) -> int:
    report = run_pip_audit(requirements)
    rows: list[tuple[str, str, str, str]] = []
    vulnerable = unaudited = 0
    for dependency in report.get("dependencies", []):
        name = dependency["name"]
        if "skip_reason" not in dependency:
            ids = [v["id"] for v in dependency.get("vulns", [])]
            rows.append((name, dependency.get("version", "?"), "audited (pip-audit)", ", ".join(ids) or "none"))
            vulnerable += bool(ids)
            continue
        version = dependency["skip_reason"].rsplit("(", 1)[-1].rstrip(")") if "(" in dependency["skip_reason"] else ""
        verdict, ids = fallback_audit(name, version) if version else ("not audited: " + dependency["skip_reason"], [])
        rows.append(
            (name, version or "?", verdict, ", ".join(ids) or ("none" if verdict.startswith("audited") else "?"))
        )
        vulnerable += bool(ids)
        unaudited += not verdict.startswith("audited")
    width = max((len(row[0]) for row in rows), default=4)
    print(f"pip-audit of {requirements}:")
    for name, version, verdict, known in rows:
        print(f"  {name:<{width}}  {version:<10}  {verdict:<45}  known vulnerabilities: {known}")
    if vulnerable:
        print(f"FAIL: {vulnerable} dependency(ies) with known vulnerabilities")
        return 1
    if unaudited:
        strict = os.environ.get("SECURITY_AUDIT_STRICT") == "1"
        print(f"{'FAIL' if strict else 'WARNING'}: {unaudited} dependency(ies) NOT AUDITED (see above)")
        return 1 if strict else 0
    print("OK: no known vulnerabilities")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else "layers/dependencies/requirements.txt"))
