"""The benchmarks' correctness, at a small scale: every child really deletes what it was given, and the rate
benchmark loses nothing. Their speed is ``make bench``'s business, never asserted here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import b4_rate_efficiency, b5_footprint
from bench.b2_warm_overhead import delivered_batches
from bench.harness import WORKSPACE, BenchServices, run_child
from devstack.extend_emulator import ExtendEmulator


@pytest.fixture
def bench_stack(moto_endpoint: str) -> Iterator[BenchServices]:
    with ExtendEmulator() as extend:
        yield BenchServices(moto_endpoint, extend)


@pytest.mark.parametrize("script", ["cold_floor.py", "cold_queue_floor.py", "cold_ours.py", "cold_peer.py"])
def test_each_cold_start_child_deletes_its_record(bench_stack: BenchServices, script: str) -> None:
    queue_env = bench_stack.queue_env()
    envs = {"cold_peer.py": bench_stack.peer_env(), "cold_ours.py": queue_env, "cold_queue_floor.py": queue_env}
    env = envs.get(script)
    [parser_run_id] = bench_stack.new_ids(1)
    events = bench_stack.delivered([parser_run_id], 1) if script in ("cold_ours.py", "cold_queue_floor.py") else []
    child = run_child(script, env or bench_stack.env(), ids=[parser_run_id], events=events)
    assert child.report["failures"] == 0
    assert not bench_stack.extend.exists(parser_run_id, workspace_id=WORKSPACE)
    assert child.report["rss_kb"] > 0


@pytest.mark.parametrize(("script", "args"), [("warm_ours.py", ()), ("warm_raw.py", ()), ("warm_raw_ledger.py", ())])
def test_warm_children_delete_every_record(bench_stack: BenchServices, script: str, args: tuple[str, ...]) -> None:
    ids = bench_stack.new_ids(26)
    events = delivered_batches(bench_stack, ids, 10) if script == "warm_ours.py" else []
    env = bench_stack.queue_env(BENCH_API_KEY=bench_stack.api_key)
    child = run_child(script, env, ids=ids, args=args, events=events, consumed=bench_stack.consumed)
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
