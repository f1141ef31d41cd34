"""docs/tutorial.md runs as written: every code block, in order, in one namespace."""

import re
from pathlib import Path

import keras

TUTORIAL = Path(__file__).resolve().parents[1] / "docs" / "tutorial.md"
# A fence at the start of a line, its language, and everything up to the closing fence.
FENCED_BLOCK = re.compile(r"^```(?P<language>[^\n]*)\n(?P<code>.*?)^```[ \t]*$", re.M | re.S)


def code_blocks(path: Path) -> list[tuple[str, int, str]]:
    """(language, line of the first code line, code) of each fenced block in ``path``."""
    text = path.read_text(encoding="utf-8")
    return [
        (match["language"].strip(), text.count("\n", 0, match.start("code")) + 1, match["code"])
        for match in FENCED_BLOCK.finditer(text)
    ]


def test_every_code_block_is_python_and_found():
    text = TUTORIAL.read_text(encoding="utf-8")
    blocks = code_blocks(TUTORIAL)
    # An indented or ~~~ fence would not be found, so its code would never run.
    assert not re.search(r"^[ \t]+(```|~~~)|^~~~", text, re.M)
    assert text.count("```") == 2 * len(blocks)
    assert [language for language, _, _ in blocks] == ["python"] * len(blocks)
    assert len(blocks) >= 10


def test_tutorial_runs(monkeypatch, tmp_path):
    # The page sets KERAS_BACKEND with setdefault; pin it to the backend keras already loaded.
    monkeypatch.setenv("KERAS_BACKEND", keras.backend.backend())
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "tutorial"}
    for _, first_line, code in code_blocks(TUTORIAL):
        # Padding with newlines makes tracebacks point at the line in tutorial.md.
        source = "\n" * (first_line - 1) + code
        exec(compile(source, str(TUTORIAL), "exec"), namespace)
