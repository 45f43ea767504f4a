"""Pipelines reach the node's Docker only for what is the caller's (issue #19, item 5): volumes and
networks carry their maker's `gsf.owner_id` and are reused only by them, images come only from the
allowed registries, and quotas bound what one user makes. Admins are exempt."""

from __future__ import annotations

import contextlib
import json
import uuid
from typing import Any

import docker
import docker.errors
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.containers import ContainerActivities
from activities.steps import StepActivities
from core.bootstrap import create_user_key
from core.contracts import PrepareNetworkInput, PullImageInput, StepCaller, WriteConfigInput
from core.pipeline import image_registry
from core.settings import Settings
from tests.harness import Harness, platform
from tests.workflows.test_pipeline import wait_pipeline

pytestmark = [pytest.mark.docker, pytest.mark.temporal]

LIMITS = {"pipeline_registries": ["127.0.0.1:1"], "pipeline_max_volumes_per_user": 2,
          "pipeline_max_networks_per_user": 1, "pipeline_max_config_bytes": 64}


@pytest.fixture
async def h(settings: Settings, temporal_env: Any, runtime_images: str, cleanup_docker: None) -> Any:
    async with platform(settings.model_copy(update=LIMITS), temporal_env.client) as harness:
        yield harness


@pytest.fixture
async def users(h: Harness, docker_client: docker.DockerClient) -> Any:
    """Keys of alice and bob (users) and ops (an admin); what their pipelines made goes afterwards."""
    made = {}
    for email, admin in (("alice@example.com", False), ("bob@example.com", False), ("ops@example.com", True)):
        user, key = await create_user_key(h.sessions, email, admin=admin)
        made[email.split("@")[0]] = (user.id, key)
    yield {name: key for name, (_, key) in made.items()}
    for owner, _ in made.values():
        for volume in docker_client.volumes.list(filters={"label": f"gsf.owner_id={owner}"}):
            with contextlib.suppress(docker.errors.APIError):
                volume.remove(force=True)
        for network in docker_client.networks.list(filters={"label": f"gsf.owner_id={owner}"}):
            with contextlib.suppress(docker.errors.APIError):
                network.remove()
    ContainerActivities.prune_stale_guards()


def name(prefix: str) -> str:
    return f"gsf-test-{prefix}-{uuid.uuid4().hex[:8]}"


def one_step(step: dict[str, Any]) -> str:
    """A pipeline of one step that fails the run at once when the step fails (YAML is JSON's superset)."""
    return json.dumps({"name": "tenancy", "pause_timeout_seconds": 0,
                       "steps": [{**step, "name": "only", "retry": {"maximum_attempts": 1}}]})


def write(volume: str, files: dict[str, str]) -> str:
    return one_step({"type": "write_config", "params": {"volume": volume, "files": files}})


def network(net: str) -> str:
    return one_step({"type": "prepare_network", "params": {"name": net}})


def pull(image: str) -> str:
    return one_step({"type": "pull_image", "params": {"image": image}})


async def run(h: Harness, key: str, yaml: str) -> Any:
    """Start the pipeline as `key`'s user; the ended run (or the refusal, when not 202)."""
    async with h.api(key) as api:
        resp = await api.post("/api/v1/pipelines", json={"yaml": yaml, "node_id": h.settings.node_id})
        if resp.status_code != 202:
            return resp
        return await wait_pipeline(api, resp.json()["id"], {"succeeded", "failed"})


def error_type(run: Any) -> str:
    """The stable type of the failed step's error (`StepForbidden: ...`)."""
    assert run["status"] == "failed", run
    return str(run["state"]["steps"][0]["error"]).split(":", 1)[0]


def read(docker_client: docker.DockerClient, settings: Settings, volume: str, path: str) -> bytes:
    reader = docker_client.containers.run(settings.base_image, ["node", "-e",
                                          f"process.stdout.write(require('fs').readFileSync('/c/{path}'))"],
                                          volumes={volume: {"bind": "/c", "mode": "ro"}}, detach=True,
                                          network_mode="none")
    try:
        assert reader.wait(timeout=30)["StatusCode"] == 0
        return bytes(reader.logs(stdout=True, stderr=False))
    finally:
        reader.remove(force=True)


