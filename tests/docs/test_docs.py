"""The guide stays true to the code: included samples, links, the generated settings reference,
every problem type, every pipeline step type, every hook and room member."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from pydantic import Field

from core import settings_doc
from core.pipeline import STEP_TYPES, PipelineInvalid, parse, with_variables
from core.settings import Settings
from tests.docs.includes import DOCS, REPO, Block, blocks, expected, pages

GUIDE = [DOCS / name for name in ("index.md", "quickstart.md", "writing-a-game.md", "operating.md",
                                  "troubleshooting.md", "clients.md")]
SAMPLE_LANGS = {"js", "javascript", "mjs", "python", "py", "html", "yaml", "yml"}
RUNTIME = REPO / "gameserver" / "runtime" / "server.js"
ROOM = REPO / "gameserver" / "runtime" / "room-api.js"  # the room object the hooks get
GAME_MODULE = REPO / "gameserver" / "runtime" / "game-module.js"  # the hooks a module may export


def all_blocks() -> list[Block]:
    return [block for page in pages() for block in blocks(page)]


# --- samples -------------------------------------------------------------------------------------


def test_every_include_block_is_its_file() -> None:
    includes = [b for b in all_blocks() if b.include is not None]
    assert len(includes) >= 8, "the guide includes its samples"
    for block in includes:
        where = f"{block.page.relative_to(REPO)}:{block.start + 1}"
        assert block.include is not None, f"{where}: no {block.include}"
        assert (REPO / block.include).is_file(), f"{where}: no {block.include}"
        assert block.body == expected(block), (
            f"{where} differs from {block.include}: run `python -m tests.docs.includes` to copy the file in")


def test_every_sample_file_is_used_by_a_page() -> None:
    """A sample no page includes or names is a sample nobody reads (or keeps up to date)."""
    included = {b.include for b in all_blocks() if b.include}
    text = "\n".join(page.read_text() for page in pages())
    samples = sorted(str(p.relative_to(REPO)) for folder in ("samples", "ci") for p in (DOCS / folder).iterdir()
                     if p.is_file())
    assert samples, "docs/samples holds the samples"
    assert [s for s in samples if s not in included and s not in text] == []


def test_code_on_guide_pages_comes_from_sample_files() -> None:
    loose = [f"{b.page.name}:{b.start + 1} ({b.lang})" for page in GUIDE for b in blocks(page)
             if b.lang in SAMPLE_LANGS and b.include is None]
    assert loose == [], "JS, Python, HTML and YAML on the guide pages must be included sample files"


# --- links ---------------------------------------------------------------------------------------

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    fenced = {line for b in blocks(page) for line in range(b.start, b.end + 1)}
    lines = page.read_text().split("\n")
    return {github_slug(line.lstrip("#")) for i, line in enumerate(lines)
            if line.startswith("#") and i not in fenced}


def prose(page: Path) -> str:
    """The page without its code blocks (links in code are not links)."""
    lines = page.read_text().split("\n")
    for block in reversed(blocks(page)):
        del lines[block.start:block.end + 1]
    return "\n".join(lines)


@pytest.mark.parametrize("page", GUIDE + [DOCS / "settings.md"], ids=lambda p: p.name)
def test_links_and_anchors_resolve(page: Path) -> None:
    broken = []
    for target in LINK.findall(prose(page)):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked offline
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists() or anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(target)
    assert broken == []


def test_readme_links_the_guide() -> None:
    assert "docs/index.md" in (REPO / "README.md").read_text(), "README.md links the guide (docs/index.md)"


# --- settings ------------------------------------------------------------------------------------


def test_settings_reference_is_generated_from_the_settings_class() -> None:
    current = (DOCS / "settings.md").read_text()
    assert current == settings_doc.render(), (
        "docs/settings.md is out of date: run `python -m core.settings_doc > docs/settings.md`")
    for name in Settings.model_fields:
        assert f"`GSF_{name.upper()}`" in current


def test_a_setting_without_a_description_fails_the_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    described = next(name for name, f in Settings.model_fields.items() if not f.description)
    monkeypatch.delitem(settings_doc.DESCRIPTIONS, described)
    with pytest.raises(ValueError, match=described):
        settings_doc.render()
    monkeypatch.setitem(settings_doc.DESCRIPTIONS, "no_such_setting", "gone")
    monkeypatch.setitem(settings_doc.DESCRIPTIONS, described, "back")
    with pytest.raises(ValueError, match="no_such_setting"):
        settings_doc.render()


def test_a_setting_outside_every_group_fails_the_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    """A field declared on Settings itself, not in a group, would have no section of the page."""
    stray = type("Settings", Settings.__bases__, {"__module__": __name__, "__annotations__": {"stray_knob": "int"},
                                                  "stray_knob": Field(default=0, description="stray")})
    monkeypatch.setattr(settings_doc, "Settings", stray)
    with pytest.raises(ValueError, match="stray_knob"):
        settings_doc.render()


def test_settings_doc_check_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "settings.md"
    stale.write_text("# old\n")
    monkeypatch.setattr(settings_doc, "DOC_PATH", stale)
    assert settings_doc.main(["--check"]) == 1
    stale.write_text(settings_doc.render())
    assert settings_doc.main(["--check"]) == 0


# --- problem types -------------------------------------------------------------------------------


def _slug_assignments(tree: ast.AST) -> set[str]:
    """`slug = "x"` and `slug, status, title = "x", ...` in class bodies."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        target, value = node.targets[0], node.value
        if isinstance(target, ast.Name) and target.id == "slug" and isinstance(value, ast.Constant):
            found.add(str(value.value))
        elif (isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and target.elts
              and isinstance(target.elts[0], ast.Name) and target.elts[0].id == "slug"
              and isinstance(value.elts[0], ast.Constant)):
            found.add(str(value.elts[0].value))
    return found


