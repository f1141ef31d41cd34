"""The docs say what the code does: their code blocks run or parse, their option tables match.

Every fenced block of the README and of ``docs/*.md`` is checked:

- a ``python`` block runs, in order with the page's other Python blocks, in one namespace;
- a ``bash`` block is tagged ```` ```bash {.run} ```` (run here, end to end, in a temporary
  folder) or ```` ```bash {.norun} ```` (it installs packages, needs the real archive, several
  hosts or a server); either way its every ``seqnet`` command line must parse;
- a block that cannot run here at all (a GPU, the real archive, a browser) is tagged
  ``{.norun}`` and counted in ``NOT_RUN``, so none is skipped without a word.

The option tables of ``docs/guide.md`` are generated from ``seqnet.cli.build_parser()``; after
adding or changing an option, regenerate them with ``python tests/test_docs.py``.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import io
import json
import re
import shlex
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
GUIDE = ROOT / "docs" / "guide.md"
# A fence at the start of a (possibly indented) line, its info string, and its code.
FENCED_BLOCK = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<info>[^\n]*)\n(?P<code>.*?)^(?P=indent)```[ \t]*$", re.M | re.S
)
# "bash {.norun}": MkDocs' superfences and GitHub both take the first word as the language; a
# bare second word ("bash norun") would make superfences render the block as plain text.
INFO_STRING = re.compile(r"(?P<language>[\w+-]*)[ \t]*(?:\{(?P<classes>[^}]*)\})?[ \t]*")
LANGUAGES = {"python", "bash", "js", ""}  # "": a text block (the README's module tree)
# The blocks that test_readme_train_evaluate_predict_runs runs: a {.run} block elsewhere
# would run nowhere.
RUN = {"README.md": {"bash": 1}}
# The blocks tagged {.norun} on each page: changing this is a decision, not an accident.
# README's "Your own data" block is one: tests/test_own_data.py runs it on the real AG News.
NOT_RUN = {
    "README.md": {"bash": 5},
    "benchmarks.md": {"bash": 1},
    "guide.md": {"bash": 9, "python": 3, "js": 1},
    "index.md": {"bash": 1},
    "scaling.md": {"bash": 7},
}
# Data paths that a {.run} block names for the reader; here the built-in data stands in.
STAND_INS = {"path/to/aclImdb_v1.tar.gz": "synthetic", "path/to/aclImdb/": "synthetic"}
OPTION_TABLE = re.compile(
    r"(?P<start><!-- options: (?P<command>[\w-]+) -->\n)(?P<table>.*?)(?P<end><!-- /options -->)",
    re.S,
)


@dataclasses.dataclass(frozen=True)
class Block:
    """One fenced code block: where it is, its language and tags, and its code."""

    page: Path
    line: int  # of the block's first code line
    language: str
    tags: frozenset[str]
    code: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def code_blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page``, in order, with its indentation removed.

    Args:
        page: A Markdown file.
    """
    text = page.read_text(encoding="utf-8")
    blocks = []
    for match in FENCED_BLOCK.finditer(text):
        info = INFO_STRING.fullmatch(match["info"])
        assert info, f"{page.name}: unreadable fence info string {match['info']!r}"
        tags = frozenset(tag.lstrip(".") for tag in (info["classes"] or "").split())
        line = text.count("\n", 0, match.start("code")) + 1
        code = textwrap.dedent(match["code"])
        blocks.append(Block(page, line, info["language"], tags, code))
    return blocks


def python_blocks(page: Path) -> list[Block]:
    return [b for b in code_blocks(page) if b.language == "python" and "norun" not in b.tags]


def seqnet_commands(block: Block) -> list[list[str]]:
    """The argument lists of every ``seqnet`` command in a shell block.

    Finds ``seqnet ...``, ``python -m seqnet ...`` and ``torchrun ... -m seqnet ...``, after
    any ``VAR=value`` prefixes, in each part of a pipeline or ``&&`` chain.

    Args:
        block: A bash block.
    """
    commands = []
    for line in block.code.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        part: list[str] = []
        for word in [*words, "|"]:
            if word not in ("|", "&&", ";"):
                part.append(word)
                continue
            if "seqnet" in part:
                commands.append(part[part.index("seqnet") + 1 :])
            part = []
    return commands


