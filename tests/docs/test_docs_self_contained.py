"""The repository stands on its own: no text file points to notes that live outside it, every
relative link of the Markdown docs resolves, and every `docs/CONVENTIONS.md#<section>` pointer
names an existing section."""

import re
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Set

import pytest

ROOT = Path(__file__).resolve().parents[2]
THIS_FILE = Path(__file__).resolve()
CONVENTIONS = ROOT / "docs" / "CONVENTIONS.md"

# Pointers to files that are not part of the repository (notes kept beside the checkout).
FORBIDDEN = [
    re.compile(r"REFERENCE\.md"),
    re.compile(r"REFERENCE\s*(§|\d)"),  # "REFERENCE 9.3", "REFERENCE §9"
    re.compile(r"PEERS\.md"),
    re.compile(r"shared/spec"),
    re.compile(r"\.\./shared\b"),
]
# tests/assets/checkpoint_keys.txt is in the repository: tests may name the file, anything else
# must give its path inside the repository.
CHECKPOINT_KEYS = re.compile(r"(tests/assets/)?checkpoint_keys\.txt")
CONVENTIONS_POINTER = re.compile(r"docs/CONVENTIONS\.md#([A-Za-z0-9_-]+)")

MARKDOWN_LINK = re.compile(r"!?\[([^\]]*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")


def _repository_files() -> List[Path]:
    """Tracked files plus new, not ignored ones (what the next commit can hold)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    paths = sorted({ROOT / p for p in out.decode("utf-8", "surrogateescape").split("\0") if p})
    return [p for p in paths if p.is_file() and p.resolve() != THIS_FILE]


def _text(path: Path) -> Optional[str]:
    """The file's text, or None for a binary file."""
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _text_files() -> Dict[str, str]:
    texts = {}
    for path in _repository_files():
        text = _text(path)
        if text is not None:
            texts[path.relative_to(ROOT).as_posix()] = text
    return texts


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def github_anchor(heading: str) -> str:
    """GitHub's anchor of a heading: link markup reduced to its text, lowercase, punctuation other
    than '-' and '_' dropped, spaces turned into '-'."""
    heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())
    heading = re.sub(r"[^\w\- ]", "", heading.lower())
    return heading.replace(" ", "-")


def anchors_of(markdown: str) -> Set[str]:
    """The anchors of a Markdown file's headings (repeated headings get -1, -2, ...)."""
    anchors: Set[str] = set()
    seen: Dict[str, int] = {}
    for line in FENCE.sub("", markdown).splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        anchor = github_anchor(match.group(1))
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        anchors.add(anchor if count == 0 else f"{anchor}-{count}")
    return anchors


def _markdown_docs() -> List[Path]:
    return sorted(ROOT.glob("*.md")) + sorted((ROOT / "docs").glob("*.md"))


def test_github_anchor_rules():
    assert github_anchor("Box modes, clipping and flips") == "box-modes-clipping-and-flips"
    assert github_anchor("Semantics of nms and batched_nms") == "semantics-of-nms-and-batched_nms"
    assert github_anchor("torch.compile") == "torchcompile"
    assert anchors_of("# A\n```\n# not a heading\n```\n## A\n") == {"a", "a-1"}


def test_no_pointer_leaves_the_repository():
    offences = []
    for name, text in _text_files().items():
        for pattern in FORBIDDEN:
            for match in pattern.finditer(text):
                offences.append(f"{name}:{_line_of(text, match.start())}: {match.group(0)!r}")
        if not name.startswith("tests/"):
            for match in CHECKPOINT_KEYS.finditer(text):
                if not match.group(1):
                    offences.append(
                        f"{name}:{_line_of(text, match.start())}: 'checkpoint_keys.txt' without its "
                        "path in the repository (tests/assets/checkpoint_keys.txt)"
                    )
    assert not offences, "pointers outside the repository:\n" + "\n".join(offences)


def test_conventions_pointers_name_existing_sections():
    assert CONVENTIONS.is_file(), "docs/CONVENTIONS.md is missing"
    sections = anchors_of(CONVENTIONS.read_text(encoding="utf-8"))
    offences = []
    for name, text in _text_files().items():
        for match in CONVENTIONS_POINTER.finditer(text):
            if match.group(1) not in sections:
                offences.append(f"{name}:{_line_of(text, match.start())}: #{match.group(1)}")
    assert not offences, "pointers to missing sections of docs/CONVENTIONS.md:\n" + "\n".join(offences)


@pytest.mark.parametrize("doc", _markdown_docs(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_markdown_links_resolve(doc: Path):
    text = INLINE_CODE.sub("", FENCE.sub("", doc.read_text(encoding="utf-8")))
    broken = []
    for match in MARKDOWN_LINK.finditer(text):
        target = match.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:, ...
            continue
        path_part, _, anchor = target.partition("#")
        linked = (doc.parent / path_part).resolve() if path_part else doc
        if not linked.exists():
            broken.append(f"{target}: no such file")
            continue
        try:
            linked.relative_to(ROOT)
        except ValueError:
            broken.append(f"{target}: outside the repository")
            continue
        if anchor and linked.suffix == ".md" and anchor not in anchors_of(linked.read_text(encoding="utf-8")):
            broken.append(f"{target}: no heading with anchor #{anchor}")
    assert not broken, f"{doc.relative_to(ROOT)}: broken links:\n" + "\n".join(broken)