def _problem_calls(tree: ast.AST) -> set[str]:
    """problem(status, "slug", ...) calls, the _HTTP_SLUGS tables and their fallbacks."""
    found: set[str] = set()

    def first_str(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Tuple) and node.elts:
            return first_str(node.elts[0])
        return None

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if name == "problem" and len(node.args) >= 2 and (slug := first_str(node.args[1])):
                found.add(slug)
            if (name == "get" and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "_HTTP_SLUGS" and len(node.args) == 2
                    and (slug := first_str(node.args[1]))):
                found.add(slug)
        if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_HTTP_SLUGS"
                                                 for t in node.targets) and isinstance(node.value, ast.Dict)):
            found.update(s for v in node.value.values if (s := first_str(v)))
    return found


def problem_slugs() -> dict[str, set[str]]:
    """Every problem slug the API, the matchmaker and the runtime can answer, by where it is defined."""
    out: dict[str, set[str]] = {}
    for folder in ("api", "core", "matchmaker"):
        for path in sorted((REPO / folder).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text())
            found = _slug_assignments(tree) | _problem_calls(tree)
            if found:
                out[str(path.relative_to(REPO))] = found
    source = RUNTIME.read_text()
    out["gameserver/runtime/server.js"] = set(re.findall(
        r"(?:sendProblem|refuseUpgrade|problemBody)\(\w+, \d{3}, '([a-z-]+)'", source))
    return out


def test_troubleshooting_names_every_problem_type() -> None:
    slugs = problem_slugs()
    found = set().union(*slugs.values())
    # The collector itself must see what is known to exist, or it would pass on nothing.
    assert {"seat-token", "room-full", "no-room-available", "validation-error", "invalid-pipeline",
            "request-too-large", "internal-error", "not-ready", "unauthorized"} <= found, slugs
    text = (DOCS / "troubleshooting.md").read_text()
    missing = {where: sorted(s for s in found_here if f"`{s}`" not in text) for where, found_here in slugs.items()}
    assert {k: v for k, v in missing.items() if v} == {}, "docs/troubleshooting.md: add a section per slug"


def test_troubleshooting_names_every_error_frame_and_close_code() -> None:
    source = "\n".join(p.read_text() for p in sorted(RUNTIME.parent.glob("*.js")))
    codes = set(re.findall(r"errorFrame\('([a-z_]+)'", source))
    closes = set(re.findall(r"close\((\d{4})", source))
    assert {"hook_failed", "join_refused", "bad_frame"} <= codes
    assert {"4000", "4003", "1001"} <= closes
    for page in ("troubleshooting.md", "writing-a-game.md"):
        text = (DOCS / page).read_text()
        assert [c for c in codes if f"`{c}`" not in text] == [], page
        assert [c for c in closes if f"| {c} |" not in text] == [], page


# --- pipelines -----------------------------------------------------------------------------------


def step_rows() -> dict[str, str]:
    text = (DOCS / "operating.md").read_text()
    section = text.split("### Step types", 1)[1].split("\n## ", 1)[0]
    return {m.group(1): line for line in section.splitlines() if (m := re.match(r"\| `([a-z_]+)` \|", line))}


def test_pipeline_reference_has_every_step_type_and_parameter() -> None:
    rows = step_rows()
    assert sorted(rows) == sorted(STEP_TYPES), "operating.md: one row per step type, no stale ones"
    for name, spec in STEP_TYPES.items():
        params = rows[name].split("|")[2]
        if name == "remove_container":
            assert "stop_container" in params
            continue
        for field in spec.input.model_fields:
            assert f"`{field}`" in params, f"{name}: parameter {field} is not documented"
        output = rows[name].split("|")[3]
        for field in spec.result.model_fields:
            if field not in ("output", "logs"):
                assert f"`{field}`" in output, f"{name}: output {field} is not documented"


def test_the_sample_pipeline_is_valid_and_needs_its_variable() -> None:
    pipeline = parse((DOCS / "samples" / "warm-node.yaml").read_text())
    assert [s.type for s in pipeline.steps] == ["pull_image", "prepare_network", "sleep", "noop"]
    with pytest.raises(PipelineInvalid, match="note"):
        with_variables(pipeline, {})
    assert with_variables(pipeline, {"note": "x"})["base_image"] == "gsf-node-base:20"


# --- the contract --------------------------------------------------------------------------------


def test_writing_a_game_documents_every_hook_and_room_member() -> None:
    source = GAME_MODULE.read_text() + ROOM.read_text()
    hooks = re.search(r"const HOOKS = \[([^\]]*)\]", source)
    assert hooks is not None
    names = re.findall(r"'(\w+)'", hooks.group(1))
    room = source.split("class Room {", 1)[1].split("\n}\n", 1)[0]
    members = set(re.findall(r"^  (?:get )?([a-zA-Z]\w*)\(", room, re.MULTILINE)) - {"constructor"}
    members |= set(re.findall(r"this\.(\w+) =", room))
    assert {"broadcast", "send", "setMetadata", "lock", "unlock", "log", "players", "state"} <= members
    text = (DOCS / "writing-a-game.md").read_text()
    assert [h for h in names if f"`{h}`" not in text] == []
    assert [m for m in sorted(members) if f"`room.{m}" not in text] == []
