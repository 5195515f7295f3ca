"""The outside world, behind logic's ports (``logic.ports``): Extend's HTTP API, DynamoDB (the tenant registry, the
ledger, the replay records), SQS (the four queues), Secrets Manager and the callbacks' HTTP. Adapters import logic's
types, never the reverse; the entry points' composition roots build them and hand them to logic."""
