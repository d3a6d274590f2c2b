"""The ports a leader hands over match the interfaces the API is written against (monitor/alerting/ports.py)."""

from __future__ import annotations

import inspect

from monitor.alerting import ports


def _params(fn) -> list[tuple[str, object, bool]]:
    return [(p.name, p.kind, p.default is not inspect.Parameter.empty)
            for p in inspect.signature(fn).parameters.values() if p.name != "self"]


async def test_every_port_method_exists_with_the_declared_parameters(harness):
    svc = await harness.new_service()
    handed = svc.leader.ports()
    for field, protocol in (("intake", ports.AlertIntake), ("views", ports.AlertViews),
                            ("acks", ports.Acknowledgements), ("silences", ports.SilenceAdmin)):
        impl = getattr(handed, field)
        for name, declared in vars(protocol).items():
            if name.startswith("_") or not callable(declared):
                continue
            actual = getattr(impl, name)
            assert _params(actual) == _params(declared), (field, name)
            assert inspect.iscoroutinefunction(actual) == inspect.iscoroutinefunction(declared), (field, name)
    assert isinstance(handed.intake.resolve_timeout, float) and handed.clock() == harness.clock()
