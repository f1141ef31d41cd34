"""vocabulary.json is checked on load: a malformed file is one clear error naming it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import train_tiny_run
from hypothesis import given
from hypothesis import strategies as st

from seqnet.cli import main
from seqnet.text import TOKENIZER_VERSION, Vocabulary

GOOD = {
    "format": "seqnet.vocabulary",
    "tokenizer": TOKENIZER_VERSION,
    "num_words": 10,
    "words": ["the", "a", "film"],
}


def _with(**fields) -> str:
    return json.dumps({key: value for key, value in {**GOOD, **fields}.items() if value != ...})


MALFORMED = [
    ("[1, 2]", "expected a JSON object, got a JSON array"),
    ('"words"', "expected a JSON object, got a JSON string"),
    (_with(words=...), "has no 'words'"),
    (_with(num_words=...), "has no 'num_words'"),
    (_with(format=...), "Not a seqnet vocabulary"),
    (_with(tokenizer="other-v0"), "tokenizer 'other-v0'"),
    (_with(num_words=10).replace("10", "Infinity"), r"not valid JSON \(Infinity is no JSON value"),
    (_with(words=["the", "a"]).replace('"a"', "NaN"), r"not valid JSON \(NaN is no JSON value"),
    (_with(words=[1, "a"]), r"words\[0\] is a JSON number, not a string"),
    (_with(words=["a", None]), r"words\[1\] is null, not a string"),
    (_with(words=["a", ""]), r"words\[1\] is empty"),
    (_with(words="abcdef"), "'words' is a JSON string, not a list of words"),
    (_with(words={"a": 1}), "'words' is a JSON object, not a list of words"),
    (_with(words=["a", "b", "a", "b"]), r"repeats the word 'a' \(words\[0\] and words\[2\]\)"),
    (_with(num_words="10"), "'num_words' is a JSON string, not a whole number"),
    (_with(num_words=10.5), "'num_words' is a JSON number, not a whole number"),
    (_with(num_words=True), "'num_words' is a JSON boolean, not a whole number"),
    (_with(num_words=3), "'num_words' must exceed 3"),
    ("[" * 100_000, r"not valid JSON \(nested too deeply\)"),
    ('{"words": ["a"', r"not valid JSON \(Expecting"),
]


@pytest.mark.parametrize(("text", "message"), MALFORMED, ids=range(len(MALFORMED)))
def test_a_malformed_vocabulary_file_is_one_clear_error(tmp_path, text, message):
    path = tmp_path / "vocabulary.json"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ValueError, match=message) as raised:
        Vocabulary.load(path)

    assert str(raised.value).startswith(f"{path}: ")
    assert "\n" not in str(raised.value)


def test_a_well_formed_file_loads(tmp_path):
    path = tmp_path / "vocabulary.json"
    path.write_text(_with(), encoding="utf-8")

    vocabulary = Vocabulary.load(path)

    assert vocabulary.words == ("the", "a", "film") and vocabulary.num_words == 10
    assert vocabulary.encode("The film") == [1, 4, 6]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)


@given(st.dictionaries(st.sampled_from(sorted(GOOD)), _JSON, max_size=4))
def test_random_fields_load_or_raise_a_value_error(fields):
    payload = {**GOOD, **fields}
    try:
        vocabulary = Vocabulary.from_json(payload)
    except ValueError:
        return
    assert all(isinstance(word, str) and word for word in vocabulary.words)
    assert len(set(vocabulary.words)) == len(vocabulary.words)
    assert isinstance(vocabulary.num_words, int) and vocabulary.num_words == payload["num_words"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("vocabulary-run"))


@pytest.mark.parametrize(
    ("text", "message"), [MALFORMED[0], MALFORMED[6], MALFORMED[11]], ids=["array", "inf", "string"]
)
def test_predict_names_a_malformed_vocabulary_in_one_line(workdir, tmp_path, capsys, text, message):
    run = Path(shutil.copytree(workdir, tmp_path / "run"))
    (run / "vocabulary.json").write_text(text, encoding="utf-8")

    assert main(["predict", "--workdir", str(run), "great film"]) == 1

    error = capsys.readouterr().err
    assert error.startswith(f"seqnet predict: error: {run / 'vocabulary.json'}: ")
    assert error.count("\n") == 1
