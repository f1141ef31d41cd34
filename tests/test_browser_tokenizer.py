"""The page's JavaScript tokenizer (seqnet/static/seqnet.js) against seqnet's, in Node.

The steps after the HTML ones (normalization, case folding, apostrophes, the token pattern)
run in Node's JavaScript engine, as the page runs them in a browser, from the same
tokenizer_spec(); the HTML steps need a DOM and are checked in a real browser by
test_browser_page.py. Without Node the tests skip, or fail under ``SEQNET_REQUIRE_BROWSER=1``
as in CI.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from conftest import browser_unavailable

from seqnet.text import clean_text, tokenize, tokenizer_spec

SEQNET_JS = Path(__file__).parents[1] / "seqnet" / "static" / "seqnet.js"
# Reads {"steps": [...], "texts": [...]} on stdin; writes each text through the steps.
RUN_STEPS = """
import { readFileSync } from "node:fs";
const { compileStep } = await import(process.argv[1]);
const { steps, texts } = JSON.parse(readFileSync(0, "utf8"));
const compiled = steps.map(compileStep);
const results = texts.map((text) => compiled.reduce((value, step) => step(value), text));
process.stdout.write(JSON.stringify(results));
"""
# Text in many scripts and the places a JavaScript port could part from Python.
MULTILINGUAL = [
    "Фильм ужасный, но актёры ХОРОШИЕ",
    "Der Film war großartig und schön! STRASSE Straße ẞ Ärger ÖL über",
    "ΣΊΣΥΦΟΣ ὈΔΥΣΣΕΎΣ σοφός ΐ",  # final sigma: folded per character, never by context
    "İSTANBUL ısparta Iı İi",
    "这部电影很好看 日本の映画は面白かった スーパー カタカナ",
    "ภาพยนตร์เรื่องนี้ดีมาก ລາວ ខ្មែរ မြန်မာ",
    "I ❤️ it ❤ 👍🏽 😀😀 👨‍👩‍👧 🇩🇪 1️⃣ ©",
    "don’t donʼt don't l’été rock’n’roll ‘quoted’ ’tis",
    "١٢٣ ٤٥ ۱۲ १२३ ๑๒ ２０２４年 ½ Ⅻ x²",
    "ﬁne ＦＵＬＬ ｗｉｄｔｈ ｶﾀｶﾅ ǅemal ŉ Å K",  # compatibility forms
    "e\u0301te\u0301 cafe\u0301 \u0301alone a\u0308\u0304",  # combining marks
    "עברית טובה مرحبا بالعالم हिन्दी फ़िल्म 한국 영화",
    "mixed漢字and日本語text 2024年 abc'日本",
]


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        browser_unavailable("Node is not installed: the page's tokenizer runs in JavaScript")
    return node


@pytest.fixture(scope="module")
def run_steps(tmp_path_factory):
    """A function running texts through some of the spec's steps in Node."""
    node = _node()
    # seqnet.js is an ES module; the .mjs name says so to Node without a package.json.
    module = tmp_path_factory.mktemp("js") / "seqnet.mjs"
    shutil.copyfile(SEQNET_JS, module)

    def run(steps: list[dict], texts: list[str]) -> list:
        payload = json.dumps({"steps": steps, "texts": texts})
        result = subprocess.run(
            [node, "--input-type=module", "-e", RUN_STEPS, module.as_uri()],
            input=payload.encode(),
            capture_output=True,
            check=False,
            timeout=300,
        )
        if result.returncode:
            sys.stderr.write(result.stderr.decode())
            raise AssertionError(f"node failed ({result.returncode})")
        return json.loads(result.stdout)

    return run


def _steps(*, tokens: bool) -> list[dict]:
    """The spec's steps after the HTML ones, up to the tokens or to the cleaned text."""
    steps = tokenizer_spec(100, 10)["steps"]
    html_steps = steps[:3]  # line breaks, tags, entities: they need a DOM
    assert [next(iter(s)) for s in html_steps] == ["replace", "replace", "unescape_html_entities"]
    return steps[3:] if tokens else [s for s in steps[3:] if "find_all" not in s]


def test_javascript_tokens_equal_seqnets_in_every_script(run_steps):
    assert run_steps(_steps(tokens=True), MULTILINGUAL) == [tokenize(t) for t in MULTILINGUAL]


def _assigned_bmp() -> list[str]:
    """Every character of the Basic Multilingual Plane Python's unicodedata knows."""
    return [
        c
        for c in map(chr, range(0x10000))
        if unicodedata.category(c) not in ("Cn", "Cs") and c not in "<&"  # no HTML
    ]


def test_javascript_normalizes_and_folds_every_character_as_seqnet(run_steps):
    characters = _assigned_bmp()
    cleaned = run_steps(_steps(tokens=False), characters)
    expected = [clean_text(c) for c in characters]
    differ = [
        (c, js, py) for c, js, py in zip(characters, cleaned, expected, strict=True) if js != py
    ]
    assert not differ, f"{len(differ)} characters differ, e.g. {differ[:5]}"


def test_javascript_reads_every_character_into_tokens_as_seqnet(run_steps):
    # Each character alone, inside a word, after an apostrophe and before a Han character.
    probes = [f"{c} a{c}b a'{c} {c}漢" for c in _assigned_bmp()]
    tokens = run_steps(_steps(tokens=True), probes)
    differ = [(p, js) for p, js in zip(probes, tokens, strict=True) if js != tokenize(p)]
    assert not differ, f"{len(differ)} characters differ, e.g. {differ[:5]}"
