"""B1 peer: a fresh process imports the peer handler (extend-ai SDK, Powertools with Tracer) and serves a record."""

import _child
import peer_handler

response = peer_handler.lambda_handler(_child.event(*_child.ids()), _child.Context())
_child.report(failures=len(response["batchItemFailures"]), rss_kb=_child.rss_kb())
_child.done()