def test_every_fence_is_found_and_tagged():
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        blocks = code_blocks(page)
        # A ~~~ fence would not be found, so its code would never be checked.
        assert "~~~" not in text, page.name
        assert text.count("```") == 2 * len(blocks), f"{page.name}: a fence was not matched"
        for block in blocks:
            assert block.language in LANGUAGES, f"{block.where}: language {block.language!r}"
            assert block.tags <= {"run", "norun"} and len(block.tags) <= 1, block.where
            if block.language in ("bash", "js"):
                assert block.tags, f"{block.where}: tag it {{.run}} or {{.norun}}"
            if block.language in ("python", ""):
                assert "run" not in block.tags, f"{block.where}: Python blocks run untagged"


def test_blocks_not_run_are_the_ones_counted():
    counted: dict[str, dict[str, dict[str, int]]] = {"run": {}, "norun": {}}
    for page in PAGES:
        for block in code_blocks(page):
            for tag in block.tags:
                counts = counted[tag].setdefault(page.name, {})
                counts[block.language] = counts.get(block.language, 0) + 1
    assert counted["norun"] == NOT_RUN
    assert counted["run"] == RUN


def test_every_seqnet_command_in_the_docs_parses(capsys):
    from seqnet.cli import build_parser

    parser = build_parser()
    parsed = 0
    for page in PAGES:
        for block in code_blocks(page):
            if block.language != "bash":
                continue
            for argv in seqnet_commands(block):
                try:
                    parser.parse_args(argv)
                except SystemExit:
                    pytest.fail(
                        f"{block.where}: `seqnet {shlex.join(argv)}` does not parse: "
                        f"{capsys.readouterr().err.strip()}"
                    )
                parsed += 1
    # The README, the guide, the index and scaling.md show the command dozens of times.
    assert parsed >= 30


def test_readme_and_index_share_the_quick_start():
    # index.md repeats the README's quick start; it runs once, as the README's.
    (readme,) = [b.code for b in python_blocks(ROOT / "README.md")]
    assert [b.code for b in python_blocks(ROOT / "docs" / "index.md")] == [readme]


@pytest.mark.parametrize(
    "name", ["README.md", "docs/tutorial.md", "docs/guide.md", "docs/scaling.md"]
)
def test_python_blocks_run(name, monkeypatch, tmp_path, capsys):
    import keras

    # Pages set KERAS_BACKEND for the reader; pin it to the backend keras already loaded.
    monkeypatch.setenv("KERAS_BACKEND", keras.backend.backend())
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": Path(name).stem}
    blocks = python_blocks(ROOT / name)
    assert blocks
    for block in blocks:
        # Padding with newlines makes tracebacks point at the line in the page.
        source = "\n" * (block.line - 1) + block.code
        exec(compile(source, str(block.page), "exec"), namespace)
    CLAIMS.get(name, lambda namespace, printed: None)(namespace, capsys.readouterr().out)


def _readme_claims(namespace: dict, printed: str) -> None:
    # "Embedding(5000, 50) → Conv1D(250, 3) → … → Dense(1): 350,751 params"
    assert namespace["model"].count_params() == 350_751


def _guide_claims(namespace: dict, printed: str) -> None:
    # "prints a test accuracy above 0.95", then the two reviews' labels, then a dict.
    accuracy = float(re.search(r"^test accuracy (\S+)$", printed, re.M)[1])
    assert accuracy > 0.95, printed
    labels = re.findall(r"^(positive|negative)  ", printed, re.M)
    assert labels == ["positive", "negative"], printed
    assert ast.literal_eval(printed.strip().splitlines()[-1])["label"] == "positive"
    # The .npz example is loaded by load_imdb as the guide says it is.
    assert namespace["x_train"].shape == (2, 400)


def _scaling_claims(namespace: dict, printed: str) -> None:
    assert Path("model.keras").is_file()  # written by the chief, here the only process
    assert float(re.search(r"^test accuracy (\S+)$", printed, re.M)[1]) > 0.95, printed


CLAIMS = {
    "README.md": _readme_claims,
    "docs/guide.md": _guide_claims,
    "docs/scaling.md": _scaling_claims,
}


@pytest.fixture
def review_files(tmp_path):
    """The review files that the docs' shell examples read, in the current folder."""
    (tmp_path / "reviews.txt").write_text("A wonderful film.\nDull and far too long.\n")
    (tmp_path / "reviews.csv").write_text('id,text\n1,"Moving, and funny."\n2,Too long.\n')
    return tmp_path


