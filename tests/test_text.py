import numpy as np
import pytest

from seqnet.config import OOV_ID, START_ID
from seqnet.text import Vocabulary, clean_text, pad, tokenize


def test_clean_text_strips_html_and_lowercases():
    assert clean_text("Great!<br /><br />Fun &amp; <i>Smart</i>") == "great!  fun &  smart "


def test_tokenize_keeps_inner_apostrophes():
    assert tokenize("I DON'T like the director's cut, 10/10") == [
        "i",
        "don't",
        "like",
        "the",
        "director's",
        "cut",
        "10",
        "10",
    ]


def test_ids_follow_keras_imdb_conventions():
    vocabulary = Vocabulary.from_texts(["b b b a a c", "b a"], num_words=6)
    # b is commonest (rank 1 -> id 4), a next (id 5); c would be id 6, not below num_words.
    assert vocabulary.words == ("b", "a")
    assert vocabulary.encode("a b c unseen") == [START_ID, 5, 4, OOV_ID, OOV_ID]


def test_ties_are_broken_alphabetically():
    assert Vocabulary.from_texts(["zeta alpha"], num_words=10).words == ("alpha", "zeta")


def test_word_index_adoption_matches_keras_offsets():
    vocabulary = Vocabulary.from_word_index({"the": 1, "and": 2, "film": 3}, num_words=7)
    assert vocabulary.encode("the film and") == [START_ID, 4, 6, 5]


def test_decode_inverts_encode():
    vocabulary = Vocabulary.from_texts(["a good film", "a bad film"], num_words=20)
    assert vocabulary.decode(pad([vocabulary.encode("A bad film")], 6)[0]) == "<start> a bad film"


def test_pad_pre_pads_and_keeps_the_last_tokens():
    padded = pad([[1, 2, 3, 4, 5], [7], []], maxlen=3)
    assert padded.dtype == np.int32
    np.testing.assert_array_equal(padded, [[3, 4, 5], [0, 0, 7], [0, 0, 0]])


def test_vocabulary_round_trips_through_json(tmp_path):
    vocabulary = Vocabulary.from_texts(["ünïcode wörds and words"], num_words=50)
    vocabulary.save(tmp_path / "vocabulary.json")
    assert Vocabulary.load(tmp_path / "vocabulary.json") == vocabulary


def test_loading_a_foreign_json_is_a_clear_error(tmp_path):
    (tmp_path / "other.json").write_text('{"words": []}')
    with pytest.raises(ValueError, match="Not a seqnet vocabulary"):
        Vocabulary.load(tmp_path / "other.json")
    with pytest.raises(FileNotFoundError, match="No vocabulary file"):
        Vocabulary.load(tmp_path / "missing.json")
