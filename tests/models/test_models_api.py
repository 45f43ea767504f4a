"""The model API end to end: real Temporal, control worker, SQLite, Redis and the fake Tripo."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import update

from core.contracts import GenerateModelResult
from core.db.models import ModelJob
from core.model_cache import ModelStatusDoc
from core.queues import model_workflow_id
from tests.harness import Harness
from tests.models.conftest import (
    REDIS_URL,
    FakeServer,
    image_bytes,
    image_upload,
    parse_glb,
    record_history,
    wait_job,
)
from tests.problems import assert_problem

pytestmark = [pytest.mark.temporal]


async def create(api: httpx.AsyncClient, **kwargs: Any) -> str:
    resp = await api.post("/api/v1/models", **kwargs)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["job_id"])


async def test_prompt_job_from_202_to_glb(h: Harness, fake_tripo: FakeServer) -> None:
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        resp = await api.post("/api/v1/models", json={"prompt": "  a wooden barrel ", "negative_prompt": "blurry",
                                                      "model_version": "v2.5-20250123", "pbr": True,
                                                      "face_limit": 8000})
        assert resp.status_code == 202, resp.text
        body = resp.json()
        job = body["job_id"]
        assert body["status"] == "queued"
        assert resp.headers["location"] == body["links"]["status"]
        assert body["links"]["result"].endswith(f"/api/v1/models/{job}/result")
        assert body["workflow_id"] == f"model-{job}"
        assert "/workflows/model-" in body["workflow_url"]
        # Not finished yet: the result is a 409 that says so.
        early = await api.get(f"/api/v1/models/{job}/result")
        assert_problem(early, 409, "model-not-ready")
        done = await wait_job(api, job, {"success", "failed"})
        assert done["status"] == "success", done
        assert done["progress"] == 100
        assert done["error"] is None
        assert done["started_at"]
        assert done["finished_at"]
        assert done["finished_at"].endswith(("Z", "+00:00"))
        detail = (await api.get(f"/api/v1/models/{job}")).json()
        assert detail["kind"] == "prompt"
        assert detail["prompt"] == "a wooden barrel"
        assert detail["options"] == {"model_version": "v2.5-20250123", "pbr": True, "face_limit": 8000}
        assert detail["result"]["source"] == "pbr_model"
        assert detail["tripo_task_id"]
        result = await api.get(f"/api/v1/models/{job}/result")
        assert result.status_code == 200
        assert result.headers["content-type"] == "model/gltf-binary"
        assert f'filename="model-{job}.glb"' in result.headers["content-disposition"]
        assert hashlib.sha256(result.content).hexdigest() == detail["result"]["sha256"]
        gltf = parse_glb(result.content)
        assert gltf["asset"]["extras"]["variant"] == "pbr_model", "the PBR model is preferred"
        cached = await api.get(f"/api/v1/models/{job}/result", headers={"If-None-Match": result.headers["etag"]})
        assert cached.status_code == 304
    sent = fake_tripo.fake.tasks[detail["tripo_task_id"]].input
    assert sent == {"type": "text_to_model", "prompt": "a wooden barrel", "negative_prompt": "blurry",
                    "model_version": "v2.5-20250123", "pbr": True, "face_limit": 8000}
    outcome = await h.client.get_workflow_handle(model_workflow_id(job), result_type=GenerateModelResult).result()
    assert outcome.model_sha256 == detail["result"]["sha256"]
    assert outcome.source == "pbr_model"
    await record_history(h, model_workflow_id(job), "model_prompt_success")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
async def test_image_job(h: Harness, fake_tripo: FakeServer, fmt: str) -> None:
    data = image_bytes(fmt, (120, 90))
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        # The name lies; the content decides.
        job = await create(api, **image_upload(data, "photo.bin", texture="false", pbr="false", face_limit="2000"))
        done = await wait_job(api, job, {"success", "failed"})
        assert done["status"] == "success", done
        detail = (await api.get(f"/api/v1/models/{job}")).json()
        kind = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}[fmt]
        assert (detail["kind"], detail["image_type"], detail["image_size"]) == ("image", kind, len(data))
        assert detail["result"]["source"] == "model", "no PBR model when pbr=false"
        glb = (await api.get(f"/api/v1/models/{job}/result")).content
        parse_glb(glb)
    task = fake_tripo.fake.tasks[detail["tripo_task_id"]]
    assert task.type == "image_to_model"
    assert task.input["file"]["type"] == kind
    assert (task.input["texture"], task.input["pbr"], task.input["face_limit"]) == (False, False, 2000)
    token = task.input["file"]["file_token"]
    assert fake_tripo.fake.uploads[token][1] == data, "Tripo got the image as uploaded"
    if fmt == "PNG":
        await record_history(h, model_workflow_id(job), "model_image_success")


async def test_idempotency_key_replays_the_same_job(h: Harness, fake_tripo: FakeServer) -> None:
    alice, bob = await h.user_key("alice@example.com"), await h.user_key("bob@example.com")
    async with h.api(alice) as a, h.api(bob) as b:
        headers = {"Idempotency-Key": "order-42"}
        first = await a.post("/api/v1/models", json={"prompt": "a lamp"}, headers=headers)
        assert first.status_code == 202
        assert "idempotent-replayed" not in first.headers
        again = await a.post("/api/v1/models", json={"prompt": "a lamp"}, headers=headers)
        assert again.status_code == 202
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json()["job_id"] == first.json()["job_id"]
        # Racing retries land on the same job too.
        racing = await asyncio.gather(*[a.post("/api/v1/models", json={"prompt": "a desk"},
                                               headers={"Idempotency-Key": "order-43"}) for _ in range(5)])
        assert {r.status_code for r in racing} == {202}
        assert len({r.json()["job_id"] for r in racing}) == 1
        # The same key with another request is refused.
        other = await a.post("/api/v1/models", json={"prompt": "a chair"}, headers=headers)
        assert_problem(other, 422, "idempotency-key-reused")
        # Keys are per user.
        bobs = await b.post("/api/v1/models", json={"prompt": "a lamp"}, headers=headers)
        assert bobs.status_code == 202
        assert bobs.json()["job_id"] != first.json()["job_id"]
        for job in (first.json()["job_id"], racing[0].json()["job_id"]):
            await wait_job(a, job, {"success"})
        await wait_job(b, bobs.json()["job_id"], {"success"})
        assert (await a.get("/api/v1/models")).json()["count"] == 2
        # A replay after the job finished answers the same job, without a new Tripo task.
        late = await a.post("/api/v1/models", json={"prompt": "a lamp"}, headers=headers)
        assert late.json()["job_id"] == first.json()["job_id"]
        assert late.json()["status"] == "success"
    assert fake_tripo.fake.count("POST", "/v2/openapi/task") == 3


async def test_invalid_input_is_refused_before_tripo(h: Harness, fake_tripo: FakeServer) -> None:
    h.settings.max_image_bytes = 300_000
    png = image_bytes("PNG", (64, 64))
    cases: list[tuple[dict[str, Any], int, str]] = [
        (image_upload(image_bytes("GIF"), "looks.png"), 400, "invalid-image"),
        (image_upload(b"\x89PNX" + png[4:], "bad-magic.png"), 400, "invalid-image"),
        (image_upload(image_bytes("PNG", (19, 64))), 400, "invalid-image"),
        (image_upload(image_bytes("JPEG", (6001, 20))), 400, "invalid-image"),
        (image_upload(png[: len(png) // 2]), 400, "invalid-image"),
        (image_upload(image_bytes("JPEG")[:-40]), 400, "invalid-image"),
        (image_upload(png[:-1]), 400, "invalid-image"),
        (image_upload(b""), 400, "invalid-image"),
        (image_upload(png[:8] + b"\x00" * 300_001), 413, "upload-too-large"),
        (image_upload(png[:8] + b"\x00" * 2_000_000), 413, "upload-too-large"),
        (image_upload(png, face_limit="0"), 422, "validation-error"),
        (image_upload(png, prompt="x"), 400, "bad-request"),
        ({"files": {"image": ("a.png", png)}}, 422, "validation-error"),
        ({"data": {"texture": "true"}}, 415, "unsupported-media-type"),
        ({"json": {"prompt": ""}}, 422, "invalid-prompt"),
        ({"json": {"prompt": " \n\t "}}, 422, "invalid-prompt"),
        ({"json": {"prompt": "x" * 1025}}, 422, "invalid-prompt"),
        ({"json": {"prompt": "ok", "negative_prompt": "n" * 1025}}, 422, "invalid-prompt"),
        ({"json": {}}, 422, "validation-error"),
        ({"json": {"prompt": "ok", "surprise": 1}}, 422, "validation-error"),
        ({"json": {"prompt": "ok", "model_version": "../etc"}}, 422, "validation-error"),
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 422, "validation-error"),
        ({"content": b"a prompt", "headers": {"content-type": "text/plain"}}, 415, "unsupported-media-type"),
        ({"json": {"prompt": "ok"}, "headers": {"Idempotency-Key": "x" * 300}}, 400, "bad-request"),
    ]
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        for kwargs, status, slug in cases:
            assert_problem(await api.post("/api/v1/models", **kwargs), status, slug)
        assert (await api.get("/api/v1/models")).json()["count"] == 0, "a refused request leaves no job"
    assert fake_tripo.fake.calls == [], "nothing reached Tripo"


async def test_list_pagination_and_ownership(h: Harness) -> None:
    alice, bob = await h.user_key("alice@example.com"), await h.user_key("bob@example.com")
    admin = await h.user_key("root@example.com", admin=True)
    async with h.api(alice) as a, h.api(bob) as b, h.api(admin) as root:
        jobs = [await create(a, json={"prompt": f"crate {i}"}) for i in range(3)]
        page = (await a.get("/api/v1/models", params={"limit": 2})).json()
        assert page["count"] == 3
        assert page["next_offset"] == 2
        assert [j["job_id"] for j in page["items"]] == jobs[::-1][:2], "newest first"
        rest = (await a.get("/api/v1/models", params={"limit": 2, "offset": 2})).json()
        assert [j["job_id"] for j in rest["items"]] == [jobs[0]]
        assert rest["next_offset"] is None
        assert (await b.get("/api/v1/models")).json()["count"] == 0
        for method, path in [("GET", ""), ("GET", "/status"), ("GET", "/result"), ("DELETE", "")]:
            assert_problem(await b.request(method, f"/api/v1/models/{jobs[0]}{path}"), 404, "not-found")
        assert_problem(await a.get("/api/v1/models/" + "x" * 100), 404, "not-found")
        assert (await root.get(f"/api/v1/models/{jobs[0]}/status")).status_code == 200
        for job in jobs:
            await wait_job(a, job, {"success"})
        assert (await a.get("/api/v1/models", params={"status": "success"})).json()["count"] == 3
        assert (await a.get("/api/v1/models", params={"status": "failed"})).json()["count"] == 0
        assert_problem(await a.get("/api/v1/models", params={"status": "nope"}), 422, "validation-error")
    async with httpx.AsyncClient(base_url=h.settings.public_api_url) as anon:
        assert_problem(await anon.post("/api/v1/models", json={"prompt": "x"}), 401, "unauthorized")
        assert_problem(await anon.get(f"/api/v1/models/{jobs[0]}/status"), 401, "unauthorized")


async def test_delete_finished_job_removes_its_files(h: Harness) -> None:
    data = image_bytes("PNG", (50, 50))
    key = await h.user_key("dev@example.com")
    async with h.api(key) as api:
        first = await create(api, **image_upload(data))
        second = await create(api, **image_upload(data))  # the same image, stored once
        for job in (first, second):
            await wait_job(api, job, {"success"})
        details = [(await api.get(f"/api/v1/models/{j}")).json() for j in (first, second)]
        models = [h.settings.artifact_dir / "models" / d["result"]["sha256"][:2] / d["result"]["sha256"]
                  for d in details]
        image_sha = hashlib.sha256(data).hexdigest()
        image = h.settings.artifact_dir / "images" / image_sha[:2] / image_sha
        assert all(p.is_file() for p in models)
        assert image.is_file()
        resp = await api.delete(f"/api/v1/models/{first}")
        assert resp.status_code == 204
        assert_problem(await api.get(f"/api/v1/models/{first}/status"), 404, "not-found")
        assert not models[0].exists(), "its model is gone"
        assert models[1].is_file(), "what another job still uses stays"
        assert image.is_file(), "what another job still uses stays"
        assert (await api.delete(f"/api/v1/models/{second}")).status_code == 204
        assert not models[1].exists()
        assert not image.exists()
        assert (await api.get("/api/v1/models")).json()["count"] == 0


async def test_status_reads_go_through_redis(h: Harness) -> None:
    key = await h.user_key("dev@example.com")
    redis = Redis.from_url(REDIS_URL)
    try:
        async with h.api(key) as api:
            job = await create(api, json={"prompt": "a shield"})
            await wait_job(api, job, {"success"})
            raw = await redis.get(h.settings.model_status_cache_prefix + job)
            assert raw is not None, "the last transition refreshed the cache"
            cached = ModelStatusDoc.model_validate_json(raw)
            assert cached.status == "success"
            assert cached.progress == 100
            # Change the row behind the cache's back: reads keep answering from Redis until the entry goes.
            async with h.sessions() as s:
                await s.execute(update(ModelJob).where(ModelJob.id == job).values(progress=7))
                await s.commit()
            assert (await api.get(f"/api/v1/models/{job}/status")).json()["progress"] == 100
            await redis.delete(h.settings.model_status_cache_prefix + job)
            assert (await api.get(f"/api/v1/models/{job}/status")).json()["progress"] == 7
            refilled = await redis.get(h.settings.model_status_cache_prefix + job)
            assert refilled is not None
            assert ModelStatusDoc.model_validate_json(refilled).progress == 7
    finally:
        await redis.aclose()


async def test_ready_reports_every_dependency(h: Harness) -> None:
    async with httpx.AsyncClient(base_url=h.settings.public_api_url) as anon:
        resp = await anon.get("/ready")
    assert resp.status_code == 200, resp.text
    checks = resp.json()["checks"]
    assert {checks[k] for k in ("database", "temporal", "object_store", "redis")} == {"ok"}
