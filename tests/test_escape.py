"""Names from users' scenarios and from files reach every medium escaped: the report's Markdown,
the terminal of ``table`` and ``compare``, and the CI summary's code fences."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from anybench._cli import main
from anybench._escape import code_fence, markdown, markdown_code, terminal

from .conftest import remeasured

#: What a scenario NAME, a series, a runtime, a failure or a machine may hold.
HOSTILE = [
    "a|b",
    "x\n# Injected",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "\x1b[31mred",
    "nul\x00",
    "rtl\u202eevil",
    "```",
]
#: What no output may hold raw: controls that act on a terminal or reorder the text.
CONTROLS = ["\x1b", "\x00", "\u202e", "\r", "\x07"]
#: What Markdown may not hold raw besides: HTML.
HTML = ["<script>", "<img"]


def test_terminal_text_shows_controls_and_keeps_the_rest() -> None:
    shown = terminal("\x1b[31mred\x00\u202e\u2066\x9b\n\t")
    assert shown == "\\x1b[31mred\\x00\\u202e\\u2066\\x9b\\n\\t"
    assert terminal("1.2 µs † – ±3% → ok") == "1.2 µs † – ±3% → ok"


def test_markdown_text_shows_every_character_and_makes_no_markup() -> None:
    assert markdown("a|b") == "a\\|b"
    assert markdown("<script>&") == "&lt;script>&amp;"
    assert markdown("done_callback") == "done_callback"  # inside a word: no emphasis to fear
    assert markdown("_x_ *y* [z](u) `c` ~s~ $m$ #h \\") == (
        "\\_x\\_ \\*y\\* \\[z\\](u) \\`c\\` \\~s\\~ \\$m\\$ \\#h \\\\"
    )
    assert "\n" not in markdown("x\n# Injected")


def test_a_code_span_is_fenced_longer_than_any_backtick_run() -> None:
    assert markdown_code("spawn") == "`spawn`"
    assert markdown_code("a``b") == "```a``b```"
    assert markdown_code("```") == "```` ``` ````"
    assert markdown_code("a|b", in_table=True) == "`a\\|b`"
    assert markdown_code("a|b") == "`a|b`"
    assert code_fence("x ```` y") == "`````"
    assert code_fence("plain") == "```"


def _split_cells(line: str) -> list[str]:
    """A Markdown table row's cells: split at each ``|`` not escaped by a backslash."""
    cells, cell, escaped = [], "", False
    for char in line.strip()[1:-1]:
        if char == "|" and not escaped:
            cells.append(cell)
            cell = ""
        else:
            cell += char
        escaped = char == "\\" and not escaped
    return [*cells, cell]


def _tables(page: str) -> list[list[str]]:
    tables: list[list[str]] = []
    previous = ""
    for line in page.splitlines():
        if line.startswith("|"):
            if not previous.startswith("|"):
                tables.append([])
            tables[-1].append(line)
        previous = line
    return tables


def _hostile(data: dict[str, Any]) -> dict[str, Any]:
    """*data* (a results file's JSON) with a hostile name in every place a name can come from."""
    renames = {"spawn": "|".join(HOSTILE), "spawn_native": "nat\n## Two\x1b]0;title\x07"}
    for i, bench in enumerate(data["benchmarks"]):
        extra = bench["extra_info"]
        extra["scenario"] = renames.get(extra["scenario"], extra["scenario"])
        if extra.get("native_of"):
            extra["native_of"] = renames.get(extra["native_of"], extra["native_of"])
        extra["operation"] = "<img src=x onerror=alert(1)> ``` op\n# H"
        if extra["runtime"] == "trio":
            extra["runtime"] = "tr|io<script>"
        extra["latency_ns"] = {
            f"{series}|`\n# S{i % 2}": summary for series, summary in extra["latency_ns"].items()
        }
    machine = data["machine_info"]
    machine["node"] = "host|x\n# Node<script>"
    machine["cpu"] = {"brand_raw": "<img src=x onerror=alert(1)>\u202e"}
    data["commit_info"] = {"id": "```|\x1b[2J", "dirty": True}
    run = data.setdefault("anybench_run", {})
    run["failed"] = [{"test": "t|```\n# F", "error": "\x1b[31mboom\x00\u202e<script>"}]
    run["unavailable_runtimes"] = {"rl|oop\n# R": "<script>missing\x1b[0m"}
    return data


@pytest.fixture
def hostile_results(tiny_results: Path, tmp_path: Path) -> Path:
    data = json.loads(tiny_results.read_text())
    keep = {"spawn", "spawn_native", "latency_under_load"}
    data["benchmarks"] = [b for b in data["benchmarks"] if b["extra_info"]["scenario"] in keep]
    out = tmp_path / "hostile.json"
    out.write_text(json.dumps(_hostile(data)))
    return out


def _assert_no_raw(text: str, forbidden: list[str]) -> None:
    for raw in forbidden:
        assert raw not in text, repr(raw)
    for line in text.splitlines():
        assert not re.match(r"\s*#+ (Injected|Two|Node|H|S\d|F|R)\b", line), line
        assert not line.lstrip().startswith("```"), line


def test_the_report_escapes_every_name(hostile_results: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert main(["report", str(hostile_results), "--out", str(out)]) == 0
    page = (out / "index.md").read_text()
    _assert_no_raw(page, CONTROLS)
    # Inside a code span, HTML is shown as it is written; outside, none may be left.
    code_spans = re.compile(r"(?<![`\\])(`+)(?!`).*?(?<!`)\1(?!`)")
    _assert_no_raw(code_spans.sub("", page), HTML)
    tables = _tables(page)
    assert len(tables) >= 4
    for table in tables:
        widths = {len(_split_cells(line)) for line in table}
        assert len(widths) == 1, table
    headings = [line for line in page.splitlines() if line.startswith("#")]
    assert all(h.startswith(("# anybench", "## ", "### ")) for h in headings), headings
    # The names are there, shown rather than acted on.
    assert "&lt;script>" in page
    assert "a\\|b" in page


def test_table_and_compare_escape_every_name(
    hostile_results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["table", str(hostile_results)]) == 1  # it holds a failure
    table = capsys.readouterr().out
    _assert_no_raw(table, CONTROLS)
    rows = [line for line in table.splitlines() if line.startswith(("a|b", "nat", "latency"))]
    header = table.splitlines()[1]
    assert len(rows) == 6, table  # two scales of three scenarios, one line each
    for row in rows:
        assert len(row) == len(header), (row, header)  # the columns stay aligned
    assert "\\x1b[31mboom" in table

    again = remeasured(hostile_results, hostile_results.with_name("again.json"))
    assert main(["compare", str(hostile_results), str(again)]) == 1
    compared = capsys.readouterr().out
    _assert_no_raw(compared, CONTROLS)
    assert "\\x1b[31mboom" in compared
