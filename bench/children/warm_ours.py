"""B2/B3/B5: one warm instance of the project's handler serving batches; reports the time of the timed part.

``BENCH_EVENTS`` holds the events, delivered from the deletion queue: a warm-up event of one record, then the
batches to time.
"""

import time

import _child

from parser_run_deleter.entrypoints import queue_function

warmup, *events = _child.delivered()
queue_function.lambda_handler(warmup, _child.Context())  # cold start, secret, connections: not timed
warm_rss_kb = _child.rss_kb()
failures = 0
started, cpu_started = time.perf_counter(), time.process_time()
for event in events:
    response = queue_function.lambda_handler(event, _child.Context())
    failures += len(response["batchItemFailures"])
elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
_child.report(elapsed_s=elapsed, cpu_s=cpu, failures=failures, rss_kb=_child.rss_kb(), first_rss_kb=warm_rss_kb)
_child.done()