async def test_write_config_never_writes_into_another_users_volume(
        h: Harness, users: dict[str, str], docker_client: docker.DockerClient) -> None:
    volume = name("cfg")
    assert (await run(h, users["alice"], write(volume, {"settings.json": '{"a": 1}'})))["status"] == "succeeded"
    labels = docker_client.volumes.get(volume).attrs["Labels"]
    assert labels["gsf.kind"] == "config", labels
    assert labels["gsf.owner_id"], labels
    assert error_type(await run(h, users["bob"], write(volume, {"settings.json": '{"b": 2}'}))) == "StepForbidden"
    assert read(docker_client, h.settings, volume, "settings.json") == b'{"a": 1}', "bob overwrote alice's file"
    # An admin may write there; alice's own volume stays hers to write.
    assert (await run(h, users["ops"], write(volume, {"ops.json": "{}"})))["status"] == "succeeded"
    assert (await run(h, users["alice"], write(volume, {"settings.json": '{"a": 3}'})))["status"] == "succeeded"
    # `caller` is the platform's to set: a pipeline claiming to act as an admin is refused.
    claim = one_step({"type": "write_config", "params": {
        "volume": volume, "files": {"x": "y"}, "caller": {"owner_id": "someone", "admin": True}}})
    refused = await run(h, users["bob"], claim)
    assert refused.status_code == 422
    assert refused.json()["type"].endswith("/invalid-pipeline")
    assert refused.json()["errors"][0]["loc"] == "steps[0].params.caller"


async def test_prepare_network_reuses_only_the_callers_networks(
        h: Harness, users: dict[str, str], docker_client: docker.DockerClient) -> None:
    alices, foreign = name("net"), docker_client.networks.create(name("foreign"), driver="bridge")
    try:
        made = await run(h, users["alice"], network(alices))
        assert made["status"] == "succeeded", made
        assert docker_client.networks.get(alices).attrs["Labels"]["gsf.kind"] == "game-network"
        assert error_type(await run(h, users["bob"], network(alices))) == "StepForbidden"
        assert error_type(await run(h, users["bob"], network(foreign.name))) == "StepForbidden"
        assert (await run(h, users["ops"], network(alices)))["status"] == "succeeded", "admins may reuse it"
        # The platform's own game network is everyone's: deployments attach every game to it.
        assert (await run(h, users["bob"], network("")))["status"] == "succeeded"
    finally:
        foreign.remove()


async def test_pulls_come_only_from_allowed_registries(h: Harness, users: dict[str, str],
                                                       docker_client: docker.DockerClient) -> None:
    for image in ("evil.example/probe:1", "192.0.2.1:5000/probe", h.settings.base_image):  # the last is docker.io's
        refused = await run(h, users["bob"], pull(image))
        assert refused.status_code == 403, refused.text
        assert refused.json()["type"].endswith("/registry-not-allowed"), refused.text
    # A paused run cannot be resumed into another registry either.
    paused_yaml = json.dumps({"name": "pauses", "variables": {"image": "127.0.0.1:1/gsf-missing:none"},
                              "steps": [{"type": "pull_image", "name": "pull", "params": {"image": "${image}"},
                                         "retry": {"maximum_attempts": 1}}]})
    async with h.api(users["bob"]) as bob:
        run_id = (await bob.post("/api/v1/pipelines", json={"yaml": paused_yaml,
                                                            "node_id": h.settings.node_id})).json()["id"]
        assert (await wait_pipeline(bob, run_id, {"paused", "failed", "succeeded"}))["status"] == "paused"
        hijack = await bob.post(f"/api/v1/pipelines/{run_id}/resume",
                                json={"variables": {"image": "evil.example/probe:1"}})
        assert hijack.status_code == 403, hijack.text
        assert hijack.json()["type"].endswith("/registry-not-allowed"), hijack.text
        assert (await bob.post(f"/api/v1/pipelines/{run_id}/cancel")).status_code == 200
    # The node refuses before it calls Docker at all (no client: any call would fail otherwise).
    steps = StepActivities(None, h.settings, None)  # type: ignore[arg-type]
    for image in ("evil.example/probe:1", "Evil/probe", "probe"):
        with pytest.raises(ApplicationError) as refused_on_node:
            ActivityEnvironment().run(steps.pull_image, PullImageInput(
                image=image, caller=StepCaller(owner_id="bob")))
        assert refused_on_node.value.type == "StepForbidden"
        assert refused_on_node.value.non_retryable
    for activity, arg in ((steps.pull_image, PullImageInput(image="127.0.0.1:1/x")),
                          (steps.prepare_network, PrepareNetworkInput(name="n")),
                          (steps.write_config, WriteConfigInput(volume="v", files={}))):
        with pytest.raises(ApplicationError) as unowned:  # a step that does not say whom it acts for
            ActivityEnvironment().run(activity, arg)  # type: ignore[arg-type]
        assert unowned.value.type == "StepForbidden"
    # An admin is not bound by the list: the pull is tried (and fails: nothing answers there).
    tried = await run(h, users["ops"], pull("127.0.0.2:1/gsf-missing:none"))
    assert tried["status"] == "failed", tried
    assert "cannot pull" in tried["error"], tried


