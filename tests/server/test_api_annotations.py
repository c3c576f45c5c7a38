"""Annotations: optimistic concurrency, validation against the label schema, review, tasks
and the review queue."""

from __future__ import annotations

import json
import threading
from typing import Any

from server_support import API, Server, ingest, npy_file

SCHEMA = {
    "labels": [
        {
            "name": "hot_spot",
            "attributes": [
                {"name": "severity", "type": "enum", "values": ["minor", "major"], "required": True}
            ],
        },
        {"name": "component"},
    ]
}
CREATED = "2025-01-01T00:00:00+00:00"


def box(label: str = "hot_spot", ident: str = "a1", **attributes: Any) -> dict[str, Any]:
    """An annotation dict of a 4x4 box."""
    return {
        "id": ident,
        "label": label,
        "shape": {"type": "box", "x": 2, "y": 3, "width": 4, "height": 4},
        "attributes": attributes or {"severity": "major"},
        "provenance": {"author": "ann", "created": CREATED},
    }


def verdict(value: str, author: str = "ann", ident: str = "v1") -> dict[str, Any]:
    """A whole-item verdict dict by ``author``."""
    return {
        "id": ident,
        "frame": None,
        "verdict": value,
        "reason": "too hot" if value == "NG" else "",
        "provenance": {"author": author, "created": CREATED},
    }


def setup(server: Server, seed: int = 1) -> tuple[int, str]:
    """A project with the test schema and one frame."""
    pid = server.project(label_schema=SCHEMA)["id"]
    return pid, ingest(server.admin, pid, npy_file(seed)).json()["frame_id"]


