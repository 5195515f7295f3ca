"""B1: a fresh process imports the API function's handler and serves its first request: a tenant's signed DELETE,
authenticated (registry, signing secret), guarded against replays, sent to Extend and recorded in the ledger."""

import _child

from parser_run_deleter.entrypoints import api_function

[parser_run_id] = _child.ids()
response = api_function.lambda_handler(_child.api_event(parser_run_id), _child.Context())
_child.report(failures=int(response["statusCode"] != 200), rss_kb=_child.rss_kb())
_child.done()
