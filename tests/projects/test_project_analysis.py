"""Project analysis (analysis/project.py): the import graph, split hostile samples, TypeScript
findings on .ts lines, and a verdict per dependency."""

from __future__ import annotations

import json
from pathlib import Path

from analysis.project import analyze_project
from core.archives import Project, build_project
from core.contracts import Severity
from gameserver.project import transpile_typescript

REPO = Path(__file__).resolve().parents[2]
HOSTILE = REPO / "tests" / "sandbox" / "hostile"
HOOKS = "module.exports = { onJoin(room, player) { room.state = helper(); } };\n"


def project(files: dict[str, str]) -> Project:
    return build_project({k: v.encode() for k, v in files.items()})


def blocking(report_findings: list) -> set[tuple[str, str]]:  # type: ignore[type-arg]
    return {(f.file, f.rule) for f in report_findings if f.severity == Severity.BLOCK}


def test_a_host_module_two_files_deep_is_found_with_its_chain() -> None:
    report = analyze_project(project({
        "index.js": "const { helper } = require('./lib/a');\n" + HOOKS,
        "lib/a.js": "const b = require('./b.js');\nexports.helper = () => b.run();\n",
        "lib/b.js": "// looks harmless\nconst cp = require('child_process');\nexports.run = () => cp.execSync('id');\n",
        "lib/unused.js": "require('fs');\n",
    }))
    assert not report.ok
    assert report.files == ["index.js", "lib/a.js", "lib/b.js"]
    assert report.unreachable == ["lib/unused.js"]
    (host,) = report.host_imports
    assert (host.module, host.file, host.line, host.chain) == ("child_process", "lib/b.js", 2,
                                                              ["index.js", "lib/a.js", "lib/b.js"])
    (finding,) = [f for f in report.findings if f.rule == "host-module"]
    assert (finding.file, finding.line, finding.column) == ("lib/b.js", 2, 12)
    assert "index.js → lib/a.js → lib/b.js" in finding.message
    # The project's own relative imports are part of the upload, not local-module findings.
    assert not [f for f in report.findings if f.rule in ("local-module", "capability-escape")]


def test_a_host_module_behind_a_re_export_is_found() -> None:
    report = analyze_project(project({
        "package.json": json.dumps({"type": "module", "main": "src/main.mjs"}),
        "src/main.mjs": "import { helper } from './tools/index.mjs';\n"
                        "export default { onJoin(room) { room.state = helper(); } };\n",
        "src/tools/index.mjs": "export { helper } from './disk.mjs';\n",
        "src/tools/disk.mjs": "export { readFileSync as helper } from 'node:fs';\n",
    }))
    assert not report.ok
    (host,) = report.host_imports
    assert host.module == "fs"
    assert host.chain == ["src/main.mjs", "src/tools/index.mjs", "src/tools/disk.mjs"]


def test_split_hostile_samples_stay_blocked() -> None:
    """fork_bomb.js, fs_abuse.js and secrets.js of tests/sandbox/hostile, each cut into files:
    the capability in a helper module, the hooks in the entry."""
    fork = (HOSTILE / "fork_bomb.js").read_text()
    head, _, hooks = fork.partition("module.exports = {")
    fork_bomb = project({
        "index.js": "const { childProcess, Worker, CHILD } = require('./spawner');\nmodule.exports = {" + hooks,
        "spawner.js": head + "module.exports = { childProcess, Worker, CHILD };\n",
    })
    fs_text = (HOSTILE / "fs_abuse.js").read_text()
    fs_abuse = project({
        "index.js": fs_text.replace("const fs = require('fs');", "const { fs } = require('./io');"),
        "io/index.js": "module.exports = require('./fs-backend');\n",
        "io/fs-backend.js": "exports.fs = require('fs');\n",
    })
    secrets_text = (HOSTILE / "secrets.js").read_text()
    found = secrets_text[secrets_text.index("const found"):secrets_text.index("module.exports")]
    secrets = project({
        "index.js": "const { found } = require('./probe');\n"
                    "module.exports = { onCreate(room) { room.state = { found }; } };\n",
        "probe.js": "const fs = require('fs');\nfunction read(file) { return fs.readFileSync(file, 'latin1'); }\n"
                    + found + "module.exports = { found };\n",
    })
    assert {("spawner.js", "host-module")} <= blocking(analyze_project(fork_bomb).findings)
    assert {("io/fs-backend.js", "host-module")} <= blocking(analyze_project(fs_abuse).findings)
    assert {("probe.js", "host-module"), ("probe.js", "process-env")} <= blocking(analyze_project(secrets).findings)
    for hostile in (fork_bomb, fs_abuse, secrets):
        assert not analyze_project(hostile).ok


def test_a_missing_or_escaping_import_keeps_its_finding() -> None:
    report = analyze_project(project({
        "index.js": "require('./nowhere');\nrequire('../../runtime/server.js');\n" + HOOKS,
    }))
    rules = {(f.rule, f.line) for f in report.findings}
    assert ("local-module", 1) in rules
    assert ("capability-escape", 2) in rules


