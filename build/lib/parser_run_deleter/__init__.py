"""Deletes Extend parser runs on request, from an API Gateway API and from an SQS queue.

The folders are the layers, and imports only go downward:

- ``entrypoints``: one Lambda handler per function;
- ``intake``: reads a trigger's event, calls one logic function, and maps the result back;
- ``logic``: what a deletion request is and what becomes of it; no event shapes, no HTTP;
- ``adapters``: Extend, Secrets Manager and SQS;
- ``shared``: settings, observability, time budgets, pacing and the SnapStart hooks.

This file imports nothing, so that an entry point's first import can still pause the garbage collector.
"""
