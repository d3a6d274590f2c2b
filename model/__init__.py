"""The shared vocabulary of codebook-monitor: the leaf every other package imports.

After Prometheus ``common/model``: durations (:mod:`model.duration`), timestamps
(:mod:`model.timestamps`), label sets and their fingerprints (:mod:`model.labels`), label
matchers (:mod:`model.matchers`), the alert (:mod:`model.alert`) and secret redaction
(:mod:`model.secrets`).

This package imports nothing of ours (``monitor`` and ``probes`` import it, never the other
way round; import-linter checks it). Submodules are imported explicitly.
"""
