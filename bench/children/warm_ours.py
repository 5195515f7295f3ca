"""B2/B3/B5: one warm instance of the project's handler serving batches; reports the time of the timed part.

argv: batch size. ``BENCH_IDS`` holds a warm-up id followed by the ids to delete, in batches of that size.
"""

import sys
import time

import _child

from parser_run_deleter.entrypoints import queue_function

batch_size = int(sys.argv[1])
warmup, *ids = _child.ids()
queue_function.lambda_handler(_child.event(warmup), _child.Context())  # cold start, secret, connection: not timed
warm_rss_kb = _child.rss_kb()
failures = 0
started = time.perf_counter()
for start in range(0, len(ids), batch_size):
    response = queue_function.lambda_handler(_child.event(*ids[start : start + batch_size]), _child.Context())
    failures += len(response["batchItemFailures"])
elapsed = time.perf_counter() - started
_child.report(elapsed_s=elapsed, failures=failures, rss_kb=_child.rss_kb(), first_rss_kb=warm_rss_kb)
_child.done()
