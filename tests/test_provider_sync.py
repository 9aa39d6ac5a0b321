"""C3.2 sync providers from 买单 by scanning a code; C3.3 bind a provider to the assistant."""
from __future__ import annotations

from chalicelib.models.providers import Provider
from chalicelib.models.qrcodes import QrCode


def _sync(user, phone, admin="admin-01"):
    code = user.call("POST", "/v1/provider-sync-codes").json
    page = phone(admin).open(code["url"])
    return code, page


def test_an_admin_syncs_every_provider_they_hold_into_the_account_that_showed_the_code(bound_console, phone, sandbox):
    code, page = _sync(bound_console, phone)
    assert page.page_id == "provider-sync-confirm" and "请勿将此二维码分享" in page.html
    held = sandbox.providers_of("admin-01")
    assert all(p.sp_mchid in page.html for p in held)
    assert bound_console.call("GET", f"/v1/provider-sync-codes/{code['id']}").json["state"] == "scanned"

    assert page.confirm().page_id == "provider-sync-done"

    status = bound_console.call("GET", f"/v1/provider-sync-codes/{code['id']}").json
    assert status["state"] == "synced" and status["result"]["created"] == len(held) == 5
    listed = bound_console.call("GET", "/v1/providers?limit=100").json["data"]
    assert sorted(p["sp_mchid"] for p in listed) == sorted(p.sp_mchid for p in held)
    assert {p["source"] for p in listed} == {"maidan"}


def test_a_used_code_whose_counts_are_not_yet_recorded_reads_syncing(bound_console, phone):
    code, page = _sync(bound_console, phone)
    assert page.confirm().page_id == "provider-sync-done"
    QrCode(code["id"]).update(actions=[QrCode.result.remove()])

    status = bound_console.call("GET", f"/v1/provider-sync-codes/{code['id']}").json
    assert status["state"] == "syncing" and status["result"] is None


def test_syncing_again_updates_and_never_duplicates(bound_console, phone, sandbox):
    _sync(bound_console, phone)[1].confirm()
    account_id = bound_console.call("GET", "/v1/me").json["id"]
    first = sandbox.providers_of("admin-01")[0]
    provider = Provider.get(account_id, first.sp_mchid)
    provider.update(actions=[Provider.name.set("旧名字")])

    code, page = _sync(bound_console, phone)
    page.confirm()

    result = bound_console.call("GET", f"/v1/provider-sync-codes/{code['id']}").json["result"]
    assert (result["created"], result["updated"], result["unchanged"]) == (0, 1, 4)
    assert len(bound_console.call("GET", "/v1/providers?limit=100").json["data"]) == 5
    assert Provider.get(account_id, first.sp_mchid).name == first.name


def test_a_provider_held_by_another_account_is_reported_not_moved(bound_console, console, phone, sandbox):
    _sync(bound_console, phone)[1].confirm()
    other = console.sign_up_and_in("other@example.com")
    phone("admin-02").open(other.call("POST", "/v1/wechat-binding-codes").json["url"]).confirm()

    code, page = _sync(other, phone, admin="admin-01")
    page.confirm()

    result = other.call("GET", f"/v1/provider-sync-codes/{code['id']}").json["result"]
    assert result["elsewhere"] == 5 and result["created"] == 0
    assert other.call("GET", "/v1/providers").json["data"] == []
    assert len(bound_console.call("GET", "/v1/providers?limit=100").json["data"]) == 5


def test_a_non_admin_cannot_sync(bound_console, phone):
    code, page = _sync(bound_console, phone, admin="staff-01")

    assert page.status == 403 and page.page_id == "not-maidan-admin"
    assert bound_console.call("GET", "/v1/providers").json["data"] == []


def test_an_expired_or_used_sync_code_syncs_nothing(bound_console, phone):
    code, page = _sync(bound_console, phone)
    stored = QrCode.get(code["id"])
    stored.update(actions=[QrCode.expires_at.set(stored.created_at - 1)])
    assert page.confirm().page_id == "code-expired"

    code, page = _sync(bound_console, phone)
    second_phone = phone("admin-01").open(code["url"])
    assert page.confirm().page_id == "provider-sync-done"
    assert second_phone.confirm().page_id == "code-used"
    assert bound_console.call("GET", f"/v1/provider-sync-codes/{code['id']}").json["result"]["created"] == 5


def test_another_accounts_sync_code_is_not_found(bound_console, console):
    code = bound_console.call("POST", "/v1/provider-sync-codes").json
    stranger = console.sign_up_and_in("stranger@example.com")

    assert stranger.call("GET", f"/v1/provider-sync-codes/{code['id']}").status in (403, 404)
    assert stranger.call("GET", code["images"]["png"], headers={"accept": "image/png"}).status == 404