def run_shell_block(block: Block) -> list[str]:
    """Run a {.run} block's commands through ``seqnet.cli.main``; return what each printed.

    ``export KERAS_BACKEND=...`` is checked, not run: the backend is the one already loaded.
    """
    import keras

    from seqnet.cli import main

    outputs = []
    for line in block.code.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[0] == "export":
            assert words[1].startswith("KERAS_BACKEND="), f"{block.where}: {line}"
            continue
        assert words[0] == "seqnet", f"{block.where}: only seqnet commands run here: {line}"
        argv = [STAND_INS.get(word, word) for word in words[1:]]
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            status = main(argv)
        assert status == 0, (
            f"{block.where}: `{line}` exited with {status} ({keras.backend.backend()})"
        )
        outputs.append(printed.getvalue())
    return outputs


def test_readme_train_evaluate_predict_runs(review_files, monkeypatch):
    monkeypatch.chdir(review_files)
    (block,) = [b for b in code_blocks(ROOT / "README.md") if "run" in b.tags]
    outputs = run_shell_block(block)
    commands = [argv[0] for argv in seqnet_commands(block)]
    assert commands == ["train", "evaluate", "predict", "predict", "predict"]
    # The run learned, and the files it was asked for hold a prediction per review.
    assert json.loads(outputs[1])["accuracy"] > 0.95, outputs[1]
    assert len(outputs[2].splitlines()) == 2
    assert [json.loads(line)["text"] for line in outputs[3].splitlines()] == [
        "A wonderful film.",
        "Dull and far too long.",
    ]
    written = (review_files / "predictions.csv").read_text().splitlines()
    assert written[0] == "id,text,label,score,probability,known_words" and len(written) == 3


# --- option tables ---------------------------------------------------------------------------

# "(default: ...)" anywhere in a help text, with at most one level of parentheses inside.
DEFAULT_IN_HELP = re.compile(r"\s*\(default: (?P<default>[^()]*(?:\([^()]*\)[^()]*)*)\)")


def option_table(command: str) -> str:
    """The Markdown table of ``seqnet COMMAND``'s options, from the parser itself.

    Args:
        command: A subcommand of ``seqnet``.
    """
    rows = ["| option | default | meaning |", "| --- | --- | --- |"]
    for action in _subparser(command)._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        meaning, default = _meaning_and_default(command, action)
        cells = (f"`{_synopsis(action)}`", default, meaning)
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows) + "\n"


