"""The MailWizz stand-in is strict: it refuses what MailWizz 2.1.13 refuses, with MailWizz's codes and words."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from tests.standins.mailwizz_api import MailwizzApiStandIn

pytestmark = pytest.mark.integration

KEY = "a" * 40
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def standin() -> Iterator[MailwizzApiStandIn]:
    server = MailwizzApiStandIn().start()
    server.add_customer("sos-expat", api_key=KEY)
    yield server
    server.stop()


@pytest.fixture
def http(standin: MailwizzApiStandIn) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=standin.url + "/", headers={"X-API-KEY": KEY}, timeout=5) as client:
        yield client


def _list(http: httpx.Client) -> str:
    body = (
        "general[name]=News&general[description]=Weekly&defaults[from_name]=SOS"
        "&defaults[from_email]=a%40b.example&defaults[reply_to]=a%40b.example"
    )
    answer = http.post("lists", content=body, headers=FORM)
    assert answer.status_code == 201, answer.text
    return answer.json()["list_uid"]


def test_auth_failures_are_400_never_401(standin: MailwizzApiStandIn) -> None:
    with httpx.Client(base_url=standin.url + "/", timeout=5) as anonymous:
        missing = anonymous.get("lists")
        wrong = anonymous.get("lists", headers={"X-API-KEY": "nope"})
        fallback = anonymous.get("lists", headers={"X-MW-PUBLIC-KEY": KEY})
    assert (missing.status_code, missing.json()["error"]) == (
        400,
        "Invalid API request params. Please refer to the documentation.",
    )
    assert (wrong.status_code, wrong.json()["error"]) == (400, "Invalid API key. Please refer to the documentation.")
    assert fallback.status_code == 200


def test_empty_pagination_is_all_nulls_and_per_page_is_clamped(http: httpx.Client) -> None:
    assert http.get("lists").json() == {
        "status": "success",
        "data": {
            "count": None,
            "total_pages": None,
            "current_page": None,
            "next_page": None,
            "prev_page": None,
            "records": [],
        },
    }
    for _ in range(12):
        _list(http)
    data = http.get("lists", params={"per_page": 1000, "page": 1}).json()["data"]
    assert (data["count"], data["total_pages"], data["next_page"], len(data["records"])) == ("12", 1.0, None, 12)
    data = http.get("lists", params={"per_page": 1}).json()["data"]
    assert (data["total_pages"], data["next_page"], len(data["records"])) == (2.0, 2, 10)


def test_list_validation_is_grouped_as_mailwizz_groups_it(http: httpx.Client) -> None:
    answer = http.post("lists", content="general[name]=N", headers=FORM)
    assert answer.status_code == 422
    assert answer.json() == {
        "status": "error",
        "error": {
            "general": {
                "description": "Description cannot be blank.",
                "name": "Name is too short (minimum is 2 characters).",
            }
        },
    }
    answer = http.post("lists", content="general[name]=News&general[description]=Weekly", headers=FORM)
    assert answer.json()["error"]["defaults"]["from_email"] == "From email cannot be blank."


def test_campaign_needs_every_required_field_and_an_existing_list(http: httpx.Client) -> None:
    answer = http.post("campaigns", content="campaign[name]=x", headers=FORM)
    assert answer.status_code == 422
    assert set(answer.json()["error"]) == {"from_name", "from_email", "subject", "reply_to", "to_name", "send_at"}
    fields = {
        "campaign[name]": "c",
        "campaign[from_name]": "f",
        "campaign[from_email]": "f@x.example",
        "campaign[subject]": "s",
        "campaign[reply_to]": "r@x.example",
        "campaign[to_name]": "[EMAIL]",
        "campaign[send_at]": "2030-01-02T09:30:00",
        "campaign[list_uid]": "nosuchlist1234",
        "campaign[template][content]": base64.b64encode(b"<p>x</p>").decode(),
    }
    answer = http.post("campaigns", data=fields)
    assert answer.json()["error"] == {"send_at": "The format of Send at is invalid."}
    fields["campaign[send_at]"] = "2030-01-02 09:30:00"
    answer = http.post("campaigns", data=fields)
    assert (answer.status_code, answer.json()["error"]) == (422, "Provided list does not exist.")
    fields["campaign[list_uid]"] = _list(http)
    fields["campaign[template][content]"] = "<p>not base64</p>"
    assert http.post("campaigns", data=fields).status_code == 422
    fields["campaign[template][content]"] = base64.b64encode(b"<p>x</p>").decode()
    created = http.post("campaigns", data=fields)
    assert created.status_code == 201 and set(created.json()) == {"status", "campaign_uid"}


def test_templates_refuse_content_that_is_not_base64(http: httpx.Client) -> None:
    answer = http.post("templates", data={"template[name]": "t", "template[content]": "<html>"})
    assert answer.status_code == 422 and "content" in answer.json()["error"]
    answer = http.post(
        "templates", data={"template[name]": "t", "template[content]": base64.b64encode(b"<b>").decode()}
    )
    assert answer.status_code == 201 and answer.json()["template_uid"]


def test_bulk_keeps_the_first_ten_thousand_and_still_answers_201(
    standin: MailwizzApiStandIn, http: httpx.Client
) -> None:
    standin.max_input_vars = None
    list_uid = _list(http)
    body = "&".join(f"subscribers[{i}][EMAIL]=u{i}%40example.com" for i in range(10_005))
    answer = http.post(f"lists/{list_uid}/subscribers/bulk", content=body, headers=FORM, timeout=60)
    assert answer.status_code == 201
    assert len(answer.json()["data"]["records"]) == 10_000


def test_bulk_reports_errors_per_item(http: httpx.Client) -> None:
    list_uid = _list(http)
    body = "subscribers[0][EMAIL]=ok%40example.com&subscribers[1][EMAIL]=bad&subscribers[2][EMAIL]=ok%40example.com"
    records = http.post(f"lists/{list_uid}/subscribers/bulk", content=body, headers=FORM).json()["data"]["records"]
    assert "subscriber_uid" in records[0]["data"] and "errors" not in records[0]
    assert records[1] == {"data": {"EMAIL": "bad"}, "errors": {"EMAIL": "Please provide a valid email address."}}
    assert records[2]["errors"] == {"EMAIL": "The subscriber already exists in this list."}


def test_single_subscriber_conflict_is_409(http: httpx.Client) -> None:
    list_uid = _list(http)
    assert http.post(f"lists/{list_uid}/subscribers", data={"EMAIL": "a@example.com"}).status_code == 201
    again = http.post(f"lists/{list_uid}/subscribers", data={"EMAIL": "a@example.com"})
    assert (again.status_code, again.json()["error"]) == (409, "The subscriber already exists in this list.")


def test_pause_unpause_is_a_toggle(standin: MailwizzApiStandIn, http: httpx.Client) -> None:
    list_uid = _list(http)
    fields = {
        "campaign[name]": "c",
        "campaign[from_name]": "f",
        "campaign[from_email]": "f@x.example",
        "campaign[subject]": "s",
        "campaign[reply_to]": "r@x.example",
        "campaign[to_name]": "[EMAIL]",
        "campaign[send_at]": "2030-01-02 09:30:00",
        "campaign[list_uid]": list_uid,
        "campaign[template][content]": base64.b64encode(b"<p>x</p>").decode(),
    }
    uid = http.post("campaigns", data=fields).json()["campaign_uid"]
    statuses = [http.put(f"campaigns/{uid}/pause-unpause").json()["campaign"]["status"] for _ in range(3)]
    assert statuses == ["paused", "sending", "paused"]


def test_unknown_routes_offline_and_injected_faults(standin: MailwizzApiStandIn, http: httpx.Client) -> None:
    assert http.get("nowhere").json() == {"status": "error", "error": "Page not found."}
    standin.fail_next(1, status=500)
    assert http.get("lists").status_code == 500
    standin.offline = True
    answer = http.get("lists")
    assert (answer.status_code, answer.json()["error"]) == (503, "Service Unavailable.")
    assert standin.calls["lists.index"] == 2
