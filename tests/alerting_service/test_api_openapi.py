"""``GET /api/openapi.json``: served open, describes exactly the mounted endpoints, carries each
one's scope and body limit from the access table, and loads in schemathesis without errors."""

from __future__ import annotations

import schemathesis

from monitor.api.access import ROUTE_ACCESS
from monitor.api.openapi import OPERATIONS, document


async def test_the_served_description_matches_the_app_and_the_access_table(scoped):
    r = await scoped.client.get("/api/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.0")
    served = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert served == set(ROUTE_ACCESS) == set(OPERATIONS)
    for (method, path), access in ROUTE_ACCESS.items():
        op = doc["paths"][path][method.lower()]
        assert op["x-body-limit"] == access.limit
        assert op.get("x-scope") == access.scope
        if access.scope is None:
            assert op["security"] == []
        elif access.toggle:
            assert {} in op["security"] and {"bearer": []} in op["security"]  # open or token, by setting
        else:
            assert op["security"] == [{"bearer": []}]
        if access.scope:
            assert {"401", "403"} <= set(op["responses"])
        if access.limit:
            assert "413" in op["responses"]
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": "a token of api.tokens; scopes: read, ack, admin, intake"}


def test_schemathesis_loads_every_operation():
    schema = schemathesis.openapi.from_dict(document())
    results = list(schema.get_all_operations())
    errors = [r.err() for r in results if hasattr(r, "err")]
    assert not errors
    assert {(r.ok().method.upper(), r.ok().path) for r in results} == set(OPERATIONS)


def test_a_follower_only_app_describes_only_what_it_mounts():
    from monitor.api.app import create_app
    from monitor.api.deps import AlertingDeps, ApiDeps
    from monitor.api.openapi import mounted_endpoints

    app = create_app(ApiDeps(alerting=AlertingDeps(ports=lambda: None)))
    doc = document(mounted_endpoints(app.routes))
    assert "/health" not in doc["paths"] and "/api/v2/silences" in doc["paths"]
