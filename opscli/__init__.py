"""Operator CLI for bulk deletions: ``enqueue`` ids, watch ``status``, inspect the ``dlq``, ``redrive`` it.

Run it as ``extend-deleter``. It uses boto3's default credential
chain and honours ``AWS_ENDPOINT_URL``, so the same commands drive a deployed stack or the local one.
"""