def test_a_typescript_syntax_error_is_a_finding_on_its_ts_line() -> None:
    report = analyze_project(project({
        "package.json": json.dumps({"gsf": {"entry": "src/index.ts"}}),
        "src/index.ts": "import { score } from './rules.js';\n"
                        "export default { onJoin(room: { state: number }) { room.state = score([1]); } };\n",
        "src/rules.ts": "export function score(dice: number[]): number {\n"
                        "  const total: number = dice.reduce((a, b) => a + b, 0)\n"
                        "  return total +* 2;\n}\n",
    }), transpile=transpile_typescript)
    (error,) = report.blocking
    assert (error.file, error.rule, error.line) == ("src/rules.ts", "syntax-error", 3)
    assert error.column == 17
    assert error.source_line == "  return total +* 2;"


def test_findings_in_typescript_point_at_ts_lines() -> None:
    report = analyze_project(project({
        "index.ts": "type Room = { state: unknown };\n"
                    "interface Player { id: string }\n"
                    "\n"
                    "export default {\n"
                    "  onJoin(room: Room, player: Player): void {\n"
                    "    room.state = eval(player.id as string);\n"
                    "  },\n"
                    "};\n",
    }), transpile=transpile_typescript)
    (finding,) = [f for f in report.findings if f.rule == "eval"]
    assert (finding.file, finding.line) == ("index.ts", 6)
    assert finding.source_line.strip() == "room.state = eval(player.id as string);"


def _installed(root: Path, name: str, manifest: dict[str, object], files: dict[str, str]) -> None:
    folder = root / "node_modules" / name
    folder.mkdir(parents=True)
    (folder / "package.json").write_text(json.dumps({"name": name, **manifest}))
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)


def test_dependencies_get_a_verdict_each(tmp_path: Path) -> None:
    """node_modules as `npm ci --ignore-scripts` lays it out: an install script, a package that
    spawns processes, a native addon, and a harmless one."""
    _installed(tmp_path, "left-pad", {"version": "1.3.0"}, {"index.js": "module.exports = (s) => s;\n"})
    _installed(tmp_path, "telemetry-setup", {"version": "2.0.1", "scripts": {"postinstall": "node collect.js"}},
               {"index.js": "module.exports = {};\n", "collect.js": "// uploads your env\n"})
    _installed(tmp_path, "shell-helper", {"version": "0.4.0"},
               {"lib/run.js": "// run things\nconst { exec } = require('node:child_process');\n"
                              "module.exports = exec;\n"})
    _installed(tmp_path, "fast-math", {"version": "1.0.0", "gypfile": True},
               {"binding.gyp": "{}", "build/Release/fast.node": "\x7fELF"})
    packages: dict[str, dict[str, object]] = {"": {"name": "game", "dependencies": {}}}
    for name, version in (("left-pad", "1.3.0"), ("telemetry-setup", "2.0.1"), ("shell-helper", "0.4.0"),
                          ("fast-math", "1.0.0")):
        packages[f"node_modules/{name}"] = {"version": version}
    packages["node_modules/telemetry-setup"]["hasInstallScript"] = True
    packages["node_modules/test-only"] = {"version": "9.9.9", "dev": True}
    files = {"index.js": "const pad = require('left-pad');\n" + HOOKS.replace("helper()", "pad('x')"),
             "package.json": json.dumps({"dependencies": {"left-pad": "1.3.0"}}),
             "package-lock.json": json.dumps({"lockfileVersion": 3, "packages": packages})}
    game = project(files)
    report = analyze_project(game, node_modules_root=tmp_path)
    verdicts = {d.package: d for d in report.dependencies}
    assert sorted(verdicts) == ["fast-math@1.0.0", "left-pad@1.3.0", "shell-helper@0.4.0", "telemetry-setup@2.0.1"]
    assert verdicts["left-pad@1.3.0"].verdict == "ok"
    assert verdicts["telemetry-setup@2.0.1"].install_scripts == ["postinstall"]
    assert verdicts["shell-helper@0.4.0"].host_modules == ["child_process"]
    assert verdicts["shell-helper@0.4.0"].host_files == ["lib/run.js:2"]
    assert "build/Release/fast.node" in verdicts["fast-math@1.0.0"].native_addons
    assert {p for p, d in verdicts.items() if d.blocking} == {"telemetry-setup@2.0.1", "shell-helper@0.4.0",
                                                              "fast-math@1.0.0"}
    assert not report.ok
    assert not report.blocking  # the game's own code is clean: its dependencies block
    # The lockfile alone (nothing installed yet) already tells the install script.
    assert [d.package for d in analyze_project(game).blocking_dependencies] == ["telemetry-setup@2.0.1"]
    allowed = analyze_project(game, node_modules_root=tmp_path,
                              allow_packages={"telemetry-setup@2.0.1", "shell-helper@0.4.0", "fast-math@1.0.0"})
    assert allowed.ok
    assert {d.verdict for d in allowed.dependencies} == {"ok", "allowed"}
    # An allow list names one exact version: another version stays blocked.
    other = analyze_project(game, node_modules_root=tmp_path, allow_packages={"shell-helper@0.4.1"})
    assert "shell-helper@0.4.0" in {d.package for d in other.blocking_dependencies}
