"""Nobody skips review: a save may move records to accepted or rejected only for a caller who
may review (issue 10: an annotator saved records as accepted with a reviewer's name)."""

from __future__ import annotations

from typing import Any

from server_support import API, Server
from test_api_annotations import box, setup


def _put(client: Any, fid: str, item: dict[str, Any], revision: int) -> Any:
    return client.put(f"{API}/frames/{fid}/annotations", json={"item": item, "revision": revision})


def _accepted(record: dict[str, Any]) -> dict[str, Any]:
    review = {"state": "accepted", "reviewer": "rev", "comment": "", "updated": None}
    return {**record, "review": review}


def test_annotator_cannot_save_records_as_accepted(server: Server) -> None:
    pid, fid = setup(server)
    annotator = server.user("ann", pid, "annotator")
    server.user("rev", pid, "reviewer")
    current = annotator.get(f"{API}/frames/{fid}/annotations").json()
    item = {**current["item"], "annotations": [_accepted(box())]}
    refused = _put(annotator, fid, item, current["revision"])
    assert refused.status_code == 403, refused.text
    assert "only a reviewer" in refused.json()["detail"]
    frame = annotator.get(f"{API}/frames/{fid}").json()
    assert frame["status"] != "accepted"
    queue = annotator.get(f"{API}/projects/{pid}/review-queue").json()
    assert fid in {e["frame"]["id"] for e in queue["items"]}
    rejected = {**box(), "review": {"state": "rejected", "reviewer": "rev", "comment": "bad"}}
    item = {**current["item"], "annotations": [rejected]}
    assert _put(annotator, fid, item, current["revision"]).status_code == 403
    # a reviewer's token without the review scope is no reviewer either
    reviewer = server.login("rev")
    annotate_only = server.token(reviewer, ["read", "annotate"])
    item = {**current["item"], "annotations": [_accepted(box())]}
    assert _put(annotate_only, fid, item, current["revision"]).status_code == 403
    # a reviewer (session) may
    assert _put(reviewer, fid, item, current["revision"]).status_code == 200


def test_annotator_keeps_accepted_records_but_cannot_change_them(server: Server) -> None:
    pid, fid = setup(server)
    annotator = server.user("ann", pid, "annotator")
    reviewer = server.user("rev", pid, "reviewer")
    current = annotator.get(f"{API}/frames/{fid}/annotations").json()
    item = {**current["item"], "annotations": [box()]}
    assert _put(annotator, fid, item, current["revision"]).status_code == 200
    assert annotator.post(f"{API}/frames/{fid}/review", json={"action": "submit"}).is_success
    assert reviewer.post(f"{API}/frames/{fid}/review", json={"action": "accept"}).is_success
    current = annotator.get(f"{API}/frames/{fid}/annotations").json()
    (accepted,) = current["item"]["annotations"]
    # sending the accepted record back unchanged next to a new draft is fine
    item = {**current["item"], "annotations": [accepted, box(ident="a2")]}
    saved = _put(annotator, fid, item, current["revision"])
    assert saved.status_code == 200, saved.text
    # moving the accepted box while it stays accepted is not
    moved = {**accepted, "shape": {**accepted["shape"], "x": 10}}
    item = {**current["item"], "annotations": [moved]}
    assert _put(annotator, fid, item, saved.json()["revision"]).status_code == 403
    # an accepted record copied under a new id is not either
    item = {**current["item"], "annotations": [accepted, {**accepted, "id": "copy"}]}
    assert _put(annotator, fid, item, saved.json()["revision"]).status_code == 403
    # editing it back to draft is
    item = {**current["item"], "annotations": [{**moved, "review": {"state": "draft"}}]}
    assert _put(annotator, fid, item, saved.json()["revision"]).status_code == 200
