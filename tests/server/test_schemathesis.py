"""Property-based API tests from the OpenAPI document (schemathesis): no request, however odd,
gets a 500, and every error is a JSON problem document — anonymous and with an issuer key."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

from critflow.passport.samples import sample_battery


def test_no_server_errors_and_problem_documents(registry):
    client, keys, app = registry
    client.post(
        "/api/passports", json=sample_battery("ev", "ST-1"), headers={"X-API-Key": keys.issuer}
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    for operation in operations:
        _fuzz(operation, keys.issuer)


def _fuzz(operation, issuer_key: str) -> None:
    @settings(
        max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    @given(case=operation.as_strategy())
    def check(case):
        for headers in ({}, {"X-API-Key": issuer_key}):
            response = case.call(headers=headers)
            where = (operation.method, operation.path, response.status_code, response.content[:300])
            assert response.status_code < 500, where
            if response.status_code >= 400:
                assert response.headers["content-type"][0].startswith("application/problem+json"), (
                    where
                )

    check()
