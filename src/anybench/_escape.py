"""Escaping, once per medium: what a name read from a results file becomes on its way out.

Scenario, series and runtime names, operation texts, failure messages, machine names and commit
ids come from users' scenarios and from files: any of them may hold a character that the medium
would act on rather than show. Each medium has one function here, applied where that medium is
written:

- :func:`terminal`: text printed to a terminal or a CI log (``table``, ``compare``);
- :func:`markdown`: inline Markdown text (table cells, headings, list items, image captions);
- :func:`markdown_code`: an inline code span in Markdown;
- :func:`plot_text`: a plot's title, labels and legend.

Markdown is read as GitHub renders it (GitHub Flavored Markdown, with raw HTML and ``$`` math).
A block of text inside a Markdown code fence (the CI summary's) needs a fence longer than any
run of backticks in it: :func:`code_fence`, which the workflows repeat in shell.
"""

from __future__ import annotations

import re

#: Characters a terminal or a renderer acts on instead of showing them: the C0 controls
#: (newline, ESC, NUL, ...), DEL and the C1 controls, the line and paragraph separators, and the
#: bidirectional marks, embeddings, overrides and isolates (which reorder what is shown).
_ACTIVE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
#: What Markdown (and GitHub's renderer) would read as markup: backslash, code, emphasis,
#: links, table cells, strikethrough, headings, math; ``_`` only where it could open or close
#: emphasis (not inside a word, as in ``done_callback``).
_MARKUP = re.compile(r"[\\`*\[\]|~#$]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
#: Every tag, comment and autolink opens with ``<``; ``&`` would start an entity.
_HTML = {"&": "&amp;", "<": "&lt;"}


def _visible_char(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def terminal(text: str) -> str:
    """*text* for a terminal or a log, on one line: every control character (newline, ESC,
    NUL, C1), line separator and bidirectional control written as its escape (``\\x1b``,
    ``\\n``, ``\\u202e``); everything else, accents and symbols included, as it is."""
    return _ACTIVE.sub(_visible_char, text)


def markdown(text: str) -> str:
    """*text* as inline Markdown that shows exactly *text*, on one line: controls as in
    :func:`terminal`, ``&`` and ``<`` as HTML entities (no tag, no autolink), and every
    character of Markdown's markup backslash-escaped (``\\|`` keeps a table's cells)."""
    text = terminal(text)
    text = re.sub("[&<]", lambda m: _HTML[m.group()], text)
    return _MARKUP.sub(lambda m: "\\" + m.group(), text)


def markdown_code(text: str, *, in_table: bool = False) -> str:
    """*text* as an inline code span, on one line: controls as in :func:`terminal`, fenced
    by more backticks than any run of them in it. In a table's cell (*in_table*) a ``|`` is
    written ``\\|``, which GitHub reads as part of the cell even inside code (and only there)."""
    text = terminal(text)
    if not text:
        return ""
    fence = code_fence(text, shortest=1)
    # A span that starts or ends with a backtick, or is padded on both sides, needs a space
    # inside its fences; Markdown strips one on each side.
    pad = " " if text[0] == "`" or text[-1] == "`" or (text[0] == text[-1] == " ") else ""
    if in_table:
        text = text.replace("|", "\\|")
    return f"{fence}{pad}{text}{pad}{fence}"


def code_fence(text: str, shortest: int = 3) -> str:
    """The backtick fence for a code block holding *text*: longer than any run of backticks
    in it, and at least *shortest* long."""
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    return "`" * max(shortest, longest + 1)


def plot_text(text: str) -> str:
    """*text* for a plot's title, label or legend: on one line, controls as in :func:`terminal`
    (a font has no glyph for them). The plots draw text without mathtext
    (``text.parse_math`` off), so ``$`` needs nothing; were it on, ``$`` would need ``\\$``."""
    return terminal(text)
