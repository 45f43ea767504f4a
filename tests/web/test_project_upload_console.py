"""The console's upload page takes a game project (issue #24): a folder chosen with the folder
picker is packed in the browser (node_modules and .git left out) and deployed until it runs; an
archive dropped on the page that the analysis refuses shows its findings as file:line; and the
browser's own archive writers (js/pack.js) make archives Python reads back byte for byte."""

from __future__ import annotations

import base64
import io
import json
import shutil
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.projects.registry import Registry, cached_tarball, serve_registry
from tests.web.conftest import Platform
from tests.web.test_console import DEPLOY_TIMEOUT, goto, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.temporal]

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "projects" / "dice-duel"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """The npm mirror the platform installs seedrandom from (no test reaches the internet)."""
    tarball = cached_tarball("seedrandom@3.0.5", tmp_path_factory.mktemp("npm"))
    with serve_registry() as served:
        served.add(tarball)
        yield served


@pytest.fixture(scope="module")
def platform_env(registry: Registry) -> dict[str, str]:
    return {"GSF_NPM_REGISTRY": registry.url}


async def open_upload(page: Page, platform: Platform) -> None:
    await sign_in(page, platform.key)
    await page.get_by_role("link", name="Upload", exact=True).click()
    await expect(page.get_by_role("heading", name="Upload a game")).to_be_visible()


async def test_a_project_folder_is_packed_in_the_browser_and_runs(page: Page, platform: Platform,
                                                                  registry: Registry, tmp_path: Path) -> None:
    folder = tmp_path / "dice-duel"
    shutil.copytree(SAMPLE, folder)
    # What a developer's folder also holds, and the upload leaves out.
    (folder / "node_modules" / "left-out").mkdir(parents=True)
    (folder / "node_modules" / "left-out" / "index.js").write_text("module.exports = 1;\n")
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")

    await open_upload(page, platform)
    await page.get_by_label("Project folder").set_input_files(folder)
    info = page.get_by_test_id("file-info")
    await expect(info).to_contain_text("dice-duel/: 8 files")
    await expect(info).to_contain_text("packed as dice-duel.tar.gz")
    await expect(page.get_by_label("Server name")).to_have_value("dice-duel")
    await expect(page.get_by_role("button", name="Check code only")).to_be_hidden()
    await page.get_by_role("button", name="Deploy").click()
    await expect(page.locator("#upload-progress")).to_have_attribute("value", "100")

    summary = page.get_by_test_id("project-summary")
    await expect(summary).to_contain_text("Entry src/index.ts; 4 files analyzed", timeout=DEPLOY_TIMEOUT)
    await expect(summary).to_contain_text("npm packages: seedrandom@3.0.5 ok")
    await expect(page.locator('.step[data-step="running"]')).to_have_attribute("data-state", "done",
                                                                              timeout=DEPLOY_TIMEOUT)
    await expect(page.get_by_role("link", name="Play")).to_be_visible()
    href = await page.get_by_role("link", name="Server details").get_attribute("href")
    assert href is not None
    server_id = href.rsplit("/", 1)[-1]
    async with httpx.AsyncClient(base_url=platform.url, headers={"Authorization": f"Bearer {platform.key}"}) as api:
        server = (await api.get(f"/api/v1/servers/{server_id}")).json()
    assert (server["status"], server["game"], server["max_players"]) == ("running", "dice-duel", 2)
    # The browser's archive held the project's files and nothing of node_modules/ or .git/.
    assert sorted(server["analysis"]["files"]) == ["src/dice.ts", "src/index.ts", "src/rules.ts", "src/state.ts"]
    assert registry.hits == {"seedrandom-3.0.5.tgz": 1}

    await page.get_by_role("link", name="Server details").click()
    await expect(page.get_by_role("heading", name="dice-duel")).to_be_visible()
    await expect(page.get_by_role("log", name="Container logs")).to_contain_text("listening", timeout=30_000)


