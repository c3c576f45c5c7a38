"""Machine drafts are not people's work: a frame's verdict, the verdict votes and a dataset
version count only what people made or took on; the review queue keeps "to review" and "to
annotate" apart."""

from __future__ import annotations

import json
from typing import Any

from server_support import API, Server, ingest, npy_file
from test_api_annotations import SCHEMA, box, verdict
from test_api_datasets import wait

#: What an edge camera says of a part: NG, with one finding at a pixel (a machine draft).
EDGE_NG = {
    "verdict": "NG",
    "model": "edge-net",
    "findings": [
        {"rule": "hot", "verdict": "NG", "x": 3, "y": 4, "value": 80.0, "limit": 70.0, "score": 0.9}
    ],
}


def _frame(server: Server, pid: int, seed: int, edge: dict[str, Any] | None = None) -> str:
    extra = {} if edge is None else {"findings": json.dumps(edge)}
    response = ingest(server.admin, pid, npy_file(seed), **extra)
    assert response.status_code in (200, 201), response.text
    frame_id: str = response.json()["frame_id"]
    return frame_id


def _save(client: Any, fid: str, edit: Any) -> dict[str, Any]:
    current = client.get(f"{API}/frames/{fid}/annotations").json()
    item = edit(current["item"])
    response = client.put(
        f"{API}/frames/{fid}/annotations", json={"item": item, "revision": current["revision"]}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_machine_verdict_is_not_the_frames_human_verdict(server: Server) -> None:
    pid = server.project(label_schema=SCHEMA)["id"]
    fid = _frame(server, pid, 1, EDGE_NG)
    drafts = server.admin.get(f"{API}/frames/{fid}/annotations").json()["item"]
    assert [v["provenance"]["model"] for v in drafts["verdicts"]] == ["edge-net"]
    # a person draws a box and leaves the machine's NG verdict as a draft
    _save(server.admin, fid, lambda item: {**item, "annotations": [*item["annotations"], box()]})
    frame = server.admin.get(f"{API}/frames/{fid}").json()
    assert (frame["verdict"], frame["machine_verdict"]) == (None, "NG")
    assert frame["status"] == "in_progress"
    # once a person says OK, that is the frame's verdict and it disagrees with the machine
    _save(server.admin, fid, lambda item: {**item, "verdicts": [verdict("OK")]})
    frame = server.admin.get(f"{API}/frames/{fid}").json()
    assert (frame["verdict"], frame["disagreement"]) == ("OK", True)


def test_a_dataset_version_counts_only_peoples_annotations(server: Server) -> None:
    pid = server.project(label_schema=SCHEMA)["id"]
    machine_only = [_frame(server, pid, seed, EDGE_NG) for seed in (1, 2, 3)]
    by_hand = _frame(server, pid, 4)
    _save(server.admin, by_hand, lambda item: {**item, "annotations": [box()]})
    taken_on = _frame(server, pid, 5, EDGE_NG)  # submitted: the annotator took the drafts on
    server.admin.post(f"{API}/frames/{taken_on}/review", json={"action": "submit"})
    _frame(server, pid, 6)  # nobody touched it

    job = server.admin.post(f"{API}/projects/{pid}/dataset-versions", json={})
    done = wait(server, job.json()["job_id"])
    assert done["state"] == "done", done
    stats = server.admin.get(done["result_url"]).json()["stats"]
    assert stats["items"] == 6
    assert stats["annotated"] == 2  # by hand, and the submitted one
    assert stats["machine_only"] == len(machine_only)
    assert stats["machine_drafts_left_out"] == 3 * 2  # per frame: the point and the verdict
    assert stats["verdicts"] == {"OK": 0, "NG": 1, "none": 5}
    assert stats["labels"] == {"hot": 1, "hot_spot": 1}


def test_the_queue_keeps_review_and_annotation_apart(server: Server) -> None:
    pid = server.project(label_schema=SCHEMA)["id"]
    fresh = _frame(server, pid, 1, EDGE_NG)
    working = _frame(server, pid, 2)
    _save(server.admin, working, lambda item: {**item, "annotations": [box()]})
    submitted = _frame(server, pid, 3)
    _save(server.admin, submitted, lambda item: {**item, "verdicts": [verdict("OK")]})
    server.admin.post(f"{API}/frames/{submitted}/review", json={"action": "submit"})

    def queue(**params: str) -> dict[str, str]:
        body = server.admin.get(f"{API}/projects/{pid}/review-queue", params=params).json()
        assert body["total"] == len(body["items"])
        return {e["frame"]["id"]: e["stage"] for e in body["items"]}

    assert queue(stage="review") == {submitted: "review"}
    assert queue(stage="annotate") == {fresh: "annotate", working: "annotate"}
    assert queue() == {submitted: "review", fresh: "annotate", working: "annotate"}
    bad = server.admin.get(f"{API}/projects/{pid}/review-queue", params={"stage": "done"})
    assert bad.status_code == 422
    # accepting a frame nobody submitted is refused (the UI does not offer it)
    refused = server.admin.post(f"{API}/frames/{working}/review", json={"action": "accept"})
    assert refused.status_code == 422
    assert "nothing to accept" in refused.json()["detail"]