def test_round_trip_and_etag(server: Server) -> None:
    _, fid = setup(server)
    got = server.admin.get(f"{API}/frames/{fid}/annotations")
    assert got.headers["etag"] == '"1"'
    current = got.json()
    assert current["revision"] == 1
    assert current["updated_by"] == "thermoscope"
    item = current["item"]
    assert item["format"] == "thermoscope.annotated-item"
    assert (item["width"], item["height"], item["frame_count"]) == (32, 24, 1)
    item["annotations"] = [box()]
    saved = server.admin.put(
        f"{API}/frames/{fid}/annotations", json={"item": item}, headers={"If-Match": '"1"'}
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["revision"] == 2
    assert saved.headers["etag"] == '"2"'
    again = server.admin.get(f"{API}/frames/{fid}/annotations").json()
    assert again["item"]["annotations"][0]["shape"]["width"] == 4
    assert again["updated_by"] == "admin"
    assert server.admin.get(f"{API}/frames/{fid}").json()["status"] == "in_progress"


def test_two_writers_one_conflict(server: Server) -> None:
    pid, fid = setup(server)
    alice = server.user("alice", pid, "annotator")
    bob = server.user("bob", pid, "annotator")
    base = alice.get(f"{API}/frames/{fid}/annotations").json()
    item_a = {**base["item"], "annotations": [box(ident="from-alice")]}
    item_b = {**base["item"], "annotations": [box(ident="from-bob")]}
    first = alice.put(f"{API}/frames/{fid}/annotations", json={"item": item_a, "revision": 1})
    second = bob.put(f"{API}/frames/{fid}/annotations", json={"item": item_b, "revision": 1})
    assert first.status_code == 200
    assert second.status_code == 409
    conflict = second.json()
    assert conflict["revision"] == 2
    assert conflict["item"]["annotations"][0]["id"] == "from-alice"
    assert "revision 1" in conflict["detail"]
    assert "alice" in conflict["detail"]
    stored = alice.get(f"{API}/frames/{fid}/annotations").json()
    assert stored["item"]["annotations"][0]["id"] == "from-alice"
    # bob merges onto the current revision and saves
    merged = {
        **conflict["item"],
        "annotations": [*conflict["item"]["annotations"], box(ident="b2")],
    }
    assert (
        bob.put(f"{API}/frames/{fid}/annotations", json={"item": merged, "revision": 2}).status_code
        == 200
    )


def test_concurrent_writers_never_overwrite(server: Server) -> None:
    """Many threads saving over the same revision: exactly one wins each round."""
    _, fid = setup(server)
    base = server.admin.get(f"{API}/frames/{fid}/annotations").json()
    results: list[int] = []

    def write(ident: str) -> None:
        item = {**base["item"], "annotations": [box(ident=ident)]}
        response = server.admin.put(
            f"{API}/frames/{fid}/annotations", json={"item": item, "revision": base["revision"]}
        )
        results.append(response.status_code)

    threads = [threading.Thread(target=write, args=(f"w{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [200] + [409] * 7
    assert server.admin.get(f"{API}/frames/{fid}/annotations").json()["revision"] == 2


def test_invalid_items_get_clear_422(server: Server) -> None:
    _, fid = setup(server)
    item = server.admin.get(f"{API}/frames/{fid}/annotations").json()["item"]

    def put(changed: dict[str, Any]) -> Any:
        return server.admin.put(
            f"{API}/frames/{fid}/annotations", json={"item": changed, "revision": 1}
        )

    unknown = put({**item, "annotations": [box(label="crack")]})
    assert unknown.status_code == 422
    assert "unknown label 'crack'" in unknown.json()["detail"]
    missing = put({**item, "annotations": [{**box(), "attributes": {}}]})
    assert "requires attribute 'severity'" in missing.json()["detail"]
    outside = box()
    outside["shape"] = {"type": "box", "x": 30, "y": 3, "width": 10, "height": 4}
    assert "outside the 32x24 frame" in put({**item, "annotations": [outside]}).json()["detail"]
    polygon = box()
    polygon["shape"] = {"type": "polygon", "points": [[1, 1], [2, 2]]}
    assert put({**item, "annotations": [polygon]}).status_code == 422
    assert "content hash" in put({**item, "item_id": "other"}).json()["detail"]
    assert "32x24" in put({**item, "width": 64}).json()["detail"]
    assert put({**item, "version": 99}).status_code == 422
    assert put({"nonsense": True}).status_code == 422
    no_revision = server.admin.put(f"{API}/frames/{fid}/annotations", json={"item": item})
    assert no_revision.status_code == 428
    bad_etag = server.admin.put(
        f"{API}/frames/{fid}/annotations", json={"item": item}, headers={"If-Match": "abc"}
    )
    assert bad_etag.status_code == 400
    not_json = server.admin.put(
        f"{API}/frames/{fid}/annotations",
        content=b"{",
        headers={"Content-Type": "application/json"},
    )
    assert not_json.status_code == 400
    assert server.admin.get(f"{API}/frames/{fid}/annotations").json()["revision"] == 1


def test_label_schema_validation(server: Server) -> None:
    pid, _ = setup(server)
    bad = server.admin.put(
        f"{API}/projects/{pid}/label-schema",
        json={"labels": [{"name": "x", "attributes": [{"name": "a", "type": "colour"}]}]},
    )
    assert bad.status_code == 422
    assert "label schema" in bad.json()["detail"]
    good = server.admin.put(f"{API}/projects/{pid}/label-schema", json={"labels": [{"name": "y"}]})
    assert [label["name"] for label in good.json()["label_schema"]["labels"]] == ["y"]


def test_review_flow_and_tasks(server: Server) -> None:
    pid, fid = setup(server)
    annotator = server.user("ann", pid, "annotator")
    reviewer = server.user("rev", pid, "reviewer")
    tasks = reviewer.post(
        f"{API}/projects/{pid}/tasks", json={"frame_ids": [fid], "assignee": "ann"}
    )
    assert tasks.status_code == 201
    (task,) = tasks.json()["items"]
    assert task["state"] == "open"
    assert task["assignee"] == "ann"
    again = reviewer.post(
        f"{API}/projects/{pid}/tasks", json={"frame_ids": [fid], "assignee": "ann"}
    )
    assert again.json()["items"][0]["id"] == task["id"]
    mine = annotator.get(f"{API}/projects/{pid}/tasks?assignee=me").json()
    assert mine["total"] == 1
    assert mine["items"][0]["frame_id"] == fid
    assert reviewer.get(f"{API}/projects/{pid}/tasks?assignee=me").json()["total"] == 0
    assert (
        reviewer.post(
            f"{API}/projects/{pid}/tasks", json={"frame_ids": ["ffff"], "assignee": "ann"}
        ).status_code
        == 404
    )
    nothing = annotator.post(f"{API}/frames/{fid}/review", json={"action": "submit"})
    assert nothing.status_code == 422
    assert "nothing to submit" in nothing.json()["detail"]
    item = annotator.get(f"{API}/frames/{fid}/annotations").json()["item"]
    item["annotations"] = [box()]
    item["verdicts"] = [verdict("NG")]
    annotator.put(f"{API}/frames/{fid}/annotations", json={"item": item, "revision": 1})
    submitted = annotator.post(f"{API}/frames/{fid}/review", json={"action": "submit"})
    assert submitted.status_code == 200
    assert submitted.json()["status"] == "submitted"
    states = {r["review"]["state"] for r in submitted.json()["item"]["annotations"]}
    assert states == {"submitted"}
    assert annotator.get(f"{API}/projects/{pid}/tasks?state=done").json()["total"] == 1
    no_comment = reviewer.post(f"{API}/frames/{fid}/review", json={"action": "reject"})
    assert no_comment.status_code == 422
    assert "comment" in no_comment.json()["detail"]
    rejected = reviewer.post(
        f"{API}/frames/{fid}/review", json={"action": "reject", "comment": "box too small"}
    )
    assert rejected.json()["status"] == "rejected"
    record = rejected.json()["item"]["annotations"][0]["review"]
    assert record == {**record, "state": "rejected", "reviewer": "rev", "comment": "box too small"}
    stale = reviewer.post(f"{API}/frames/{fid}/review", json={"action": "accept", "revision": 1})
    assert stale.status_code == 409
    # the annotator fixes it (an edit puts records back to draft), submits, the reviewer accepts
    current = annotator.get(f"{API}/frames/{fid}/annotations").json()
    fixed = current["item"]
    for record in fixed["annotations"] + fixed["verdicts"]:
        record["review"] = {"state": "draft"}
    annotator.put(
        f"{API}/frames/{fid}/annotations", json={"item": fixed, "revision": current["revision"]}
    )
    annotator.post(f"{API}/frames/{fid}/review", json={"action": "submit"})
    accepted = reviewer.post(
        f"{API}/frames/{fid}/review", json={"action": "accept", "comment": "ok"}
    )
    assert accepted.json()["status"] == "accepted"
    frame = reviewer.get(f"{API}/frames/{fid}").json()
    assert frame["status"] == "accepted"
    assert frame["verdict"] == "NG"


def _save(client: Any, fid: str, **changes: Any) -> None:
    current = client.get(f"{API}/frames/{fid}/annotations").json()
    item = {**current["item"], **changes}
    response = client.put(
        f"{API}/frames/{fid}/annotations", json={"item": item, "revision": current["revision"]}
    )
    assert response.status_code == 200, response.text


def test_review_queue_order(server: Server) -> None:
    pid = server.project(label_schema=SCHEMA)["id"]
    ann = server.user("ann", pid, "annotator")
    bob = server.user("bob", pid, "annotator")

    def frame(seed: int, findings: dict[str, Any] | None = None) -> str:
        extra = {} if findings is None else {"findings": json.dumps(findings)}
        return ingest(server.admin, pid, npy_file(seed), **extra).json()["frame_id"]

    def edge(value: str, score: float | None) -> dict[str, Any]:
        finding = {"rule": "hot", "verdict": value, "x": 1, "y": 1, "value": 80, "limit": 70}
        if score is not None:
            finding["score"] = score
        return {"verdict": value, "findings": [finding] if value != "OK" else []}

    plain = frame(1)
    submitted = frame(2)
    _save(ann, submitted, verdicts=[verdict("OK")])
    ann.post(f"{API}/frames/{submitted}/review", json={"action": "submit"})
    uncertain = frame(3, edge("WARN", 0.2))
    ng = frame(4, edge("NG", 0.9))
    disputed = frame(5)  # two annotators disagree
    _save(ann, disputed, verdicts=[verdict("OK", "ann")])
    _save(bob, disputed, verdicts=[verdict("NG", "bob")])
    overruled = frame(6, edge("NG", 0.95))  # a human says OK where the machine said NG
    _save(ann, overruled, annotations=[], verdicts=[verdict("OK")])
    done = frame(7)
    _save(ann, done, verdicts=[verdict("OK")])
    ann.post(f"{API}/frames/{done}/review", json={"action": "submit"})
    server.admin.post(f"{API}/frames/{done}/review", json={"action": "accept"})

    queue = server.admin.get(f"{API}/projects/{pid}/review-queue").json()
    order = [entry["frame"]["id"] for entry in queue["items"]]
    assert queue["total"] == 6  # the accepted frame is not in the queue
    assert set(order[:2]) == {disputed, overruled}
    assert order[2:] == [ng, uncertain, submitted, plain]
    reasons = {entry["frame"]["id"]: entry["reasons"] for entry in queue["items"]}
    assert any("disagree" in r for r in reasons[disputed])
    assert "NG" in reasons[ng]
    assert any("low model confidence (0.20)" in r for r in reasons[uncertain])
    assert reasons[submitted] == ["submitted for review"]
    priorities = [entry["priority"] for entry in queue["items"]]
    assert priorities == sorted(priorities, reverse=True)
