"""Prometheus metrics and the OpenAPI document."""
from __future__ import annotations

import re

from jobmedic.tools import TOOLS


def test_metrics_count_requests_errors_latency_and_rows(client):
    client.post("/v1/actions", json={"action": "nosuch"})
    client.post("/v1/actions", json={"action": "stats", "lookback_days": 0})
    text = client.get("/metrics").text
    assert 'jobmedic_http_requests_total{path="/v1/actions",action="?",code="400"} 1' in text
    assert 'jobmedic_http_requests_total{path="/v1/actions",action="stats",code="422"} 1' in text
    assert 'jobmedic_http_errors_total{path="/v1/actions",type="invalid_field"} 1' in text
    assert re.search(r'jobmedic_request_duration_seconds_count\{action="stats"\} 1\n', text)
    assert 'jobmedic_request_duration_seconds_bucket{action="stats",le="+Inf"} 1' in text
    assert 'jobmedic_store_rows{table="jobs"} 17' in text  # 1010_[5-7,9]: 4 tasks (issue 12)
    for line in text.splitlines():  # every sample line is "name{labels} number"
        if not line.startswith("#"):
            assert re.fullmatch(r'[a-z_]+(\{[^}]*\})? [0-9.e+-]+', line), line


def test_openapi_has_a_discriminated_union_of_the_request_models(client):
    doc = client.get("/openapi.json").json()
    body = doc["paths"]["/v1/actions"]["post"]["requestBody"]["content"]["application/json"]
    schema = body["schema"]
    assert schema["discriminator"]["propertyName"] == "action"
    mapping = set(schema["discriminator"]["mapping"])
    assert mapping == {t.name for t in TOOLS}  # every registered action, savings included
    assert mapping >= {"analyze", "stats", "remediate", "diagnose", "predict", "record_failure",
                       "record_outcome", "savings"}
    comps = doc["components"]["schemas"]
    stats = comps["StatsRequest"]
    assert stats["properties"]["lookback_days"]["exclusiveMinimum"] == 0
    assert "description" in stats["properties"]["group_by"]
    assert "/v1/ask" in doc["paths"] and "/healthz" in doc["paths"]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
