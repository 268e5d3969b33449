"""MkDocs hooks: serve the repository's Markdown as written, links and all.

The pages link the way they read on GitHub: README.md points to ``docs/model.md``, the docs
point to ``../validation/DECISIONS.md``. MkDocs only knows files under ``docs/``, so a
strict build would call every such link broken. These hooks (1) let ``docs/index.md`` pull in
README.md with ``<!-- include: README.md -->``, and (2) rewrite each relative link against
the repository tree: a target under ``docs/`` becomes that page, any other existing file is
served under ``repo/<path>`` (found by scanning the pages, recursively). A link whose target
does not exist is left alone, so ``mkdocs build --strict`` still fails on it.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File, InclusionLevel

ROOT = Path(__file__).resolve().parents[1]
REPO = "repo/"
_INCLUDE = re.compile(r"^<!-- include: (\S+) -->\s*$", re.MULTILINE)
_LINK = re.compile(r"(\]\()([^)\s]+)(\))")
_H1 = re.compile(r"\A\s*# [^\n]*\n")


def _targets(text: str, source: str):
    """Repository paths of the relative links of ``text``, which lives at ``source``."""
    for m in _LINK.finditer(text):
        path = m.group(2).split("#", 1)[0]
        if not path or re.match(r"^[a-z][a-z0-9+.-]*:", path) or path.startswith("/"):
            continue
        yield m, posixpath.normpath(posixpath.join(posixpath.dirname(source), path))


def _repo_path(src_uri: str) -> str:
    return src_uri[len(REPO):] if src_uri.startswith(REPO) else "docs/" + src_uri


def _site_uri(repo_path: str) -> str:
    return repo_path[len("docs/"):] if repo_path.startswith("docs/") else REPO + repo_path


def _expand(text: str) -> str:
    """Replace include markers by the file (its own first heading dropped), links rebased."""

    def include(m):
        source = m.group(1)
        body = _H1.sub("", (ROOT / source).read_text(encoding="utf-8"), count=1)
        return _rebase(body, source, "docs/index.md")

    return _INCLUDE.sub(include, text)


def _rebase(text: str, source: str, dest: str) -> str:
    """Rewrite links of ``text`` written at ``source`` so they work from page ``dest``."""
    out, last = [], 0
    for m, target in _targets(text, source):
        if target.startswith("..") or not (ROOT / target).is_file():
            continue  # leave it: strict mode reports it
        anchor = m.group(2)[len(m.group(2).split("#", 1)[0]):]
        rel = posixpath.relpath(_site_uri(target), posixpath.dirname(_site_uri(dest)) or ".")
        out += [text[last:m.start(2)], rel + anchor]
        last = m.end(2)
    return "".join(out) + text[last:]


def on_files(files, config):
    """Add every file outside docs/ that a page links to, as ``repo/<path>``."""
    queue = [("docs/" + f.src_uri, Path(f.abs_src_path).read_text(encoding="utf-8"))
             for f in files.documentation_pages()]
    seen = {f.src_uri for f in files}
    while queue:
        source, text = queue.pop()
        queue += [(m.group(1), (ROOT / m.group(1)).read_text(encoding="utf-8"))
                  for m in _INCLUDE.finditer(text)]
        for _, target in _targets(text, source):
            uri = _site_uri(target)
            if uri in seen or target.startswith("..") or not (ROOT / target).is_file():
                continue
            seen.add(uri)
            # Reached through the links, not the nav (evidence behind a page's numbers).
            files.append(File.generated(config, uri, abs_src_path=str(ROOT / target),
                                        inclusion=InclusionLevel.NOT_IN_NAV))
            if target.endswith(".md"):
                queue.append((target, (ROOT / target).read_text(encoding="utf-8")))
    return files


def on_page_markdown(markdown, page, config, files):
    """Include README.md in the home page; rebase every page's links (see the module doc)."""
    path = _repo_path(page.file.src_uri)
    return _rebase(_expand(markdown), path, path)
