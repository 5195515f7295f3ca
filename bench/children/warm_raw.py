"""B2 baseline: the same DELETEs as a bare urllib3 loop, one after another on one kept-alive pool."""

import os
import time

import _child
import urllib3

warmup, *ids = _child.ids()
key = os.environ["BENCH_API_KEY"]
base = os.environ["EXTEND_API_BASE_URL"] + "/parser_runs/"
headers = {"Authorization": f"Bearer {key}", "x-extend-api-version": "2025-04-21"}
http = urllib3.PoolManager()
http.request("DELETE", base + warmup, headers=headers)
failures = 0
started, cpu_started = time.perf_counter(), time.process_time()
for parser_run_id in ids:
    failures += http.request("DELETE", base + parser_run_id, headers=headers).status != 200
elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
_child.report(elapsed_s=elapsed, cpu_s=cpu, failures=failures, rss_kb=_child.rss_kb())
_child.done()
