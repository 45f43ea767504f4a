"""What the fuzzing found, pinned down: values the database refuses, 405s and their Allow header,
API paths that fall through to the console's files, and the OpenAPI document's promises."""

from __future__ import annotations

import pytest

from api.main import create_app
from tests.security.conftest import MakeApi, api_settings

PROBLEM = "application/problem+json"


async def test_values_the_database_refuses_are_a_422_not_a_500(make_api: MakeApi, database_url: str) -> None:
    api = await make_api(database_url=database_url)
    root = await api.client(key=api.admin_key)
    for resp in (await root.get("/api/v1/nodes", params={"status": "re\x00dy"}),
                 await root.get("/api/v1/nodes/a%00b"),
                 await root.post("/api/v1/nodes", json={"id": "n\x00de"})):
        # SQLite stores a NUL; PostgreSQL refuses it, and that is the client's input, not a bug.
        assert resp.status_code in ((200, 404, 201, 422) if database_url.startswith("sqlite") else (422,)), resp.text
        if resp.status_code == 422:
            assert resp.headers["content-type"].startswith(PROBLEM)
            assert resp.json()["type"].endswith("/validation-error")
            assert "request_id" in resp.json()


async def test_a_method_a_path_lacks_is_a_405_naming_the_paths_methods(make_api: MakeApi) -> None:
    api = await make_api()
    root = await api.client(key=api.admin_key)
    cases = {
        ("GET", "/api/v1/analysis"): "POST",  # without the fix the console's files answered 404
        ("PATCH", "/api/v1/servers"): "GET, POST",  # two routes, one path
        ("OPTIONS", "/api/v1/rooms/join"): "POST",  # a literal path, not /rooms/{server_id}
        ("TRACE", "/health"): "GET",
    }
    for (method, path), allow in cases.items():
        resp = await root.request(method, path)
        assert resp.status_code == 405, (method, path, resp.status_code)
        assert resp.headers["allow"] == allow
        assert resp.headers["content-type"].startswith(PROBLEM)
    unknown = await root.get("/api/v1/no-such-thing")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith(PROBLEM)
    assert (await root.get("/")).headers["content-type"].startswith("text/html"), "the console still loads"


async def test_a_body_that_does_not_parse_is_a_documented_400(make_api: MakeApi) -> None:
    api = await make_api()
    root = await api.client(key=api.admin_key)
    resp = await root.post("/api/v1/keys", content=b"\xc8\x99\xff{", headers={"content-type": "application/json"})
    assert resp.status_code in (400, 422)
    assert resp.headers["content-type"].startswith(PROBLEM)
    spec = api.app.openapi()
    assert str(resp.status_code) in spec["paths"]["/api/v1/keys"]["post"]["responses"]


def test_every_operation_has_a_summary_error_answers_and_its_credential(tmp_path: object) -> None:
    spec = create_app(api_settings(tmp_path)).openapi()  # type: ignore[arg-type]
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert spec["components"]["securitySchemes"]["apiKey"] == {"type": "http", "scheme": "bearer"}
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            assert op.get("summary"), where
            assert not op["summary"].endswith("."), where
            errors = {code: r for code, r in op["responses"].items() if code.isdigit() and int(code) >= 400}
            assert "500" in errors, where
            for code, answer in errors.items():
                if (path, code) != ("/ready", "503"):
                    assert "application/problem+json" in answer["content"], (where, code)
            if path == "/api/v1/agent/enroll":  # a node's first token is bought with its join proof
                assert op["security"] == [{"joinProof": []}], where
                assert "401" in errors, where
            elif path.startswith("/api/v1/agent/"):
                assert op["security"] == [{"nodeToken": []}], where
                assert "401" in errors, where
            elif path.startswith("/api/"):
                assert op["security"] == [{"apiKey": []}], where
                assert {"401", "429"} <= set(errors), where
            if "{" in path:
                assert "404" in errors, where
            if method in ("post", "put", "patch"):
                assert {"400", "413"} <= set(errors), where


@pytest.mark.parametrize(("path", "method", "expected"), [
    ("/api/v1/nodes", "post", {"409"}),
    ("/api/v1/users", "post", {"409"}),
    ("/api/v1/servers/{server_id}/stop", "post", {"503"}),
    ("/api/v1/rooms/join", "post", {"503"}),
    ("/metrics", "get", {"401"}),
])
def test_route_specific_problems_are_declared(tmp_path: object, path: str, method: str, expected: set[str]) -> None:
    spec = create_app(api_settings(tmp_path)).openapi()  # type: ignore[arg-type]
    assert expected <= set(spec["paths"][path][method]["responses"])
