"""Schema fuzzing: schemathesis drives every operation of /openapi.json with generated
requests against a running ``tether dev``; no request may get a 5xx (I10)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from test_server_http import EXAMPLES, Engine, ir_of, running_engine

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with running_engine(Path(tmp_path_factory.mktemp("fuzz"))) as e:
        with httpx.Client(base_url=e.url) as c:  # something real to find by id
            c.post("/workflows", json={"ir": ir_of(EXAMPLES / "counter.yaml")}).raise_for_status()
            c.post("/executions", json={"workflow_id": "counter", "input": {"n": 0}})
        yield e


def test_no_request_gets_a_server_error_I10(running: Engine) -> None:
    schema = schemathesis.openapi.from_url(running.url + "/openapi.json")
    tried = 0
    statuses: Counter[int] = Counter()
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call_and_validate(checks=[not_a_server_error])
            statuses[response.status_code // 100 * 100] += 1

        fuzz()
        tried += 1
    assert tried >= 10  # every route of the API was driven
    assert statuses[200] > 0 and statuses[400] > 0 and sum(statuses.values()) > 100, statuses