@pytest.mark.parametrize(("image", "registry"), [
    ("node:20", "docker.io"), ("library/node", "docker.io"), ("docker.io/library/node", "docker.io"),
    ("index.docker.io/a/b", "docker.io"), ("ghcr.io/a/b:1", "ghcr.io"), ("127.0.0.1:5000/x", "127.0.0.1:5000"),
    ("localhost/x", "localhost"), ("Evil/x", "evil"), ("a@sha256:" + "0" * 64, "docker.io")])
def test_an_images_registry_is_read_as_docker_reads_it(image: str, registry: str) -> None:
    assert image_registry(image) == registry


async def test_quotas_bound_what_one_user_makes(h: Harness, users: dict[str, str],
                                                docker_client: docker.DockerClient) -> None:
    """Two volumes, one network and 64 bytes of config per volume for each user here (LIMITS)."""
    first, second = name("q1"), name("q2")
    assert (await run(h, users["alice"], write(first, {"a.txt": "x" * 40})))["status"] == "succeeded"
    assert (await run(h, users["alice"], write(second, {"a.txt": "x"})))["status"] == "succeeded"
    assert error_type(await run(h, users["alice"], write(name("q3"), {"a.txt": "x"}))) == "StepQuotaExceeded"
    # What stays in a volume counts: 40 + 40 bytes is over the cap, rewriting the 40 is not.
    assert error_type(await run(h, users["alice"], write(first, {"b.txt": "y" * 40}))) == "StepQuotaExceeded"
    assert (await run(h, users["alice"], write(first, {"a.txt": "z" * 60})))["status"] == "succeeded"
    assert (await run(h, users["alice"], network(name("qn1"))))["status"] == "succeeded"
    assert error_type(await run(h, users["alice"], network(name("qn2")))) == "StepQuotaExceeded"
    # Bob has his own quota; the API refuses at once what can never fit.
    assert (await run(h, users["bob"], write(name("qb"), {"a.txt": "x"})))["status"] == "succeeded"
    three = json.dumps({"name": "many", "steps": [
        {"type": "write_config", "params": {"volume": name(f"m{i}"), "files": {"a": "b"}}} for i in range(3)]})
    over = await run(h, users["bob"], three)
    assert over.status_code == 429, over.text
    assert over.json()["type"].endswith("/pipeline-quota-exceeded"), over.text
    big = await run(h, users["bob"], write(name("big"), {"a.txt": "x" * 65}))
    assert big.status_code == 422, big.text
    assert big.json()["errors"][0]["loc"] == "steps[0].params.files", big.text
    # An admin is not counted.
    for _ in range(3):
        assert (await run(h, users["ops"], write(name("ops"), {"a.txt": "x" * 100})))["status"] == "succeeded"
    assert (await run(h, users["ops"], network(name("opsn1"))))["status"] == "succeeded"
    assert (await run(h, users["ops"], network(name("opsn2"))))["status"] == "succeeded"
