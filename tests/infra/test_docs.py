"""The docs' configuration and metric tables against what the code reads and emits, so the docs stay true."""

from __future__ import annotations

import re
from typing import Any

import pytest

from parser_run_deleter.logic.callbacks import retry_after_s
from parser_run_deleter.shared.observability import MetricName
from parser_run_deleter.shared.settings import (
    ConfigurationError,
    load_api_settings,
    load_callback_settings,
    load_queue_settings,
)
from tests.support.template import ROOT, Cfn

DOCS = ROOT / "docs"


def section(doc: str, title: str) -> str:
    """The text of one ``## `` section of ``docs/<doc>``, its subsections included."""
    text = (DOCS / doc).read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def configuration_table() -> dict[str, tuple[set[str], bool]]:
    """docs/configuration.md's environment variables: each name, the functions that read it, and whether it is
    required."""
    table = section("configuration.md", "Environment variables")
    rows: dict[str, tuple[set[str], bool]] = {}
    for line in table.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.split("|")[1:-1]]
        functions = {name.strip() for name in cells[1].split(",")}
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0]):
            rows[name] = (functions, cells[-1] == "required")
    return rows


def documented_variables() -> set[str]:
    return set(configuration_table())


# Each function's settings loader, by its name in the table and its logical id in the template.
LOADERS: dict[str, tuple[str, Any]] = {
    "api": ("ApiFunction", load_api_settings),
    "queue": ("QueueFunction", load_queue_settings),
    "callback": ("CallbackFunction", load_callback_settings),
}


class RecordingEnvironment(dict[str, str]):
    """An environment that remembers every variable asked for."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return super().__getitem__(key)


def template_variables(cfn: Cfn) -> set[str]:
    """Every variable of every function, as SAM deploys them (Globals merged in)."""
    functions = cfn.of_type("AWS::Lambda::Function")
    return {name for function in functions for name in cfn.props(function)["Environment"]["Variables"]}


def sample_environment(function: str, table: dict[str, tuple[set[str], bool]]) -> dict[str, str]:
    """A value for each variable the table says ``function`` requires, that its loader accepts."""
    values = {"TENANT_SECRET_PREFIX": "stack/tenants", "MAX_RECEIVE_COUNT": "5"}
    return {
        name: values.get(name, f"https://sqs.example/{name.lower()}")
        for name, (functions, required) in table.items()
        if required and function in functions
    }


@pytest.mark.parametrize("function", sorted(LOADERS))
def test_each_function_reads_exactly_the_variables_the_configuration_table_gives_it(function: str) -> None:
    # Given the table, and an environment that records what is read from it
    table = configuration_table()
    env = RecordingEnvironment(sample_environment(function, table))

    # When the function's settings are loaded from it
    LOADERS[function][1](env)

    # Then what they read is exactly what the table's functions column gives this function (Powertools reads its own)
    given = {name for name, (functions, _) in table.items() if function in functions}
    assert env.asked == {name for name in given if not name.startswith("POWERTOOLS_")}
    # and each variable the table marks required is required: without it, the function does not start
    for name in sample_environment(function, table):
        partial = {key: value for key, value in sample_environment(function, table).items() if key != name}
        with pytest.raises(ConfigurationError, match=name):
            LOADERS[function][1](partial)


@pytest.mark.parametrize("function", sorted(LOADERS))
def test_the_template_gives_each_function_its_own_variables_and_no_others(cfn: Cfn, function: str) -> None:
    table = configuration_table()
    logical_id = LOADERS[function][0]
    variables = set(cfn.props(logical_id)["Environment"]["Variables"])
    given = {name for name, (functions, _) in table.items() if function in functions}
    required = {name for name, (functions, needed) in table.items() if function in functions and needed}
    # Every variable the function requires is set, and nothing it does not read
    assert required <= variables
    assert variables - given == set()


def test_every_variable_the_template_sets_is_in_the_configuration_table(cfn: Cfn) -> None:
    names = template_variables(cfn)
    assert {"EXTEND_API_KEY_SECRET_ID", "DELETION_QUEUE_URL", "POWERTOOLS_SERVICE_NAME"} <= names
    assert names - documented_variables() == set()


def test_every_metric_the_function_emits_is_named_in_the_docs() -> None:
    metric_names = {value for name, value in vars(MetricName).items() if name.isupper()}
    assert len(metric_names) >= 10
    outcome_table = section("architecture.md", "Extend answer → outcome → SQS result → metric")
    api_metrics = section("api.md", "Audit and metrics")
    undocumented = {name for name in metric_names if f"`{name}`" not in outcome_table + api_metrics}
    assert undocumented == set()


def cited_tests() -> set[tuple[str, str | None]]:
    """Every ``tests/...py`` and ``tests/...py::name`` the docs and the README cite; a bare ``::name`` that
    follows in the same line belongs to the file cited before it."""
    cited: set[tuple[str, str | None]] = set()
    for document in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        for line in document.read_text(encoding="utf-8").splitlines():
            current: str | None = None
            for path, name in re.findall(r"`(tests/[\w/]+\.py)?(?:::(\w+))?`", line):
                current = path or current
                if current and (path or name):
                    cited.add((current, name or None))
    return cited


def test_every_test_the_docs_cite_exists() -> None:
    cited = cited_tests()
    assert len(cited) > 20
    missing = []
    for path, name in sorted(cited, key=lambda item: (item[0], item[1] or "")):
        source = ROOT / path
        if not source.is_file():
            missing.append(path)
        elif name and not re.search(rf"^(async )?def {name}\(", source.read_text(encoding="utf-8"), re.MULTILINE):
            missing.append(f"{path}::{name}")
    assert missing == []


def minutes(text: str) -> int:
    """``"1 h 03 min"``, ``"64 min"``, ``"11 h 45 min (capped)"`` or ``"none"`` in minutes (none is 0)."""
    if text.startswith("none"):
        return 0
    match = re.match(r"(?:(\d+) h)?\s*(?:(\d+) min)?", text)
    assert match and any(match.groups()), text
    hours, mins = (int(group or 0) for group in match.groups())
    return hours * 60 + mins


def test_the_callback_backoff_table_is_the_schedule_the_function_keeps(cfn: Cfn) -> None:
    # Given the table docs/ledger.md shows, and the attempts the template allows (the callback queue's
    # maxReceiveCount, which the function gets as MAX_RECEIVE_COUNT)
    table = section("ledger.md", "Completion callbacks")
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in table.splitlines()
        if re.match(r"^\| \d+ \|", line)
    ]
    attempts = cfn.props("CallbackQueue")["RedrivePolicy"]["maxReceiveCount"]

    # Then it has one row per attempt, each wait is the function's, and each next attempt adds them up
    assert [int(row[0]) for row in rows] == list(range(1, attempts + 1))
    waited = 0
    for attempt, wait, next_attempt in rows:
        expected_s = retry_after_s(int(attempt), attempts)
        assert minutes(wait) * 60 == expected_s, (attempt, wait)
        waited += expected_s
        if expected_s:
            assert minutes(next_attempt) * 60 == waited, (attempt, next_attempt)
