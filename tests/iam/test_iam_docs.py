"""docs/security.md's tables of AWS calls and refusals are this recording's verdicts (`make iam-table` writes them)."""

from __future__ import annotations

import pytest

from tests.iam.conftest import Judged
from tests.support.iam_deployment import Deployment
from tests.support.iam_evaluation import section, sections
from tests.support.template import ROOT

pytestmark = pytest.mark.slow
SECURITY_DOC = ROOT / "docs" / "security.md"


@pytest.mark.parametrize("name", ["iam-calls", "iam-refusals"])
def test_docs_security_md_shows_each_recorded_call_and_refusal_with_its_verdict(
    name: str, judged: Judged, deployment: Deployment
) -> None:
    # Given the tables this recording makes
    expected = sections(judged.calls, judged.verdicts, judged.refusals, judged.refusal_verdicts, deployment)[name]

    # Then docs/security.md shows exactly them
    shown = section(SECURITY_DOC.read_text(encoding="utf-8"), name)
    assert shown is not None, f"docs/security.md has no {name} table"
    assert shown == expected, f"docs/security.md's {name} table is not what the system does now: run `make iam-table`"
