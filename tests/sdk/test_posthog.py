"""The PostHog twin as the official `posthog` Python SDK sees it.

Every test makes a fresh `phc_…` project key (a fresh, isolated project) and
points `Posthog(host=…)` at the twin. Flags are defined through PostHog's
management API with a `phx_…` personal key (the SDK has no management
calls, so those go over plain HTTP), then evaluated by the SDK remotely
(`/flags/?v=4`) and locally (from `/flags/definitions`).
"""

from __future__ import annotations

import base64
import gzip
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
from posthog import Posthog
from posthog.request import APIError

import raw_http

PHX = "phx_sdk_tests_personal_key"


def new_project() -> str:
    return f"phc_{uuid.uuid4().hex}"


@pytest.fixture
def base(wt) -> str:
    return wt.base_url("posthog")


@pytest.fixture
def project() -> str:
    return new_project()


@pytest.fixture
def client(base, project):
    ph = Posthog(project, host=base, flush_at=1, sync_mode=True)
    yield ph
    ph.shutdown()


def http(base, method, path, body=None, key=PHX, headers=None, raw_body=None):
    """A plain HTTP call; returns (status, parsed JSON or None, headers)."""
    reply = raw_http.call(
        base + path, method, bearer=key, json_body=body, data=raw_body, headers=headers
    )
    return reply.status, reply.json, reply.headers


def events(base, project, **query):
    q = urllib.parse.urlencode(query)
    status, body, _ = http(base, "GET", f"/api/projects/{project}/events/?{q}")
    assert status == 200, body
    return body["results"]


def person(base, project, distinct_id):
    q = urllib.parse.urlencode({"distinct_id": distinct_id})
    status, body, _ = http(base, "GET", f"/api/projects/{project}/persons/?{q}")
    assert status == 200, body
    return body["results"][0] if body["results"] else None


def create_flag(base, project, **definition):
    status, body, _ = http(base, "POST", f"/api/projects/{project}/feature_flags/", definition)
    assert status == 201, body
    return body


def test_capture_reaches_the_project(base, project, client):
    sent = client.capture("signed_up", distinct_id="user-1", properties={"plan": "pro"})
    client.capture("$pageview", distinct_id="user-1", properties={"$current_url": "https://x.io"})
    got = events(base, project)
    assert [e["event"] for e in got] == ["$pageview", "signed_up"]
    signed_up = got[1]
    assert signed_up["uuid"] == str(sent)
    assert signed_up["distinct_id"] == "user-1"
    assert signed_up["properties"]["plan"] == "pro"
    assert signed_up["properties"]["$lib"] == "posthog-python"
    assert events(base, project, event="signed_up") == [signed_up]
    # Another project sees nothing.
    assert events(base, new_project()) == []


def test_batched_gzip_uploads(base, project):
    ph = Posthog(project, host=base, gzip=True, flush_at=50)
    try:
        for i in range(20):
            ph.capture("tick", distinct_id=f"d{i % 3}", properties={"i": i})
        ph.flush()
    finally:
        ph.shutdown()
    got = events(base, project, event="tick", limit=1000)
    assert sorted(e["properties"]["i"] for e in got) == list(range(20))
    # Paging through with `next`.
    status, first, _ = http(base, "GET", f"/api/projects/{project}/events/?limit=8")
    assert status == 200 and len(first["results"]) == 8
    seen = [e["uuid"] for e in first["results"]]
    nxt = first["next"]
    while nxt:
        path = urllib.parse.urlsplit(nxt)
        status, page, _ = http(base, "GET", f"{path.path}?{path.query}")
        seen += [e["uuid"] for e in page["results"]]
        nxt = page["next"]
    assert len(seen) == len(set(seen)) == 20


