"""Runnable examples: an instrumented sample backend, its database schema and seed data.

- :mod:`examples.sample_backend` — the ASGI stand-in for the Codebook AI backend (with faults);
- :mod:`examples.seed` and ``schema.sql`` — the tables the probes read, filled with a month of data;
- ``business_queries.yaml`` — the guide's business metrics as SQL for the ``sql`` probe;
- :mod:`examples.tls` — a self-signed certificate for the demo's TLS endpoint;
- :mod:`examples.tls_endpoint` — the demo's local TLS endpoint presenting that certificate.
"""
