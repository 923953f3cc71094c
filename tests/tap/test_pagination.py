"""The paginator against bare responses of each envelope (like meltano/sdk's own tests)."""

from __future__ import annotations

import json

import requests

from tap_freshbooks import envelopes


def response(body: dict) -> requests.Response:
    resp = requests.Response()
    resp.status_code = 200
    resp._content = json.dumps(body).encode()
    return resp


def accounting(page: int, pages: int, n: int = 1) -> requests.Response:
    return response(
        {
            "response": {
                "result": {"clients": [{}] * n, "page": page, "pages": pages, "per_page": 100, "total": pages}
            }
        }
    )


def test_accounting_walks_to_last_page() -> None:
    paginator = envelopes.FreshBooksPaginator(envelopes.ACCOUNTING)
    assert paginator.current_value == 1
    paginator.advance(accounting(1, 3))
    assert (paginator.current_value, paginator.finished) == (2, False)
    paginator.advance(accounting(2, 3))
    paginator.advance(accounting(3, 3))
    assert paginator.finished
    assert paginator.count == 3


def test_empty_collection_pages_zero_stops() -> None:
    paginator = envelopes.FreshBooksPaginator(envelopes.ACCOUNTING)
    paginator.advance(accounting(1, 0, n=0))
    assert paginator.finished


def test_project_meta_envelope() -> None:
    paginator = envelopes.FreshBooksPaginator(envelopes.PROJECT)
    paginator.advance(
        response({"meta": {"page": 1, "pages": 2, "per_page": 100, "total": 150}, "projects": [{}]})
    )
    assert not paginator.finished
    paginator.advance(
        response({"meta": {"page": 2, "pages": 2, "per_page": 100, "total": 150}, "projects": [{}]})
    )
    assert paginator.finished


def test_meta_without_pages_and_ledger_are_single_page() -> None:
    for envelope, body in [
        (envelopes.PROJECT, {"meta": {"page": 1, "per_page": 5, "total": 1}, "response": []}),
        (envelopes.LEDGER, {"data": [{"uuid": "x"}]}),
    ]:
        paginator = envelopes.FreshBooksPaginator(envelope)
        paginator.advance(response(body))
        assert paginator.finished


def test_server_echoing_wrong_page_cannot_loop() -> None:
    paginator = envelopes.FreshBooksPaginator(envelopes.ACCOUNTING)
    paginator.advance(accounting(1, 3))
    paginator.advance(accounting(1, 3))  # server says page 1 again: we still move on
    assert paginator.current_value == 3


def test_items_of_each_envelope() -> None:
    assert envelopes.ACCOUNTING.items(
        {"response": {"result": {"other_income": [{"incomeid": 1}]}}}, "other_income"
    ) == [{"incomeid": 1}]
    assert envelopes.PROJECT.items({"meta": {}, "time_entries": [{"id": 2}]}, "time_entries") == [{"id": 2}]
    assert envelopes.LEDGER.items({"data": [{"uuid": "u"}]}, "data") == [{"uuid": "u"}]
    assert envelopes.ACCOUNTING.single({"response": {"result": {"invoice": {"id": 3}}}}, "invoice") == {
        "id": 3
    }
