"""freshbooks_auth.answers: users/me and error bodies, read once for the tap and the bridge.

The error bodies are the shapes freshbooks-api.md lists per API family (with their sources).
"""

from __future__ import annotations

import pytest

from freshbooks_auth.answers import MAX_ERROR_TEXT, accounting_accounts, error_text

ME = {
    "response": {
        "id": 1,
        "business_memberships": [
            {"role": "owner", "business": {"id": 11, "business_uuid": "u-11", "account_id": "AAA"}},
            {"role": "client", "business": {"id": 12, "business_uuid": "u-12", "account_id": None}},
            {"role": "owner", "business": {"id": 13, "business_uuid": "u-13", "account_id": "BBB"}},
            {"role": "admin", "business": {"id": 11, "business_uuid": "u-11", "account_id": "AAA"}},
            None,
        ],
    }
}


def test_accounting_accounts_in_order_once_each_without_client_roles() -> None:
    assert accounting_accounts(ME) == [
        {"account_id": "AAA", "business_id": 11, "business_uuid": "u-11"},
        {"account_id": "BBB", "business_id": 13, "business_uuid": "u-13"},
    ]
    assert accounting_accounts(ME["response"]) == accounting_accounts(ME)  # an unwrapped body too


@pytest.mark.parametrize(
    "body", [None, {}, {"response": None}, {"response": {"business_memberships": "x"}}, []]
)
def test_accounting_accounts_of_odd_bodies_is_empty(body: object) -> None:
    assert accounting_accounts(body) == []


@pytest.mark.parametrize(
    ("family", "body", "text"),
    [
        (
            "accounting",
            {"response": {"errors": [{"errno": 1012, "field": "userid", "message": "Client not found."}]}},
            "Client not found.",
        ),
        (
            "accounting, reverted 2023 style",
            {
                "code": 5,
                "message": "Request failed with status_code: 404",
                "details": [{"reason": "1012", "metadata": {"message": "Client not found."}}],
            },
            "Request failed with status_code: 404 (Client not found.)",
        ),
        (
            "oauth",
            {
                "error": "unauthenticated",
                "error_description": "This action requires authentication to continue.",
            },
            "This action requires authentication to continue.",
        ),
        (
            "project 404",
            {"error": "Requested resource could not be found."},
            "Requested resource could not be found.",
        ),
        ("project validation", {"errno": 2001, "error": {"title": "required"}}, "title: required"),
        (
            "events 422",
            {
                "errno": 422,
                "message": "The request was well-formed but was unable to be followed.",
                "details": ["event: Value error, Unrecognized event.", "uri: Input should be a valid URL"],
            },
            "The request was well-formed but was unable to be followed. "
            "(event: Value error, Unrecognized event.; uri: Input should be a valid URL)",
        ),
        (
            "ledger",
            {
                "errors": {
                    "message": "Request failed with status code 404",
                    "status": 404,
                    "details": [{"reason": "Not found."}],
                }
            },
            "Request failed with status code 404",
        ),
    ],
)
def test_error_text_of_every_family(family: str, body: object, text: str) -> None:
    assert error_text(body, fallback="Not Found") == text, family


def test_error_text_falls_back_and_stays_one_short_line() -> None:
    assert error_text(None, fallback="  Bad\n Gateway ") == "Bad Gateway"
    assert error_text({}, fallback="Forbidden") == "Forbidden"
    assert error_text({"unexpected": 1}) == "{'unexpected': 1}"
    long = error_text({"message": "x\n" * 1000})
    assert len(long) == MAX_ERROR_TEXT and "\n" not in long
