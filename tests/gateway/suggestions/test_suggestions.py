"""`GET /v1/suggestions` and `POST /v1/suggestions/improve` through the app: who sees whose
history, languages, and the rule-based improvements."""

from __future__ import annotations

from gateway.suggestions.service import templates
from tests.conftest import Gateway, Inbox
from tests.gateway.suggestions.helpers import as_customer, customer_id, history, seed, suggestions
from tests.gateway.teams.helpers import join, new_team


async def test_history_never_crosses_tenants_or_customers(gateway: Gateway) -> None:
    gw = gateway
    tenant, other = await gw.tenant(), await gw.tenant()
    alice, bob = (await customer_id(gw, tenant, "alice"), await customer_id(gw, tenant, "bob"))
    await seed(gw, tenant, "a red fox sleeping in snow", customer=alice)
    await seed(gw, tenant, "a red fox on a bicycle", customer=bob)
    await seed(gw, tenant, "a red fox logo for the shop")  # the tenant's own
    await seed(gw, other, "a red fox from another tenant")
    await seed(gw, tenant, "a red fox that failed", customer=alice, status="failed")
    await seed(gw, tenant, "a red fox that was deleted", customer=alice, deleted=True)
    await seed(gw, tenant, "a red fox as audio", customer=alice, media_type="audio")

    seen = await suggestions(gw, as_customer(tenant, "alice"), context="red fox")
    assert history(seen) == {"a red fox sleeping in snow"}
    assert history(await suggestions(gw, as_customer(tenant, "bob"), context="fox")) == {
        "a red fox on a bicycle"}
    assert history(await suggestions(gw, tenant.auth, context="red fox")) == {
        "a red fox sleeping in snow", "a red fox on a bicycle", "a red fox logo for the shop"}
    assert history(await suggestions(gw, other.auth, context="red fox")) == {
        "a red fox from another tenant"}
    # A customer with no history of its own only gets templates.
    assert history(await suggestions(gw, as_customer(tenant, "carol"), context="fox")) == set()


async def test_a_teams_prompts_show_to_its_members_only(gateway: Gateway,
                                                        smtp_server: Inbox) -> None:
    gw = gateway
    team = await new_team(gw, owner="alice")
    alice = await customer_id(gw, team.tenant, "alice")
    await seed(gw, team.tenant, "a neon team poster", customer=alice, team=team.id)
    carol = await join(gw, smtp_server, team, "carol")
    with_team = {**carol, "X-Team-Id": team.id}
    assert history(await suggestions(gw, with_team, context="poster")) == {
        "a neon team poster"}
    assert history(await suggestions(gw, carol, context="poster")) == set()
    dave = as_customer(team.tenant, "dave", **{"X-Team-Id": team.id})
    r = await gw.client.get("/v1/suggestions", headers=dave, params={"type": "image"})
    assert r.status_code == 404, r.text


async def test_templates_come_in_the_asked_language_and_history_keeps_its_own(
        gateway: Gateway) -> None:
    gw = gateway
    tenant = await gw.tenant()
    await seed(gw, tenant, "a paper boat in the rain")
    body = await suggestions(gw, tenant.auth, lang="ar", limit=8)
    assert body["object"] == "list"
    assert "model_error" not in body or body["model_error"] is None
    by_source = {s["source"] for s in body["data"]}
    assert by_source == {"template", "history"}
    for item in body["data"]:
        if item["source"] == "template":
            assert item["lang"] == "ar"
            assert item["text"] in templates("ar")["image"]
        else:
            assert (item["text"], item["lang"]) == ("a paper boat in the rain", "en")
    # Accept-Language picks Arabic when no lang is given; English is the fallback.
    r = await gw.client.get("/v1/suggestions", params={"type": "video"},
                            headers={**tenant.auth, "Accept-Language": "ar-SA,en;q=0.5"})
    assert {s["text"] for s in r.json()["data"]} <= set(templates("ar")["video"])
    r = await gw.client.get("/v1/suggestions", params={"type": "model_3d", "limit": 3},
                            headers=tenant.auth)
    assert [s["text"] for s in r.json()["data"]] == templates("en")["model_3d"][:3]


async def test_context_ranks_the_best_match_first_and_arabic_variants_match(
        gateway: Gateway) -> None:
    gw = gateway
    tenant = await gw.tenant()
    await seed(gw, tenant, "قطة تحت الإضاءةِ الذهبيّة")
    body = await suggestions(gw, tenant.auth, context="اضاءه ذهبيه", lang="ar")
    first = body["data"][0]
    assert (first["text"], first["source"], first["score"], first["lang"]) == (
        "قطة تحت الإضاءةِ الذهبيّة", "history", 1.0, "ar")
    body = await suggestions(gw, tenant.auth, context="lighthouse cliff dusk", lang="en")
    assert body["data"][0]["text"].startswith("A lighthouse on a rocky cliff at dusk")
    assert body["data"][0]["score"] == 1.0


async def test_bad_input_is_a_422(gateway: Gateway) -> None:
    gw = gateway
    tenant = await gw.tenant()
    for params in ({"type": "text"}, {"type": "image", "lang": "fr"},
                   {"type": "image", "limit": 0}, {}):
        r = await gw.client.get("/v1/suggestions", headers=tenant.auth, params=params)
        assert r.status_code in (400, 422), (params, r.text)
        assert "error" in r.json()
    r = await gw.client.post("/v1/suggestions/improve", headers=tenant.auth,
                             json={"type": "image", "prompt": ""})
    assert r.status_code in (400, 422), r.text


async def test_improve_reports_missing_aspects_in_the_requests_language(
        gateway: Gateway) -> None:
    gw = gateway
    tenant = await gw.tenant()
    r = await gw.client.post("/v1/suggestions/improve", headers=tenant.auth,
                             json={"type": "video", "prompt": "A dog running through a park, "
                                   "photorealistic, golden hour, wide shot, warm colours"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [m["aspect"] for m in body["missing"]] == ["camera_motion", "pacing"]
    assert len(body["variants"]) == 3
    assert all(v["source"] == "rules" for v in body["variants"])
    r = await gw.client.post("/v1/suggestions/improve",
                             headers={**tenant.auth, "Accept-Language": "ar"},
                             json={"type": "design", "prompt": "ملصق مخبز. العنوان: أشهى خبز "
                                   "طازج وأطيب المعجنات في المدينة كلها منذ سنوات طويلة"})
    body = r.json()
    assert [m["aspect"] for m in body["missing"]] == ["headline_length", "call_to_action"]
    assert body["missing"][1]["message"].startswith("أضف دعوة للإجراء")
    assert all("دعوة للإجراء" in v["text"] for v in body["variants"])
