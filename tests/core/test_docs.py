"""The user docs stay true to the tree: a short README, paths and links that exist, a Layout
section that matches the packages, and no references to internal bookkeeping."""

from __future__ import annotations

import itertools
import re
import shlex
from pathlib import Path

import pytest

from mrilearn.cli import build_parser, parse
from mrilearn.config import find_config

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
GUIDES = [README, *sorted((ROOT / "docs").glob("*.md"))]  # the results keep their own configs
FOLDERS = ("src", "configs", "tests", "bench", "docs")  # the repository's top-level folders

# A repository path: starts with a top-level folder, not inside a longer path or a URL.
FOLDER = "|".join(FOLDERS)
REPO_PATH = re.compile(rf"(?<![\w./-])(?:{FOLDER})/[^\s`'\"()\[\],;:|#]*")
PLACEHOLDER = re.compile(r"[<*{$]")  # runs/<experiment>/, configs/sr/*.yaml, k{24,32}
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#+\s+(.*?)\s*$", re.MULTILINE)
LAYOUT_NAME = re.compile(r"[\w.-]+(?:/[\w.-]+)*/|[\w-]+\.py")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)
INTERNAL = re.compile(r"(?i:\bissues?\b)|\bSPEC\b")
SHELL_BLOCK = re.compile(r"```bash\n(.*?)```", re.DOTALL)


def rel(page: Path) -> str:
    return str(page.relative_to(ROOT))


def named_paths(text: str) -> list[str]:
    """Repository paths a page names, each cut before its first placeholder."""
    found = []
    for token in REPO_PATH.findall(text):
        token = PLACEHOLDER.split(token, 1)[0].rstrip(".")
        found.append(token)
    return found


def prose(page: Path) -> str:
    """A page without its code (where brackets and # are code, not links and headings)."""
    return CODE.sub("", page.read_text())


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    titles = HEADING.findall(prose(page))
    return {re.sub(r"[^\w\- ]", "", t.lower()).replace(" ", "-") for t in titles}


def layout_entries() -> list[tuple[Path, str]]:
    """(path, line) for every name in the README's Layout block, resolved by indentation."""
    section = README.read_text().split("\n## Layout", 1)[1]
    block = section.split("```", 2)[1].splitlines()[1:]
    stack: list[tuple[int, Path]] = []
    entries = []
    for line in filter(str.strip, block):
        indent = len(line) - len(line.lstrip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1] if stack else ROOT
        names = list(itertools.takewhile(LAYOUT_NAME.fullmatch, line.split()))
        entries += [(parent / name, line) for name in names]
        if len(names) == 1 and names[0].endswith("/"):
            stack.append((indent, parent / names[0]))
    return entries


def test_readme_is_a_user_guide_of_at_most_250_lines():
    lines = README.read_text().splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move details to docs/"


def test_the_path_finder_skips_examples_and_keeps_repository_paths():
    text = (
        "`scan.nii.gz` `runs/<experiment>/` see docs/sr.md. `configs/sr/*.yaml` "
        "https://docs.pytorch.org/x `mrilearn train configs/sr/base.yaml train.iterations=2` "
        "[guide](docs/mtmri.md#your-own-data-the-raw-file)"
    )
    assert named_paths(text) == [
        "docs/sr.md",
        "configs/sr/",
        "configs/sr/base.yaml",
        "docs/mtmri.md",
    ]


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_every_repository_path_a_page_names_exists(page):
    missing = [p for p in named_paths(page.read_text()) if not (ROOT / p).exists()]
    assert not missing, f"{rel(page)} names paths that do not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_every_relative_link_resolves(page):
    broken = []
    for target in LINK.findall(prose(page)):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(target)
    assert not broken, f"{rel(page)} has broken links: {broken}"


def test_the_layout_section_is_true_to_the_tree():
    entries = layout_entries()
    missing = [f"{p.relative_to(ROOT)} ({line.strip()})" for p, line in entries if not p.exists()]
    assert not missing, f"README Layout names what is not in the tree: {missing}"
    named = {p.resolve() for p, _ in entries}
    packages = [
        d
        for base in (ROOT / "src" / "mrilearn", ROOT / "src" / "mrilearn" / "apps")
        for d in sorted(base.iterdir())
        if (d / "__init__.py").is_file()
    ]
    absent = [str(d.relative_to(ROOT)) for d in packages if d.resolve() not in named]
    assert not absent, f"README Layout leaves out packages: {absent}"


def test_the_layout_names_every_config_link():
    line = next(line for p, line in layout_entries() if p == ROOT / "configs/")
    links = sorted(p.name for p in (ROOT / "configs").iterdir())
    assert set(links) <= set(line.split()), f"configs/ holds {links}; the Layout line: {line}"


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_docs_have_no_issue_or_spec_references(page):
    hits = [m.group(0) for m in INTERNAL.finditer(page.read_text())]
    assert not hits, f"{rel(page)} refers to {sorted(set(hits))}: write for users"


def commands(page: Path) -> list[str]:
    """The complete ``mrilearn`` command lines of a page's bash blocks (continuations joined;
    lines with placeholders or optional ``[--flag]`` parts are left out)."""
    lines = []
    for block in SHELL_BLOCK.findall(page.read_text()):
        lines += block.replace("\\\n", " ").splitlines()
    return [
        line
        for line in lines
        if line.startswith("mrilearn ") and not re.search(r"\.\.\.|<|\$| \[--", line)
    ]


@pytest.mark.parametrize("page", GUIDES, ids=rel)
def test_every_command_a_guide_shows_parses_and_names_real_configs(page):
    parser = build_parser()
    for line in commands(page):
        try:
            args = parse(parser, shlex.split(line, comments=True)[1:])
        except SystemExit:
            pytest.fail(f"{rel(page)}: `{line}` does not parse (see the error above)")
        for config in (getattr(args, k, None) for k in ("config", "spade", "seg")):
            if config is not None:
                find_config(str(config), README)  # a packaged name or a file of the checkout
