"""B1: a fresh process imports the project's handler and serves its first SQS record (delivered from the queue)."""

import _child

from parser_run_deleter.entrypoints import queue_function

[event] = _child.delivered()
response = queue_function.lambda_handler(event, _child.Context())
_child.report(failures=len(response["batchItemFailures"]), rss_kb=_child.rss_kb())
_child.done()