BLOCKED = {
    "package.json": json.dumps({"name": "sneaky", "version": "1.0.0", "gsf": {"entry": "src/index.ts"}}),
    "src/index.ts": "import { run } from './helpers/run';\n"
                    "export default { onJoin(room: { state: unknown }): void { room.state = run('id'); } };\n",
    "src/helpers/run.ts": "// the host's shell, two files away from the entry\n"
                          "import { execSync } from 'child_process';\n"
                          "export function run(command: string): string { return String(execSync(command)); }\n",
}


async def test_a_dropped_archive_that_is_refused_shows_findings_by_file_and_line(page: Page,
                                                                                 platform: Platform) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, text in BLOCKED.items():
            archive.writestr(f"sneaky/{name}", text)
    await open_upload(page, platform)
    # A file dropped on the page, as a browser hands it over from a drag and drop.
    await page.evaluate("""([name, data]) => {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], name, { type: 'application/zip' }));
        const zone = document.querySelector('[data-testid="dropzone"]');
        for (const type of ['dragenter', 'dragover', 'drop']) {
            zone.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true }));
        }
    }""", ["sneaky.zip", base64.b64encode(buf.getvalue()).decode()])
    await expect(page.get_by_test_id("file-info")).to_contain_text("sneaky.zip")
    await expect(page.get_by_label("Server name")).to_have_value("sneaky")
    await page.get_by_role("button", name="Deploy").click()

    await expect(page.locator('.step[data-step="analyzing"]')).to_have_attribute("data-state", "failed",
                                                                                timeout=DEPLOY_TIMEOUT)
    analysis = page.get_by_test_id("project-analysis")
    await expect(analysis).to_have_attribute("data-verdict", "blocked")
    await expect(analysis).to_contain_text("the upload was refused")
    host = page.get_by_test_id("finding").filter(has_text="host-module")
    await expect(host).to_contain_text("src/helpers/run.ts:2:")
    await expect(host).to_contain_text("src/index.ts → src/helpers/run.ts")
    # The file's own section shows the line the analyzer kept (an archive's text is not at hand).
    section = analysis.locator('[data-testid="findings"][aria-label="src/helpers/run.ts"]')
    await expect(section.locator('tr[data-line="2"]')).to_contain_text("child_process")


async def test_the_browser_writes_archives_python_reads(page: Page, platform: Platform) -> None:
    await goto(page, "/")
    long_path = "p/" + "/".join(["deeply-nested-folder"] * 6) + "/ünïcode.ts"
    files = {"p/package.json": '{"name": "p"}', "p/src/index.ts": "export default {};\n", long_path: "// long\n"}
    made = await page.evaluate("""async (files) => {
        const pack = await import('/js/pack.js');
        const entries = Object.entries(files).map(([path, text]) => ({ path, bytes: new TextEncoder().encode(text) }));
        const b64 = async (blob) => btoa(String.fromCharCode(...new Uint8Array(await blob.arrayBuffer())));
        const blobs = entries.map(({ path, bytes }) => ({ path, file: new Blob([bytes]) }));
        const folder = await pack.packProject('p', blobs);
        return { zip: await b64(pack.zip(entries)), tar: await b64(pack.tar(entries)), packed: await b64(folder),
                 name: folder.name, skipped: [pack.skipped('p/node_modules/x/i.js'), pack.skipped('p/.git/HEAD'),
                                              pack.skipped('p/src/index.ts')] };
    }""", files)
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(made["zip"]))) as archive:
        assert archive.testzip() is None  # every CRC matches
        assert {i.filename: archive.read(i).decode() for i in archive.infolist()} == files
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(made["tar"]))) as archive:
        read = {m.name: archive.extractfile(m).read().decode() for m in archive.getmembers()}  # type: ignore[union-attr]
    assert read == files
    assert made["name"] == "p.tar.gz"
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(made["packed"])), mode="r:gz") as archive:
        assert sorted(archive.getnames()) == sorted(files)
    assert made["skipped"] == [True, True, False]