def _subparser(command: str) -> argparse.ArgumentParser:
    from seqnet.cli import build_parser

    (commands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return commands.choices[command]


def _synopsis(action: argparse.Action) -> str:
    """``-q, --quiet``, ``--epochs N``, ``--recipe {fast,lecture}`` or ``TEXT ...``."""
    if not action.option_strings:
        return f"{action.metavar} ..." if action.nargs == "*" else str(action.metavar)
    if action.nargs == 0:
        return ", ".join(action.option_strings)
    if action.choices:
        value = "{" + ",".join(map(str, action.choices)) + "}"
    else:
        value = action.metavar or action.dest.upper()
    return ", ".join(f"{option} {value}" for option in action.option_strings)


def _meaning_and_default(command: str, action: argparse.Action) -> tuple[str, str]:
    """The help text without its "(default: ...)", and the default for the table."""
    # As argparse shows it: "%%" is its escape for "%".
    help_text = " ".join((action.help or "").split()).replace("%%", "%")
    match = DEFAULT_IN_HELP.search(help_text)
    meaning = DEFAULT_IN_HELP.sub("", help_text, count=1).strip()
    meaning = meaning[:1].upper() + meaning[1:]
    if not action.option_strings and action.nargs == "*":
        return meaning, "none"
    if action.required:
        return meaning, "required"
    if match:  # the help's own words, e.g. "by extension" or "the one the run was trained on"
        return meaning, match["default"]
    if action.nargs == 0 and action.default is False:
        return meaning, "off"
    if action.default is None and command == "train":
        return meaning, _recipe_defaults(action.dest)
    return meaning, "none" if action.default is None else f"`{action.default}`"


def _recipe_defaults(field: str) -> str:
    """``fast: 0.002, lecture: 0.001``: an option that each recipe sets its own way."""
    from seqnet.config import RECIPES, TrainConfig

    values = (f"{name}: `{getattr(TrainConfig.from_recipe(name), field)}`" for name in RECIPES)
    return ", ".join(values)


def write_option_tables(path: Path = GUIDE) -> bool:
    """Regenerate every option table of ``path``; return whether anything changed."""
    text = path.read_text(encoding="utf-8")
    updated = OPTION_TABLE.sub(lambda m: m["start"] + option_table(m["command"]) + m["end"], text)
    path.write_text(updated, encoding="utf-8")
    return updated != text


def test_option_tables_come_from_the_parser():
    from seqnet.cli import build_parser

    text = GUIDE.read_text(encoding="utf-8")
    tables = {m["command"]: m["table"] for m in OPTION_TABLE.finditer(text)}
    (commands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert sorted(tables) == sorted(commands.choices), "one table per subcommand"
    for command, table in tables.items():
        assert table == option_table(command), (
            f"guide.md's table of `seqnet {command}` options is out of date: "
            "run python tests/test_docs.py"
        )


def test_option_table_rows_say_the_parsers_defaults():
    from seqnet.config import DECISION_THRESHOLD, LECTURE_RECIPE, TrainConfig
    from seqnet.data.sizes import MAX_FITTED_LENGTH, MAX_FITTED_WORDS

    # The generator itself: a row per option, with the recipe's and the parser's defaults.
    table = option_table("train")
    rates = (
        f"fast: `{TrainConfig().learning_rate}`, lecture: `{LECTURE_RECIPE['learning_rate']}`, "
        f"accurate: `{TrainConfig.from_recipe('accurate').learning_rate}`"
    )
    assert f"| `--learning-rate LEARNING_RATE` | {rates} |" in table
    assert "| `--recipe {fast,lecture,accurate}` | fast |" in table
    assert "| `--kernel-size KERNEL_SIZE` | 3 (accurate recipe: 5) |" in table
    # The fitted sizes' bounds, which the help writes out, are seqnet.data.sizes' own.
    assert f"your own texts: the longest of them, at most {MAX_FITTED_LENGTH:,} |" in table
    assert f"twice or more, at most {MAX_FITTED_WORDS:,} |" in table
    assert "| `--resume` | off |" in table
    predict = option_table("predict")
    assert f"| `--threshold THRESHOLD` | {DECISION_THRESHOLD} |" in predict
    assert "| `--format {text,csv,jsonl}` | by extension |" in predict
    assert "| `--format {onnx,saved-model}` | required |" in option_table("export")
    share = argparse.Action(["--share"], "share", help="a share (default: 20%% of it)")
    assert _meaning_and_default("train", share) == ("A share", "20% of it")  # argparse's "%%"


def test_guide_names_every_subcommand_and_its_exit_statuses(tmp_path, capsys):
    from seqnet.cli import build_parser, main

    text = " ".join(GUIDE.read_text(encoding="utf-8").split())
    claim = re.search(r"has (?P<count>\w+) subcommands: (?P<names>[^.]*)\.", text)
    (commands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert re.findall(r"`(\w+)`", claim["names"]) == list(commands.choices)
    assert (
        claim["count"]
        == ["one", "two", "three", "four", "five", "six", "seven"][len(commands.choices) - 1]
    )
    # "a malformed command line ... exits with status 2; a command that cannot do its work
    # (a missing run folder ...) exits with status 1", each after one line naming the command.
    assert "exits with status 2" in text and "exits with status 1" in text
    with pytest.raises(SystemExit) as usage_error:
        main(["train", "--epochs", "0"])
    assert usage_error.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith("seqnet train: error: ")
    assert main(["evaluate", "--workdir", str(tmp_path / "missing")]) == 1
    assert capsys.readouterr().err.startswith("seqnet evaluate: error: ")


def test_workdir_help_says_what_each_command_does_with_it():
    helps = {
        command: _workdir_help(command)
        for command in ("train", "evaluate", "predict", "export", "serve")
    }
    assert "writes" in helps["train"]
    for command in ("evaluate", "predict", "serve"):
        assert "reads" in helps[command] and "writ" not in helps[command], helps[command]
    assert "export-onnx" in helps["export"] and "--output" in helps["export"]


def _workdir_help(command: str) -> str:
    (workdir,) = [a for a in _subparser(command)._actions if a.dest == "workdir"]
    return workdir.help


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    changed = write_option_tables()
    print(f"{GUIDE.relative_to(ROOT)}: option tables {'updated' if changed else 'up to date'}")
