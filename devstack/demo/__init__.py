"""The demo behind ``make run`` (``python -m devstack.demo``; ``__main__`` says what it shows), one module per job:

- ``plan``: the seeded world: whose runs exist in Extend, which are asked for, and the faults injected on them;
- ``stack``: the local stack the demo runs on, with its two tenants and their callback endpoint;
- ``tenant_client``: a tenant's signed HTTP client of the API;
- ``scenario``: what the demo does, step by step, and the summary it collects;
- ``summary``: what the summary computes: where every id ended, and the checks behind "Everything adds up.";
- ``rendering``: the console, the stack's description, the fault table and the summary table;
- ``serve``: ``--serve``, the stack kept up with each tenant's credentials and commands to paste.
"""
