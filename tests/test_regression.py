"""The tutorial's first model: the closed-form slope and the slope Keras learns agree."""

import numpy as np
import pytest

from seqnet.regression import closed_form_slope, fit_slope


@pytest.fixture
def noisy_line():
    rng = np.random.default_rng(7)
    x = rng.normal(size=64)
    return x, 2.5 * x + rng.normal(scale=0.3, size=64)


def test_closed_form_recovers_an_exact_line():
    assert closed_form_slope([1.0, 2.0, 3.0], [2.0, 4.0, 6.0]) == 2.0
    assert closed_form_slope([-2, 4], [1, -2]) == pytest.approx(-0.5)


def test_closed_form_minimizes_the_squared_loss(noisy_line):
    x, y = noisy_line
    alpha = closed_form_slope(x, y)

    def loss(a):
        return float(np.sum((a * x - y) ** 2))

    assert loss(alpha) < min(loss(alpha - 1e-3), loss(alpha + 1e-3))


def test_gradient_descent_with_keras_finds_the_closed_form(noisy_line):
    x, y = noisy_line
    # mean(x²) ≈ 1, so each step shrinks the error by |1 - 2·0.4·mean(x²)| ≈ 0.2.
    learned = fit_slope(x, y, epochs=20, learning_rate=0.4)
    assert learned == pytest.approx(closed_form_slope(x, y), abs=1e-3)


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        ([], [], "empty"),
        ([1.0, 2.0], [1.0], "same length"),
        ([0.0, 0.0, 0.0], [1.0, 2.0, 3.0], "every x is 0"),
        ([[1.0, 2.0]], [[1.0, 2.0]], "1-D"),
        ([1.0, float("nan")], [1.0, 2.0], "finite"),
        (["a", "b"], [1.0, 2.0], "numbers"),
    ],
)
def test_unusable_data_is_rejected(x, y, message):
    with pytest.raises(ValueError, match=message):
        closed_form_slope(x, y)
    with pytest.raises(ValueError, match=message):
        fit_slope(x, y)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"learning_rate": 1.0}, "learning_rate must lie in"),  # = 1 / mean(x²): oscillates
        ({"learning_rate": 0.0}, "learning_rate must lie in"),
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"epochs": 2.5}, "epochs must be a positive integer"),
    ],
)
def test_settings_that_cannot_converge_are_rejected(settings, message):
    with pytest.raises(ValueError, match=message):
        fit_slope([1.0, -1.0, 1.0, -1.0], [1.0, -1.0, 1.0, -1.0], **settings)
