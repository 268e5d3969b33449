"""Numbers rounded for reading, and a report's blocks rendered to Markdown and to HTML.

A report is a list of blocks (:class:`Heading`, :class:`Text`, :class:`Items`,
:class:`Table`, :class:`Figure`, :class:`Code`) rendered twice, so ``report.md`` and
``report.html`` never disagree. The HTML page is self-contained: one file, inline CSS, figures
as base64 ``data:`` URIs, no script and no external asset. Inline markup in text is limited to
```code``` and ``**bold**``.
"""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass, field

__all__ = [
    "format_prob", "format_sig", "format_ess", "format_rhat", "format_interval",
    "Heading", "Text", "Items", "Table", "Figure", "Code", "to_markdown", "to_html",
]


# -- numbers -------------------------------------------------------------------------------

def _finite(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def format_prob(p) -> str:
    """A probability to 3 decimals; ``"< 0.001"`` / ``"> 0.999"`` beyond them; "" if missing.

    Examples
    --------
    >>> [format_prob(p) for p in (0.0, 0.0004, 0.0012, 0.5, 0.9994, 1.0)]
    ['< 0.001', '< 0.001', '0.001', '0.500', '> 0.999', '> 0.999']
    """
    v = _finite(p)
    if v is None:
        return ""
    if not -1e-9 <= v <= 1 + 1e-9:
        raise ValueError(f"a probability should be in [0, 1] but got {p!r}")
    if v < 0.001:
        return "< 0.001"
    if v > 0.999:
        return "> 0.999"
    return f"{v:.3f}"


def format_sig(value, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits, in fixed notation from 1e-4 to 1e6.

    Outside that range scientific notation; "" for a missing value.

    Examples
    --------
    >>> [format_sig(v) for v in (0.0123456, -1.0, 0.09996, 1234.5, 2.5e-7, 0)]
    ['0.0123', '-1.00', '0.100', '1230', '2.50e-07', '0']
    """
    v = _finite(value)
    if v is None:
        try:
            v = float(value)
        except (TypeError, ValueError):
            return ""
        return "" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if v == 0:
        return "0"
    exp = math.floor(math.log10(abs(v)))
    if exp < -4 or exp >= 6:
        return f"{v:.{digits - 1}e}"
    decimals = digits - 1 - exp
    rounded = round(v, decimals)
    # Rounding can carry into the next power of ten (0.09996 -> 0.1000): one digit less.
    if rounded != 0 and math.floor(math.log10(abs(rounded))) > exp:
        decimals -= 1
        rounded = round(v, decimals)
    return f"{rounded:.{max(decimals, 0)}f}"


def format_ess(value) -> str:
    """An effective sample size as an integer ("" if missing).

    Examples
    --------
    >>> format_ess(3975.303047)
    '3975'
    """
    v = _finite(value)
    return "" if v is None else str(int(round(v)))


def format_rhat(value) -> str:
    """R-hat to 3 decimals, the precision its threshold (1.01) needs ("" if missing)."""
    v = _finite(value)
    return "" if v is None else f"{v:.3f}"


def format_interval(lo, hi, digits: int = 3) -> str:
    """``"[lo, hi]"`` with both ends to ``digits`` significant digits."""
    return f"[{format_sig(lo, digits)}, {format_sig(hi, digits)}]"


# -- blocks --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Heading:
    """A section title; ``level`` 1 is the page title."""

    text: str
    level: int = 2


@dataclass(frozen=True)
class Text:
    """A paragraph; ``problem`` marks it as something to fix (styled in HTML)."""

    text: str
    problem: bool = False


@dataclass(frozen=True)
class Items:
    """A bullet list; items whose index is in ``problems`` are marked as such."""

    items: tuple[str, ...]
    problems: frozenset[int] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Table:
    """Rows of already formatted cells; ``numeric`` columns are right-aligned."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: frozenset[int] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Figure:
    """A figure: PNG bytes (embedded in HTML), the file it was saved to, a caption."""

    png: bytes
    file: str
    caption: str
    other_files: tuple[str, ...] = ()


@dataclass(frozen=True)
class Code:
    """Preformatted text (e.g. a table printed by pandas)."""

    text: str


# -- Markdown ------------------------------------------------------------------------------

def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks) -> str:
    """Render the blocks as one Markdown document (GitHub-flavoured tables)."""
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out += ["#" * b.level + " " + b.text, ""]
        elif isinstance(b, Text):
            out += [("**Problem:** " if b.problem else "") + b.text, ""]
        elif isinstance(b, Items):
            out += [f"- {'**Problem:** ' if k in b.problems else ''}{item}"
                    for k, item in enumerate(b.items)] + [""]
        elif isinstance(b, Table):
            out.append("| " + " | ".join(_md_cell(h) for h in b.header) + " |")
            out.append("|" + "|".join("---:" if k in b.numeric else "---"
                                      for k in range(len(b.header))) + "|")
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
            out.append("")
        elif isinstance(b, Figure):
            also = f" (also {', '.join(b.other_files)})" if b.other_files else ""
            out += [f"![{b.caption}]({b.file})", "", f"*{b.caption}*{also}", ""]
        elif isinstance(b, Code):
            out += ["```", b.text.rstrip("\n"), "```", ""]
        else:
            raise TypeError(f"not a report block: {b!r}")
    return "\n".join(out)


# -- HTML ----------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 62rem;
       margin: 2rem auto; padding: 0 1rem; line-height: 1.45; color: #1a1a1a; }
table { border-collapse: collapse; margin: 0.5rem 0 1.2rem; font-size: 0.92rem; }
th, td { border: 1px solid #c8c8c8; padding: 0.2rem 0.55rem; text-align: left; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.problem { color: #9b1c1c; }
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; }
figcaption { font-size: 0.9rem; color: #444; }
pre { background: #f6f6f6; padding: 0.6rem; overflow-x: auto; font-size: 0.85rem; }
code { background: #f3f3f3; padding: 0 0.2rem; }
"""

_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def _inline(text: str) -> str:
    """Escape, then render ```code``` and ``**bold**``."""
    escaped = html.escape(str(text), quote=False)
    return _BOLD.sub(r"<strong>\1</strong>", _CODE.sub(r"<code>\1</code>", escaped))


def to_html(blocks, title: str) -> str:
    """Render the blocks as one self-contained HTML page (figures as base64 PNG)."""
    body: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            body.append(f"<h{b.level}>{_inline(b.text)}</h{b.level}>")
        elif isinstance(b, Text):
            cls = ' class="problem"' if b.problem else ""
            prefix = "<strong>Problem:</strong> " if b.problem else ""
            body.append(f"<p{cls}>{prefix}{_inline(b.text)}</p>")
        elif isinstance(b, Items):
            lis = []
            for k, item in enumerate(b.items):
                mark = ('<li class="problem"><strong>Problem:</strong> ' if k in b.problems
                        else "<li>")
                lis.append(f"{mark}{_inline(item)}</li>")
            body.append("<ul>\n" + "\n".join(lis) + "\n</ul>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{html.escape(str(h))}</th>" for h in b.header)
            rows = []
            for row in b.rows:
                cells = "".join(
                    f'<td class="num">{html.escape(str(c))}</td>' if k in b.numeric
                    else f"<td>{html.escape(str(c))}</td>" for k, c in enumerate(row))
                rows.append(f"<tr>{cells}</tr>")
            body.append(f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n"
                        + "\n".join(rows) + "\n</tbody>\n</table>")
        elif isinstance(b, Figure):
            data = base64.b64encode(b.png).decode("ascii")
            files = ", ".join((b.file, *b.other_files))
            body.append(f'<figure><img src="data:image/png;base64,{data}" '
                        f'alt="{html.escape(b.caption)}">'
                        f"<figcaption>{_inline(b.caption)} (files: {html.escape(files)})"
                        "</figcaption></figure>")
        elif isinstance(b, Code):
            body.append(f"<pre>{html.escape(b.text.rstrip())}</pre>")
        else:
            raise TypeError(f"not a report block: {b!r}")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")
