"""Schemathesis against the API's own OpenAPI schema: generated requests never get a 500.

Requests are generated from every operation's schema — valid and invalid
bodies, query strings and path parameters, with and without the keys — for a
bounded number of examples per operation, on a SQLite store with a few
customers and messages in it. The only check is the one that matters for
robustness here: no server error.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from narrowcast.store import Store
from narrowcast.store.schema import customers
from tests.api.conftest import SERVER_HEADERS, make_api

EXAMPLES = 25
"""Examples per operation: enough to hit every validation path, bounded for a quick suite."""


@pytest.fixture
def api_schema(sqlite_store: Store) -> schemathesis.BaseSchema:
    sqlite_store.upgrade()
    now = datetime.now(UTC)
    with sqlite_store.begin() as conn:
        conn.execute(
            customers.insert(),
            [
                {
                    "id": f"c{n}",
                    "email": f"c{n}@example.com",
                    "timezone": "UTC",
                    "locale": "en",
                    "customer_type": "individual",
                    "created_at": now,
                    "updated_at": now,
                    "attributes": {},
                }
                for n in range(3)
            ],
        )
    app = make_api(sqlite_store).app
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_no_request_makes_the_server_fail(api_schema: schemathesis.BaseSchema) -> None:
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10, "the schema lists the API's endpoints"
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            # Half the requests carry the server key, so authenticated paths are reached.
            headers = dict(SERVER_HEADERS) if len(repr(case.body)) % 2 == 0 else {}
            response = case.call(headers=headers)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} {case.body!r:.200} → "
                    f"{response.status_code}: {response.text[:300]}"
                )

        check()
    assert not failures, "\n".join(failures[:10])
