"""The docs' include convention: a fenced block whose info string has `file=<path>` is that file.

    ```js file=docs/samples/rps.js
    ...the file's exact content...
    ```

`python -m tests.docs.includes` rewrites every such block from its file (run it after editing a
sample); tests/docs/test_docs.py fails while any block differs from its file.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a Markdown page; `start`/`end` are the lines of its fences."""

    page: Path
    start: int
    end: int
    lang: str
    include: str | None
    body: str


def blocks(page: Path) -> list[Block]:
    """Every fenced block of a page, in order (fences nested in longer fences are content)."""
    lines = page.read_text().split("\n")
    out: list[Block] = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, info = match.group("fence"), match.group("info").strip()
        words = info.split()
        include = next((w.removeprefix("file=") for w in words if w.startswith("file=")), None)
        j = i + 1
        while j < len(lines) and not (lines[j].startswith(fence[0] * len(fence)) and not lines[j].strip(fence[0])):
            j += 1
        if j == len(lines):
            raise ValueError(f"{page}:{i + 1}: unclosed code fence")
        body = "\n".join(lines[i + 1:j])
        out.append(Block(page, i, j, words[0] if words and "=" not in words[0] else "", include,
                         body + "\n" if j > i + 1 else ""))
        i = j + 1
    return out


def expected(block: Block) -> str:
    """The content an include block must have: its file, with exactly one final newline."""
    assert block.include is not None
    return (REPO / block.include).read_text().rstrip("\n") + "\n"


def sync(page: Path) -> bool:
    """Rewrite the include blocks of a page from their files; True when the page changed."""
    lines = page.read_text().split("\n")
    changed = False
    for block in reversed(blocks(page)):
        if block.include is None:
            continue
        content = expected(block)
        if content != block.body:
            lines[block.start + 1:block.end] = content.rstrip("\n").split("\n")
            changed = True
    if changed:
        page.write_text("\n".join(lines))
    return changed


def pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def main() -> int:
    for page in pages():
        if sync(page):
            print(f"updated {page.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
