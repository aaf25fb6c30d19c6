#!/usr/bin/env python3
"""Check the documentation's references to the repository.

    python3 scripts/check_links.py

Every relative link and image of README.md, docs/*.md and the other
README.md files must name a file or folder that exists (and, for a link to
a heading of a Markdown file, a heading of that name). In README.md and
docs/*.md, every path in backquotes that starts with a top-level folder of
the repository (`src/loop.cpp`, `bench/tools/`, `src/stream*.cpp`) must
match something too. Prints what does not and exits 1; standard library
only.
"""

import glob
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\s]+)`")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped,
    spaces as dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(md):
    text = FENCE.sub("", md.read_text())
    return {slug(m) for m in re.findall(r"(?m)^#+ (.*)$", text)}


def check_links(md, problems):
    text = FENCE.sub("", md.read_text())
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (md.parent / path).resolve() if path else md
        if not dest.exists():
            problems.append(f"{md.relative_to(ROOT)}: no such file: {target}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(
                f"{md.relative_to(ROOT)}: no such heading: {target}"
            )


def check_code_paths(md, top, problems):
    for token in CODE.findall(md.read_text()):
        token = token.rstrip(".,:;")
        first = token.split("/", 1)[0]
        if "/" not in token or first not in top or "<" in token:
            continue
        if not glob.glob(str(ROOT / token)):
            problems.append(f"{md.relative_to(ROOT)}: no such path: `{token}`")


def main():
    files = subprocess.run(
        ["git", "ls-files"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    top = {f.split("/", 1)[0] for f in files if "/" in f}
    pages = sorted(
        {
            ROOT / f
            for f in files
            if f.endswith("README.md")
            or (f.startswith("docs/") and f.endswith(".md"))
        }
        | {Path(p) for p in glob.glob(str(ROOT / "docs" / "*.md"))}
    )
    problems = []
    for md in pages:
        check_links(md, problems)
        rel = md.relative_to(ROOT).as_posix()
        if rel == "README.md" or rel.startswith("docs/"):
            check_code_paths(md, top, problems)
    for p in problems:
        print(p)
    print(f"check_links: {len(pages)} pages, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