@pytest.mark.parametrize("compression", ["none", "gzip", "deflate"])
def test_capture_v1_protocol(wt, base, project, compression):
    failures = []
    ph = Posthog(project, host=base, capture_mode="v1", capture_compression=compression,
                 flush_at=10, on_error=lambda e, batch: failures.append(e))
    try:
        for i in range(3):
            ph.capture("v1-event", distinct_id="v1-user", properties={"i": i, "$set": {"via": "v1"}})
        ph.flush()
    finally:
        ph.shutdown()
    assert failures == []
    got = events(base, project, event="v1-event")
    assert sorted(e["properties"]["i"] for e in got) == [0, 1, 2]
    assert got[0]["properties"]["$lib"] == "posthog-python"
    assert person(base, project, "v1-user")["properties"] == {"via": "v1"}
    journal = wt.control("GET", "twins/posthog/requests?path=/i/v1/analytics/events&limit=1000")
    assert any(project in json.dumps(r) for r in journal["requests"]), "the SDK spoke capture v1"


def test_set_set_once_and_alias_build_persons(base, project, client):
    client.set(distinct_id="anon-1", properties={"email": "a@x.io", "plan": "free"})
    client.set_once(distinct_id="anon-1", properties={"plan": "ignored", "first_seen": "today"})
    client.set(distinct_id="user-9", properties={"plan": "pro"})
    client.alias(previous_id="anon-1", distinct_id="user-9")
    p = person(base, project, "user-9")
    assert p == person(base, project, "anon-1")
    assert set(p["distinct_ids"]) == {"anon-1", "user-9"}
    # The alias target (anon-1, the event's distinct id) keeps its values.
    assert p["properties"] == {"email": "a@x.io", "plan": "free", "first_seen": "today"}


def test_bad_project_key_reaches_on_error(base):
    failures = []
    ph = Posthog("not-a-phc-key", host=base, on_error=lambda e, batch: failures.append(e), max_retries=0)
    try:
        ph.capture("x", distinct_id="d")
        ph.flush()
    finally:
        ph.shutdown()
    assert failures and isinstance(failures[0], APIError)
    assert failures[0].status == 401
    assert "Project API key invalid" in failures[0].message


