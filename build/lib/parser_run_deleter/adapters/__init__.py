"""The outside world: Extend's HTTP API, Secrets Manager and SQS. Each adapter that keeps warm state has a
``reset()`` for the SnapStart restore hook."""
