"""A practitioner's baseline on the same archive: what seqnet's CNN is honestly compared with.

scikit-learn's TF-IDF of word 1-2-grams and a logistic regression is what many would train on
IMDB first; the bench times it on the same cores and reports it beside seqnet's time to
accuracy (``nox -s bench -- --full --data aclImdb_v1.tar.gz``).
"""

from __future__ import annotations

import time
from pathlib import Path

from seqnet.data.imdb import read_imdb_texts

# The common recipe (and the one the speed issue's table measured): word 1-2-grams seen in at
# least two reviews, log-scaled term frequencies, scikit-learn's default L2 logistic regression.
TFIDF_OPTIONS = {"ngram_range": (1, 2), "min_df": 2, "sublinear_tf": True}
DESCRIPTION = (
    "scikit-learn TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True) "
    "+ LogisticRegression()"
)


def tfidf_logistic_regression(data: str | Path) -> dict:
    """Train the baseline on the archive's training split and score its test split.

    Args:
        data: aclImdb_v1.tar.gz or an aclImdb/ folder.

    Returns:
        ``seconds`` (vectorizing and fitting the training split; reading the archive is not
        counted, as seqnet's time to accuracy leaves data loading out too), ``test_accuracy``
        on all 25,000 test reviews, and ``features`` (the vocabulary of n-grams).
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    splits = read_imdb_texts(Path(data))
    (train_texts, train_labels), (test_texts, test_labels) = splits["train"], splits["test"]
    start = time.perf_counter()
    vectorizer = TfidfVectorizer(**TFIDF_OPTIONS)
    features = vectorizer.fit_transform(train_texts)
    classifier = LogisticRegression(max_iter=1000).fit(features, train_labels)
    seconds = time.perf_counter() - start
    accuracy = classifier.score(vectorizer.transform(test_texts), test_labels)
    return {
        "workload": "tfidf_baseline",
        "baseline": DESCRIPTION,
        "seconds": seconds,
        "test_accuracy": float(accuracy),
        "features": len(vectorizer.vocabulary_),
    }
