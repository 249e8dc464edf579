"""Over HTTP, a job id that does not exist is a 404 envelope naming the id, with the closest
ids the token may see (issue 13, bad input); the assistant's answer says the same."""
from __future__ import annotations

import json

import pytest

ML = {"authorization": "Bearer secret-ml"}
ADMIN = {"authorization": "Bearer secret-admin"}
NOT_ML = ("1002", "1003", "1004", "1007", "1009", "1011", "1012", "1014", "physics", "bio")


@pytest.mark.parametrize("headers,body,first", [
    (ADMIN, {"action": "diagnose", "job_id": "1013"}, ["1012", "1014"]),
    (ML, {"action": "diagnose", "job_id": "1008"}, ["1006"]),
    (ML, {"action": "remediate", "job_id": "1010_8"}, ["1010_7", "1010_9"]),
    (ML, {"action": "predict", "job_id": "1013"}, []),  # bio's neighbours are never shown
])
def test_missing_job_is_404_with_close_ids_in_the_tokens_scope(token_client, headers, body,
                                                               first):
    r = token_client.post("/v1/actions", json=body, headers=headers)
    assert r.status_code == 404, r.text
    err = r.json()["error"]
    assert err["type"] == "not_found" and f"no job '{body['job_id']}'" in err["message"]
    assert [s["job_id"] for s in err["suggestions"] or []][:len(first)] == first
    if headers is ML:
        blob = json.dumps(r.json()).replace(body["job_id"], "<asked>")
        assert not any(x in blob for x in NOT_ML), blob


def test_ask_answer_says_so_with_close_ids(token_client):
    r = token_client.post("/v1/ask", json={"question": "why did job 1010_8 fail?"}, headers=ML)
    assert r.status_code == 200
    ans = r.json()["answer"]
    assert "no job '1010_8'" in ans and "1010_7" in ans and "1010_9" in ans
    assert not any(x in ans for x in NOT_ML), ans
