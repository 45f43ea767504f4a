"""`analyze_code` (activities/analysis.py) on a single-file game in the artifact store: the
analyzer's report, a rule an admin allowed, and a source that is not stored. A game project (an
archive, its dependency layer first): tests/projects/test_project_analysis.py; the analyzer's rules
themselves: tests/analysis/."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.analysis import AnalysisActivities
from core.artifacts import LocalArtifactStore
from core.contracts import AnalyzeCodeInput, Severity
from core.settings import Settings
from tests.conftest import GAMES


async def test_analyze_code_reports_on_the_stored_source(tmp_path: Path) -> None:
    artifacts = LocalArtifactStore(tmp_path / "artifacts")
    acts = AnalysisActivities(artifacts, Settings(env="test", data_dir=tmp_path / "data"))
    env = ActivityEnvironment()
    chat = (GAMES / "chat.js").read_bytes()

    def stored(source: bytes, allow_rules: tuple[str, ...] = ()) -> AnalyzeCodeInput:
        return AnalyzeCodeInput(server_id="s1", source_sha256=artifacts.put("sources", source), filename="chat.js",
                                allow_rules=list(allow_rules))

    clean = (await env.run(acts.analyze_code, stored(chat))).report
    assert clean.ok, clean.findings
    assert clean.sha256 == artifacts.put("sources", chat)
    assert clean.size == len(chat)

    evil = chat + b"\nmodule.exports.onCreate = (room) => eval(room.state.code);\n"
    refused = (await env.run(acts.analyze_code, stored(evil))).report
    assert not refused.ok
    assert ("eval", Severity.BLOCK) in [(f.rule, f.severity) for f in refused.findings]
    allowed = (await env.run(acts.analyze_code, stored(evil, allow_rules=("eval",)))).report
    assert allowed.ok, allowed.findings
    assert allowed.allowed_rules == ["eval"]

    with pytest.raises(ApplicationError) as missing:
        await env.run(acts.analyze_code, AnalyzeCodeInput(server_id="s1", source_sha256="f" * 64))
    assert missing.value.type == "SourceMissing"
    assert missing.value.non_retryable