def test_raw_ingestion_formats(base, project):
    # posthog-js style: base64 `data=` form to /e/.
    doc = json.dumps([{"event": "js", "properties": {"distinct_id": "b", "token": project}}])
    form = urllib.parse.urlencode({"data": base64.b64encode(doc.encode()).decode()}).encode()
    status, body, _ = http(base, "POST", "/e/", key=None, raw_body=form,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (status, body) == (200, {"status": 1})
    # gzip-js: a gzipped JSON body flagged in the query string.
    packed = gzip.compress(json.dumps({"api_key": project, "event": "gz", "distinct_id": "c"}).encode())
    status, _, _ = http(base, "POST", "/i/v0/e/?compression=gzip-js", key=None, raw_body=packed)
    assert status == 200
    assert {e["event"] for e in events(base, project)} == {"js", "gz"}
    # Errors in PostHog's shape.
    status, body, _ = http(base, "POST", "/batch/", {"batch": [{"event": "a", "distinct_id": "b"}]}, key=None)
    assert status == 401
    assert body == {"type": "authentication_error", "code": "missing_api_key", "detail": body["detail"], "attr": None}
    status, body, _ = http(base, "POST", "/batch/", {"api_key": project, "batch": [{"distinct_id": "b"}]}, key=None)
    assert (status, body["type"], body["code"]) == (400, "validation_error", "invalid_payload")


def iso_millis(text: str) -> int:
    import datetime
    return int(datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def test_twin_clock_stamps_events(wt, base, project, client):
    wt.control("POST", "clock/freeze")
    try:
        wt.control("POST", "clock/advance", {"by": "48h"})
        now = wt.control("GET", "clock")["now_millis"]
        # No timestamp at all: twin time.
        status, _, _ = http(base, "POST", "/capture/", {"api_key": project, "event": "late", "distinct_id": "t"}, key=None)
        assert status == 200
        assert iso_millis(events(base, project, event="late")[0]["timestamp"]) == now
        # The SDK's own (real-clock) timestamp is corrected for skew against
        # its sent_at, as PostHog does, so it lands at twin time too.
        client.capture("sdk-late", distinct_id="t")
        sdk_stamped = iso_millis(events(base, project, event="sdk-late")[0]["timestamp"])
        assert now - 5_000 < sdk_stamped <= now
    finally:
        wt.control("POST", "clock/unfreeze")


def test_flag_crud_through_the_api(base, project):
    flag = create_flag(base, project, key="beta", name="Beta", filters={"groups": [{"properties": [], "rollout_percentage": 25}]})
    assert (flag["key"], flag["active"], flag["rollout_percentage"], flag["is_simple_flag"]) == ("beta", True, 25, True)
    status, listed, _ = http(base, "GET", f"/api/projects/{project}/feature_flags/")
    assert status == 200 and listed["count"] == 1 and listed["results"][0]["id"] == flag["id"]
    status, body, _ = http(base, "POST", f"/api/projects/{project}/feature_flags/", {"key": "beta"})
    assert (status, body["code"], body["attr"]) == (400, "unique", "key")
    status, body, _ = http(base, "PATCH", f"/api/projects/{project}/feature_flags/{flag['id']}/", {"active": False})
    assert status == 200 and body["active"] is False and body["version"] == 2
    status, body, _ = http(base, "DELETE", f"/api/projects/{project}/feature_flags/{flag['id']}/")
    assert status == 405 and "deleted" in body["detail"]
    status, _, _ = http(base, "PATCH", f"/api/projects/{project}/feature_flags/{flag['id']}/", {"deleted": True})
    assert status == 200
    status, _, _ = http(base, "GET", f"/api/projects/{project}/feature_flags/{flag['id']}/")
    assert status == 404
    # The numeric project id and @current reach the same project.
    status, proj, _ = http(base, "GET", f"/api/projects/@current/?token={project}")
    assert status == 200 and proj["api_token"] == project
    create_flag(base, proj["id"], key="again")
    status, listed, _ = http(base, "GET", f"/api/projects/{project}/feature_flags/")
    assert [f["key"] for f in listed["results"]] == ["again"]
    # Auth errors.
    status, body, _ = http(base, "GET", f"/api/projects/{project}/feature_flags/", key=None)
    assert (status, body["code"]) == (401, "not_authenticated")
    status, body, _ = http(base, "GET", f"/api/projects/{project}/feature_flags/", key=project)
    assert (status, body["code"]) == (401, "authentication_failed")


def test_remote_evaluation_with_person_properties(base, project, client):
    create_flag(base, project, key="pro-feature", filters={
        "groups": [{"properties": [{"key": "plan", "value": "pro", "operator": "exact", "type": "person"}],
                    "rollout_percentage": 100}],
        "payloads": {"true": json.dumps({"limit": 10})},
    })
    create_flag(base, project, key="corp", filters={
        "groups": [{"properties": [{"key": "email", "value": "@corp.io", "operator": "icontains", "type": "person"}]}],
    })
    assert client.evaluate_flags("u1").is_enabled("pro-feature") is False
    flags = client.evaluate_flags("u1", person_properties={"plan": "pro"})
    assert flags.is_enabled("pro-feature") is True
    assert flags.get_flag_payload("pro-feature") == {"limit": 10}
    # Properties stored through $set count too.
    client.set(distinct_id="u2", properties={"plan": "pro", "email": "me@CORP.io"})
    flags = client.evaluate_flags("u2")
    assert {k: flags.get_flag(k) for k in flags.keys} == {"pro-feature": True, "corp": True}
    # The snapshot rides along with a capture as $feature/… properties.
    client.capture("checkout", distinct_id="u2", flags=flags)
    props = events(base, project, event="checkout")[0]["properties"]
    assert props["$feature/pro-feature"] is True
    assert set(props["$active_feature_flags"]) == {"pro-feature", "corp"}
    flags = client.evaluate_flags("u3")
    assert flags.is_enabled("corp") is False


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_deprecated_flag_getters_still_work(base, project, client):
    create_flag(base, project, key="on", filters={"groups": [{"rollout_percentage": 100}],
                                                  "payloads": {"true": json.dumps([1, 2])}})
    assert client.feature_enabled("on", "u") is True
    assert client.get_feature_flag("on", "u") is True
    assert client.get_feature_flag_payload("on", "u") == [1, 2]
    assert client.get_all_flags("u") == {"on": True}
    # get_feature_flag reports what it saw with a $feature_flag_called event.
    called = events(base, project, event="$feature_flag_called")
    assert called and called[0]["properties"]["$feature_flag"] == "on"


def test_local_and_remote_evaluation_agree(base, project):
    create_flag(base, project, key="half", filters={"groups": [{"properties": [], "rollout_percentage": 50}]})
    create_flag(base, project, key="three-way", filters={
        "groups": [{"properties": [], "rollout_percentage": 100}],
        "multivariate": {"variants": [
            {"key": "control", "rollout_percentage": 34},
            {"key": "test-a", "rollout_percentage": 33},
            {"key": "test-b", "rollout_percentage": 33},
        ]},
        "payloads": {"test-a": json.dumps("A")},
    })
    create_flag(base, project, key="held", filters={
        "groups": [{"properties": [], "rollout_percentage": 100}],
        "holdout": {"id": 42, "exclusion_percentage": 30},
    })
    remote = Posthog(project, host=base, sync_mode=True, send=False)
    local = Posthog(project, host=base, secret_key=PHX, sync_mode=True, send=False)
    try:
        local.load_feature_flags()
        assert {f["key"] for f in local.feature_flags} == {"half", "three-way", "held"}
        on, variants, held = 0, set(), set()
        for i in range(50):
            distinct_id = f"user-{i}"
            want = remote.evaluate_flags(distinct_id)
            got = local.evaluate_flags(distinct_id, only_evaluate_locally=True)
            for key in ("half", "three-way", "held"):
                assert got.get_flag(key) == want.get_flag(key), (key, distinct_id)
                assert got.get_flag_payload(key) == want.get_flag_payload(key), (key, distinct_id)
            held.add(want.get_flag("held"))
            on += want.get_flag("half") is True
            variant = want.get_flag("three-way")
            variants.add(variant)
            assert want.get_flag_payload("three-way") == ("A" if variant == "test-a" else None)
        assert 10 < on < 40
        assert variants == {"control", "test-a", "test-b"}
        assert held == {True, "holdout-42"}
    finally:
        remote.shutdown()
        local.shutdown()


def test_local_evaluation_of_person_conditions(base, project):
    create_flag(base, project, key="adults", filters={"groups": [
        {"properties": [{"key": "age", "operator": "gte", "value": 18, "type": "person"},
                        {"key": "country", "operator": "exact", "value": ["US", "CA"], "type": "person"}],
         "rollout_percentage": 100}]})
    create_flag(base, project, key="new-app", filters={"groups": [
        {"properties": [{"key": "app_version", "operator": "semver_caret", "value": "2.1.0", "type": "person"},
                        {"key": "signed_up", "operator": "is_date_after", "value": "2024-01-01", "type": "person"},
                        {"key": "$current_url", "operator": "starts_with", "value": "https://app.", "type": "person"}]}]})
    remote = Posthog(project, host=base, sync_mode=True, send=False)
    local = Posthog(project, host=base, secret_key=PHX, sync_mode=True, send=False)
    try:
        local.load_feature_flags()
        for props, expected in [({"age": 30, "country": "us"}, True), ({"age": 12, "country": "US"}, False),
                                ({"age": 40, "country": "FR"}, False)]:
            assert local.evaluate_flags("p", person_properties=props, only_evaluate_locally=True).get_flag("adults") is expected
            assert remote.evaluate_flags("p", person_properties=props).get_flag("adults") is expected
        app = {"app_version": "2.4.1", "signed_up": "2024-06-01T10:00:00Z", "$current_url": "https://app.x.io/a"}
        for change, expected in [({}, True), ({"app_version": "3.0.0"}, False), ({"app_version": "v2.1"}, True),
                                 ({"signed_up": "2023-12-31"}, False), ({"$current_url": "https://www.x.io"}, False)]:
            props = app | change
            assert local.evaluate_flags("p", person_properties=props, only_evaluate_locally=True).get_flag("new-app") is expected, props
            assert remote.evaluate_flags("p", person_properties=props).get_flag("new-app") is expected, props
    finally:
        remote.shutdown()
        local.shutdown()


def test_cohorts_and_dependencies_agree_locally_and_remotely(base, project):
    status, cohort, _ = http(base, "POST", f"/api/projects/{project}/cohorts/", {
        "name": "Corp users",
        "filters": {"properties": {"type": "OR", "values": [
            {"type": "AND", "values": [{"key": "email", "operator": "icontains", "value": "@corp.io", "type": "person"}]},
            {"type": "AND", "values": [{"key": "plan", "value": ["enterprise", "team"], "type": "person"}]},
        ]}},
    })
    assert status == 201, cohort
    create_flag(base, project, key="corp", filters={"groups": [
        {"properties": [{"key": "id", "type": "cohort", "value": cohort["id"]}], "rollout_percentage": 100}]})
    create_flag(base, project, key="corp-beta", filters={"groups": [
        {"properties": [{"key": "corp", "type": "flag", "value": True, "operator": "flag_evaluates_to"}],
         "rollout_percentage": 50}]})
    remote = Posthog(project, host=base, sync_mode=True, send=False)
    local = Posthog(project, host=base, secret_key=PHX, sync_mode=True, send=False)
    try:
        local.load_feature_flags()
        # Local evaluation can only decide with every property the cohort
        # reads (a missing one is inconclusive), so both are always sent.
        cases = [{"email": f"user{i}@corp.io", "plan": "free"} for i in range(10)] + [
            {"email": "a@home.net", "plan": "team"}, {"email": "b@home.net", "plan": "free"}]
        seen = set()
        for i, props in enumerate(cases):
            distinct_id = f"member-{i}"
            want = remote.evaluate_flags(distinct_id, person_properties=props)
            got = local.evaluate_flags(distinct_id, person_properties=props, only_evaluate_locally=True)
            for key in ("corp", "corp-beta"):
                assert got.get_flag(key) == want.get_flag(key), (key, props)
            seen.add((want.get_flag("corp"), want.get_flag("corp-beta")))
        assert (False, False) in seen and (True, True) in seen and (True, False) in seen
    finally:
        remote.shutdown()
        local.shutdown()


def test_static_cohort_falls_back_to_the_server(base, project, client):
    client.capture("seen", distinct_id="vip")
    client.capture("seen", distinct_id="pleb")
    vip = person(base, project, "vip")["uuid"]
    status, cohort, _ = http(base, "POST", f"/api/projects/{project}/cohorts/", {"name": "VIPs", "is_static": True})
    assert status == 201
    status, _, _ = http(base, "PATCH", f"/api/projects/{project}/cohorts/{cohort['id']}/add_persons_to_static_cohort/",
                        {"person_ids": [vip]})
    assert status == 200
    create_flag(base, project, key="vip-lounge", filters={"groups": [
        {"properties": [{"key": "id", "type": "cohort", "value": cohort["id"]}]}]})
    local = Posthog(project, host=base, secret_key=PHX, sync_mode=True, send=False)
    try:
        local.load_feature_flags()
        # Static cohort members are only known to the server: local evaluation
        # cannot decide, so the SDK asks /flags.
        assert local.evaluate_flags("vip", only_evaluate_locally=True).get_flag("vip-lounge") is None
        assert local.evaluate_flags("vip").get_flag("vip-lounge") is True
        assert local.evaluate_flags("pleb").get_flag("vip-lounge") is False
    finally:
        local.shutdown()


def test_definitions_etag_and_legacy_decide(base, project):
    create_flag(base, project, key="f", filters={"groups": [{"rollout_percentage": 100}]})
    status, defs, headers = http(base, "GET", f"/api/feature_flag/local_evaluation?token={project}&send_cohorts")
    assert status == 200 and defs["flags"][0]["key"] == "f" and defs["group_type_mapping"] == {}
    etag = headers["ETag"]
    status, _, _ = http(base, "GET", f"/flags/definitions?token={project}", headers={"If-None-Match": etag})
    assert status == 304
    status, body, _ = http(base, "POST", "/decide/?v=3", {"token": project, "distinct_id": "x"}, key=None)
    assert status == 200 and body["featureFlags"] == {"f": True}
    status, body, _ = http(base, "POST", "/flags/?v=2", {"token": "phc_", "distinct_id": "x"}, key=None)
    assert (status, body["code"]) == (401, "invalid_api_key")


def test_state_export_shows_events(wt, base, project, client):
    client.capture("exported", distinct_id="e1")
    state = wt.control("GET", "twins/posthog/state")
    texts = [e.get("text", "") for e in state["entries"]]
    assert any('"event":"exported"' in t for t in texts)