def test_with_one_bound_wechat_a_provider_is_bound_to_the_assistant_at_once(bound_console, phone, sandbox):
    _sync(bound_console, phone)[1].confirm()
    sp_mchid = sandbox.providers_of("admin-01")[0].sp_mchid

    answer = bound_console.call("POST", f"/v1/providers/{sp_mchid}/maidan-assistant-binding")

    assert answer.status == 200 and answer.json["outcome"] == "bound"
    assert answer.json["provider"]["maidan_assistant"]["bound"] is True
    entries = bound_console.call("GET", f"/v1/audit-log?entity=provider%23{sp_mchid}").json["data"]
    assert entries[0]["action"] == "provider.maidan_assistant_bound"


def test_binding_a_provider_whose_admin_is_someone_else_fails_with_mismatch(bound_console, sandbox):
    other_provider = sandbox.providers_of("admin-02")[0]
    bound_console.call("POST", "/v1/providers", {"sp_mchid": other_provider.sp_mchid, "name": other_provider.name})

    answer = bound_console.call("POST", f"/v1/providers/{other_provider.sp_mchid}/maidan-assistant-binding")

    assert answer.status == 409 and answer.error_code == "maidan_admin_mismatch"


def test_a_bound_wechat_that_never_opened_the_assistant_is_told_how(bound_console, sandbox):
    bound_console.call("POST", "/v1/providers", {"sp_mchid": "1901000000", "name": "演示服务商01"})
    sandbox.users["admin-01"].maidan_status = "NOT_OPENED"

    answer = bound_console.call("POST", "/v1/providers/1901000000/maidan-assistant-binding")

    assert answer.status == 409 and answer.error_code == "maidan_assistant_not_opened"
    assert "微信买单服务商助手" in answer.json["error"]["message"]


def test_with_several_bound_wechats_the_providers_admin_scans_and_confirms(bound_console, phone, sandbox):
    phone("admin-02").open(bound_console.call("POST", "/v1/wechat-binding-codes").json["url"]).confirm()
    provider = sandbox.providers_of("admin-02")[0]
    bound_console.call("POST", "/v1/providers", {"sp_mchid": provider.sp_mchid, "name": provider.name})

    answer = bound_console.call("POST", f"/v1/providers/{provider.sp_mchid}/maidan-assistant-binding")
    assert answer.status == 202 and answer.json["outcome"] == "scan_code"
    code = answer.json["code"]
    assert phone("admin-01").open(code["url"]).page_id == "maidan-admin-mismatch"

    admin = phone("admin-02").open(code["url"])
    assert admin.page_id == "assistant-bind-confirm"
    assert admin.confirm().page_id == "assistant-bind-done"

    assert bound_console.call("GET", f"/v1/maidan-assistant-binding-codes/{code['id']}").json["state"] == "bound"
    assert bound_console.call("GET", f"/v1/providers/{provider.sp_mchid}").json["maidan_assistant"]["bound"] is True


def _account_bound_to(console, phone, email, admin):
    user = console.sign_up_and_in(email)
    assert phone(admin).open(user.call("POST", "/v1/wechat-binding-codes").json["url"]).confirm().page_id == \
        "binding-done"
    user.account_id = user.call("GET", "/v1/me").json["id"]
    return user


def test_a_provider_typed_in_by_an_account_that_cannot_prove_it_is_taken_over_by_its_maidan_admins_sync(
        bound_console, console, phone, sandbox):
    from chalicelib.models.accounts import UniqueClaim
    squatted = sandbox.providers_of("admin-01")[2]
    squatter = _account_bound_to(console, phone, "squatter@example.com", "admin-02")
    assert squatter.call("POST", "/v1/providers", {"sp_mchid": squatted.sp_mchid, "name": "抢先录入"}).status == 201

    code, page = _sync(bound_console, phone)
    page.confirm()

    result = bound_console.call("GET", f"/v1/provider-sync-codes/{code['id']}").json["result"]
    assert (result["created"], result["taken_over"], result["elsewhere"]) == (5, 1, 0)
    assert {p["sp_mchid"]: p["outcome"] for p in result["providers"]}[squatted.sp_mchid] == "taken_over"
    owner_id = bound_console.call("GET", "/v1/me").json["id"]
    assert UniqueClaim.get(f"sp_mchid#{squatted.sp_mchid}").owner_id == owner_id
    mine = bound_console.call("GET", f"/v1/providers/{squatted.sp_mchid}").json
    assert (mine["name"], mine["source"], mine["claim"]) == (squatted.name, "maidan",
                                                             {"state": "held", "proven": True, "lost_at": None})
    lost = squatter.call("GET", f"/v1/providers/{squatted.sp_mchid}").json
    assert lost["claim"]["state"] == "lost" and lost["name"] == "抢先录入"
    [entry] = squatter.call("GET", f"/v1/audit-log?entity=provider%23{squatted.sp_mchid}").json["data"][:1]
    assert (entry["action"], entry["actor"]) == ("provider.claim_lost", "platform")
    refused = squatter.call("POST", f"/v1/providers/{squatted.sp_mchid}/maidan-assistant-binding")
    assert refused.status == 409 and refused.error_code == "provider_claim_lost"


