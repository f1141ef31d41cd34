"""seqnet's warnings name the line of the caller's code that led to them."""

import inspect
import warnings

import numpy as np
import pytest

from seqnet.predict import UnknownWordsWarning, warn_if_unknown
from seqnet.user_warnings import warn


def test_a_warning_raised_inside_seqnet_names_its_callers_line():
    with pytest.warns(UnknownWordsWarning, match="1 of 2 texts") as caught:
        calling_line = inspect.currentframe().f_lineno + 1
        warn_if_unknown(np.array([True, False]), vocabulary_words=100)
    (warning,) = caught
    assert (warning.filename, warning.lineno) == (__file__, calling_line)


def test_a_warning_from_outside_seqnet_names_the_line_that_warned():
    with pytest.warns(UserWarning, match="plain") as caught:
        calling_line = inspect.currentframe().f_lineno + 1
        warn("plain")
    (warning,) = caught
    assert (warning.filename, warning.lineno, warning.category) == (
        __file__,
        calling_line,
        UserWarning,
    )


def test_the_once_per_location_filter_counts_the_callers_line():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # once per location
        for _ in range(3):
            warn_if_unknown(np.array([False]), vocabulary_words=100)
        warn_if_unknown(np.array([False]), vocabulary_words=100)
    assert len(caught) == 2
