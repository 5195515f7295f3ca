"""The benchmarks' correctness, at a small scale: every child really deletes what it was given, and the rate
benchmark loses nothing. Their speed is ``make bench``'s business, never asserted here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import b4_rate_efficiency, b5_footprint
from bench.harness import WORKSPACE, BenchServices, run_child
from devstack.extend_emulator import ExtendEmulator


@pytest.fixture
def bench_stack(moto_endpoint: str) -> Iterator[BenchServices]:
    with ExtendEmulator() as extend:
        yield BenchServices(moto_endpoint, extend)


@pytest.mark.parametrize("script", ["cold_floor.py", "cold_ours.py", "cold_peer.py"])
def test_each_cold_start_child_deletes_its_record(bench_stack: BenchServices, script: str) -> None:
    env = bench_stack.peer_env() if script == "cold_peer.py" else bench_stack.env()
    [parser_run_id] = bench_stack.new_ids(1)
    child = run_child(script, env, ids=[parser_run_id])
    assert child.report["failures"] == 0
    assert not bench_stack.extend.exists(parser_run_id, workspace_id=WORKSPACE)
    assert child.report["rss_kb"] > 0


@pytest.mark.parametrize(("script", "args"), [("warm_ours.py", ("10",)), ("warm_raw.py", ())])
def test_warm_children_delete_every_record(bench_stack: BenchServices, script: str, args: tuple[str, ...]) -> None:
    ids = bench_stack.new_ids(26)
    child = run_child(script, bench_stack.env(BENCH_API_KEY=bench_stack.api_key), ids=ids, args=args)
    assert child.report["failures"] == 0
    assert not [i for i in ids if bench_stack.extend.exists(i, workspace_id=WORKSPACE)]
    assert sorted((r.parser_run_id for r in bench_stack.extend.requests), key=str) == sorted(ids)


def test_rate_benchmark_loses_nothing_and_respects_the_limit(bench_stack: BenchServices) -> None:
    outcome = b4_rate_efficiency.scenario(
        bench_stack, per_instance_rps=0.95 * 40 / 2, rate=40, instances=2, messages=60
    )
    assert outcome["deleted_200"] == 60
    assert outcome["not_deleted"] == outcome["left_on_queue"] == outcome["dead_lettered"] == 0
    assert outcome["throttled_429"] == 0


def test_footprint_helpers(tmp_path: Path) -> None:
    assert 0 < b5_footprint.function_zip_bytes() < b5_footprint.FUNCTION_LIMIT
    layer = tmp_path / "python"
    b5_footprint.copy_installed_distributions(layer)
    b5_footprint.clean_like_the_layer_makefile(layer)
    assert (layer / "aws_lambda_powertools" / "__init__.py").is_file()
    assert (layer / "urllib3" / "__init__.py").is_file()
    assert (layer / "jmespath" / "__init__.py").is_file()
    assert not list(layer.rglob("__pycache__"))
    assert not list(layer.glob("*.dist-info/RECORD"))
    assert not (layer / "boto3").exists()