def test_a_provider_typed_in_by_an_account_whose_bound_wechat_administers_it_is_not_taken_over(
        bound_console, console, phone, sandbox):
    provider = sandbox.providers_of("admin-01")[0]
    holder = _account_bound_to(console, phone, "holder@example.com", "admin-01")
    holder.call("POST", "/v1/providers", {"sp_mchid": provider.sp_mchid, "name": "手工录入"})

    code, page = _sync(bound_console, phone)
    page.confirm()

    result = bound_console.call("GET", f"/v1/provider-sync-codes/{code['id']}").json["result"]
    assert {p["sp_mchid"]: p["outcome"] for p in result["providers"]}[provider.sp_mchid] == "elsewhere"
    assert holder.call("GET", f"/v1/providers/{provider.sp_mchid}").json["claim"]["state"] == "held"
    assert bound_console.call("GET", f"/v1/providers/{provider.sp_mchid}").status == 404


def test_a_provider_its_account_proved_by_binding_it_to_the_assistant_is_never_taken_over(
        bound_console, console, phone, sandbox):
    provider = sandbox.providers_of("admin-01")[0]
    holder = _account_bound_to(console, phone, "holder@example.com", "admin-01")
    holder.call("POST", "/v1/providers", {"sp_mchid": provider.sp_mchid, "name": "手工录入"})
    assert holder.call("POST", f"/v1/providers/{provider.sp_mchid}/maidan-assistant-binding").status == 200
    sandbox.users["admin-01"].maidan_status = "NOT_ADMIN"  # 买单 no longer names the holder's WeChat
    sandbox.add_user("admin-01-successor", "接任管理员", "ADMIN")

    assert holder.call("GET", f"/v1/providers/{provider.sp_mchid}").json["claim"] == {
        "state": "held", "proven": True, "lost_at": None}
    from chalicelib import providers
    owner_id = bound_console.call("GET", "/v1/me").json["id"]
    assert providers.upsert_from_maidan(owner_id, owner_id, provider.sp_mchid, provider.name) == "elsewhere"
    assert holder.call("GET", f"/v1/providers/{provider.sp_mchid}").json["claim"]["state"] == "held"


def test_syncing_a_hand_made_provider_of_ones_own_proves_it(bound_console, phone, sandbox):
    provider = sandbox.providers_of("admin-01")[0]
    bound_console.call("POST", "/v1/providers", {"sp_mchid": provider.sp_mchid, "name": provider.name})
    assert bound_console.call("GET", f"/v1/providers/{provider.sp_mchid}").json["claim"]["proven"] is False

    code, page = _sync(bound_console, phone)
    page.confirm()

    result = bound_console.call("GET", f"/v1/provider-sync-codes/{code['id']}").json["result"]
    assert {p["sp_mchid"]: p["outcome"] for p in result["providers"]}[provider.sp_mchid] == "unchanged"
    assert bound_console.call("GET", f"/v1/providers/{provider.sp_mchid}").json["claim"]["proven"] is True


def test_the_wechat_that_last_proved_a_provider_is_asked_first_and_a_removed_one_no_longer_counts(
        bound_console, phone, sandbox, wire):
    from chalicelib import maidan_admins
    second = bound_console.call("POST", "/v1/wechat-binding-codes").json
    assert phone("admin-02").open(second["url"]).confirm().page_id == "binding-done"
    account_id = bound_console.call("GET", "/v1/me").json["id"]
    held_by_admin_02 = sandbox.providers_of("admin-02")[0].sp_mchid

    def lookups_to_prove() -> tuple[bool, int]:
        before = len(wire.requests)
        proved = maidan_admins.account_administers(account_id, held_by_admin_02)
        return proved, sum(1 for r in wire.requests[before:] if r.url.path.endswith("/assistant/admin-lookups"))

    assert lookups_to_prove()[0] is True
    assert lookups_to_prove() == (True, 1)
    openid = sandbox.users["admin-02"].openid(sandbox.config.wechat_app_id)
    assert bound_console.call("DELETE", f"/v1/wechat-bindings/{openid}").status == 200
    assert lookups_to_prove() == (False, 1)
