"""Cursors are opaque and bound to the account and the list that made them."""
from __future__ import annotations

import base64

SP_MCHID = "1900000109"


def _owner_with_merchants(bound_console):
    assert bound_console.call("POST", "/v1/providers", {"sp_mchid": SP_MCHID, "name": "演示服务商"}).status == 201
    for number in range(3):
        assert bound_console.call("POST", "/v1/sub-merchants", {"sp_mchid": SP_MCHID, "name": f"面馆{number}"}).status == 201
    return bound_console


def test_a_cursor_reveals_no_key_and_pages_on_for_its_own_account(bound_console):
    owner = _owner_with_merchants(bound_console)
    account_id = owner.call("GET", "/v1/me").json["id"]

    first = owner.call("GET", "/v1/sub-merchants?limit=2").json
    second = owner.call("GET", f"/v1/sub-merchants?limit=2&cursor={first['next_cursor']}").json

    cursor = first["next_cursor"]
    opened = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    assert account_id.encode() not in opened and b"merchant_id" not in opened and account_id not in cursor
    assert len(second["data"]) == 1 and {m["id"] for m in first["data"]}.isdisjoint({m["id"] for m in second["data"]})


def test_another_accounts_cursor_is_refused_naming_the_cursor(bound_console, console, phone):
    owner = _owner_with_merchants(bound_console)
    cursor = owner.call("GET", "/v1/sub-merchants?limit=1").json["next_cursor"]
    stranger = console.sign_up_and_in("stranger@example.com")
    phone("admin-02").open(stranger.call("POST", "/v1/wechat-binding-codes").json["url"]).confirm()

    answer = stranger.call("GET", f"/v1/sub-merchants?limit=1&cursor={cursor}")

    assert answer.status == 400 and answer.json["error"]["param"] == "cursor"


def test_a_cursor_of_another_list_or_altered_is_refused(bound_console):
    owner = _owner_with_merchants(bound_console)
    cursor = owner.call("GET", "/v1/sub-merchants?limit=1").json["next_cursor"]
    altered = cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BB")

    for path in (f"/v1/jobs?cursor={cursor}", f"/v1/sub-merchants?cursor={altered}", "/v1/sub-merchants?cursor=%E4%B8%AD"):
        answer = owner.call("GET", path)
        assert answer.status == 400 and answer.json["error"]["param"] == "cursor", path


def test_a_cursor_continues_only_the_filter_that_made_it(bound_console):
    owner = _owner_with_merchants(bound_console)
    by_name = owner.call("GET", "/v1/sub-merchants?limit=1&name=面馆").json["next_cursor"]
    whole = owner.call("GET", "/v1/sub-merchants?limit=1").json["next_cursor"]

    for path in (f"/v1/sub-merchants?limit=1&cursor={by_name}", f"/v1/sub-merchants?limit=1&channel=maidan&cursor={whole}",
                 f"/v1/sub-merchants?limit=1&name=面&cursor={by_name}"):
        answer = owner.call("GET", path)
        assert answer.status == 400 and answer.json["error"]["param"] == "cursor", path
    assert owner.call("GET", f"/v1/sub-merchants?limit=1&name=面馆&cursor={by_name}").status == 200
