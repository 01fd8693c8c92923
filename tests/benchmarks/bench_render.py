"""Rendering benchmark: a ~50 KB Markdown message through ``markdown_to_html`` (Markdown plus
the inlined email stylesheet) against ``markdown.markdown()`` alone on the same text with the
same extensions, in the same run. Target: at most 1.5x the baseline.

Run: ``.venv/bin/python -m tests.benchmarks.bench_render [--runs N] [--kb SIZE]``.
The two cases run interleaved, so that a busy machine slows both alike.
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from collections.abc import Callable, Sequence
from functools import partial

import markdown

from netcore_desktop.core.contract import PLACEHOLDER_RE
from netcore_desktop.core.render import _MD_EXTENSIONS, find_placeholders, markdown_to_html

from ._table import Row, print_table

#: The ratio the issue asks for (markdown_to_html / markdown.markdown).
TARGET_RATIO = 1.5
BASELINE = "markdown.markdown() alone"
OURS = "markdown_to_html (inlined)"
PLAIN_SUFFIX = ", no placeholders"

_WORDS = [
    "account",
    "order",
    "invoice",
    "delivery",
    "update",
    "offer",
    "summer",
    "team",
    "product",
    "customer",
    "support",
    "welcome",
    "thanks",
    "please",
    "review",
    "details",
    "payment",
    "schedule",
    "service",
    "plan",
    "upgrade",
    "report",
    "weekly",
    "new",
    "your",
    "our",
    "the",
    "a",
    "to",
    "and",
    "of",
    "for",
    "with",
    "on",
    "in",
    "is",
    "are",
    "will",
    "be",
    "this",
    "that",
]
_KEYS = ["FIRST_NAME", "ORDER_ID", "INVOICE_NO", "PLAN_NAME", "COUPON_CODE", "CITY"]


def make_markdown(size_bytes: int = 50 * 1024, seed: int = 2024) -> str:
    """A realistic marketing/transactional Markdown message of about ``size_bytes``.

    Deterministic for a given seed: headings, paragraphs with emphasis, links and
    ``[%KEY%]`` placeholders, bullet and numbered lists, a table, code and quotes.
    """
    rng = random.Random(seed)

    def words(n: int) -> str:
        out = []
        for _ in range(n):
            r = rng.random()
            word = rng.choice(_WORDS)
            if r < 0.04:
                out.append(f"[%{rng.choice(_KEYS)}%]")
            elif r < 0.08:
                out.append(f"**{word}**")
            elif r < 0.11:
                out.append(f"_{word}_")
            elif r < 0.13:
                out.append(f"[{word}](https://example.com/{word}?u=[%ORDER_ID%]&src=mail)")
            elif r < 0.14:
                out.append(f"`{word}`")
            else:
                out.append(word)
        return " ".join(out)

    blocks = [f"# Hello [%FIRST_NAME%], your {words(3)}"]
    section = 0
    while sum(len(b) + 2 for b in blocks) < size_bytes:
        section += 1
        blocks.append(f"## {section}. {words(4).capitalize()}")
        for _ in range(rng.randint(1, 3)):
            blocks.append(words(rng.randint(30, 70)).capitalize() + ".")
        kind = section % 5
        if kind == 0:
            blocks.append("\n".join(f"- {words(rng.randint(4, 12))}" for _ in range(5)))
        elif kind == 1:
            blocks.append("\n".join(f"{i}. {words(rng.randint(4, 12))}" for i in range(1, 5)))
        elif kind == 2:
            rows = [
                f"| {words(2)} | {rng.randint(1, 99)} | {rng.randint(100, 9999) / 100:.2f} |"
                for _ in range(6)
            ]
            blocks.append("| Item | Qty | Price |\n|------|----:|------:|\n" + "\n".join(rows))
        elif kind == 3:
            code = "\n".join(f"{w} = {rng.randint(0, 999)}  # {words(3)}" for w in _WORDS[:5])
            blocks.append(f"```python\n{code}\n```")
        else:
            blocks.append("> " + words(25) + "\n>\n> " + words(15))
            blocks.append(f"![{words(2)}](https://img.example.com/{section}.png)")
    return "\n\n".join(blocks) + "\n"


def _time(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def measure(source: str, runs: int = 9, *, plain: bool = False) -> list[Row]:
    """Interleaved timings (ms) of the baseline and of ``markdown_to_html`` on ``source``.

    With ``plain`` two more cases run on the same text with every placeholder replaced by a
    word. ``markdown_to_html`` hides placeholders from Markdown (so ``[%KEY%]`` is never read
    as a link), which makes Markdown itself faster; the plain pair shows the cost of the rest
    (guarding and inlining) without that help.
    """
    texts = {"": source}
    if plain:
        texts[PLAIN_SUFFIX] = PLACEHOLDER_RE.sub("value", source)
    cases: dict[str, Callable[[], object]] = {}
    for suffix, text in texts.items():
        cases[BASELINE + suffix] = partial(
            markdown.markdown, text, extensions=_MD_EXTENSIONS, output_format="html"
        )
        cases[OURS + suffix] = partial(markdown_to_html, text)
    for fn in cases.values():  # warm up imports and regex caches
        fn()
    values: dict[str, list[float]] = {name: [] for name in cases}
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection in one case but not the other is noise, not rendering cost
    try:
        for _ in range(runs):
            for name, fn in cases.items():
                values[name].append(_time(fn))
            gc.collect()
    finally:
        if gc_was_enabled:
            gc.enable()
    return [Row(name, vals) for name, vals in values.items()]


def ratio(rows: Sequence[Row], suffix: str = "") -> float:
    """``markdown_to_html`` median over the baseline median (of the ``suffix`` pair)."""
    by_name = {r.name: r for r in rows}
    return by_name[OURS + suffix].median / by_name[BASELINE + suffix].median


def check_output(source: str) -> str:
    """Render once and check the result is a sane email document; returns the HTML."""
    html = markdown_to_html(source)
    assert html.startswith("<!DOCTYPE html>") and "<style" not in html
    assert "<table" in html and "<pre" in html and "<ul" in html and "<ol" in html
    assert 'style="' in html
    assert set(find_placeholders(source)) <= set(find_placeholders(html))
    return html


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its table; exit status 1 when the target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="runs per case (default 9, min 7)")
    parser.add_argument("--kb", type=int, default=50, help="message size in KB (default 50)")
    args = parser.parse_args(argv)
    source = make_markdown(args.kb * 1024)
    html = check_output(source)
    rows = measure(source, max(args.runs, 7), plain=True)
    title = (
        f"Rendering {len(source.encode()) / 1024:.1f} KB of Markdown "
        f"({len(html.encode()) / 1024:.1f} KB of email HTML)"
    )
    print_table(title, rows, "ms", baseline=BASELINE)
    r = ratio(rows)
    r_plain = ratio(rows, PLAIN_SUFFIX)
    verdict = "met" if max(r, r_plain) <= TARGET_RATIO else "MISSED"
    print(
        f"ratio {r:.2f}x (without placeholders {r_plain:.2f}x), "
        f"target <= {TARGET_RATIO}x: {verdict}",
        flush=True,
    )
    return 0 if verdict == "met" else 1


if __name__ == "__main__":
    raise SystemExit(main())
