"""The bottom of the baseline ladder: bag-of-words classifiers on the same splits as the attention models.

    qattn train experiments/imdb.toml --set model.attention=nbsvm

- ``tfidf-lr``: TF-IDF of word n-grams (sublinear term frequencies) and logistic regression.
- ``nbsvm``: NBSVM of Wang & Manning, "Baselines and Bigrams" (ACL 2012): binarised n-gram features
  scaled by their naive-Bayes log-count ratio ``r``, a linear SVM (L2-regularised, squared hinge, as
  their liblinear), and its weights interpolated with their mean magnitude, ``w' = (1 - beta) mean|w| +
  beta w``. Several classes: one such classifier per class against the rest, each with its own ``r``.

``probe`` (:func:`run_probe`), the rung of a pretrained encoder's footing, is here too: the frozen
encoder's mean-pooled features and logistic regression.

All read the data the attention models read (:func:`qattn.data.load_dataset`: the same dev split carved
by ``data.seed``, the same subsampling) and choose their C from ``model.bow.c_grid`` on dev macro-F1, the
rule that picks the attention models' checkpoints; they are fitted on the training split only. They are
deterministic (the seed changes nothing) and keep no checkpoint: they retrain in seconds to minutes. A
run is an MLflow run like any other, with the same test metrics and per-document predictions, so a grid
and its report hold them as rows.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from functools import partial

import mlflow
import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from qattn import tracking
from qattn.config import BagOfWordsConfig, ConfigError, ExperimentConfig
from qattn.data import DataError, Split, TextDataset, load_dataset
from qattn.identity import run_name
from qattn.inputs import encoded_data
from qattn.run_result import RunResult
from qattn.trainer import Metrics, metrics_of
from qattn.uris import mask_uri


class NBSVM(ClassifierMixin, BaseEstimator):
    """Wang & Manning's NBSVM on a (sparse) document-term count matrix; ``alpha`` smooths the counts."""

    def __init__(self, C: float = 1.0, beta: float = 0.25, alpha: float = 1.0) -> None:
        self.C, self.beta, self.alpha = C, beta, alpha

    def fit(self, X, y) -> NBSVM:
        X, y = binarised(X), np.asarray(y)
        self.classes_ = np.unique(y)
        positives = self.classes_[1:] if len(self.classes_) == 2 else self.classes_  # one vs the rest
        ratios, weights, biases = [], [], []
        for positive in positives:
            mine = y == positive
            p = self.alpha + np.asarray(X[mine].sum(0)).ravel()
            q = self.alpha + np.asarray(X[~mine].sum(0)).ravel()
            r = np.log(p / p.sum()) - np.log(q / q.sum())
            svm = LinearSVC(C=self.C, max_iter=5000).fit(X @ sp.diags(r), mine)
            w = svm.coef_.ravel()
            ratios.append(r)
            weights.append((1 - self.beta) * np.abs(w).mean() + self.beta * w)
            biases.append(svm.intercept_[0])
        # (x * r) . w' + b  =  x . (r * w') + b
        self.coef_ = np.stack(ratios) * np.stack(weights)
        self.intercept_ = np.array(biases)
        return self

    def decision_function(self, X) -> np.ndarray:
        scores = binarised(X) @ self.coef_.T + self.intercept_
        return scores.ravel() if len(self.classes_) == 2 else scores

    def predict(self, X) -> np.ndarray:
        scores = self.decision_function(X)
        return self.classes_[(scores > 0).astype(int)] if scores.ndim == 1 else self.classes_[scores.argmax(1)]


def binarised(X) -> sp.csr_matrix:
    X = sp.csr_matrix(X, dtype=np.float64)
    X.data = np.ones_like(X.data)
    return X


PIPELINES = {  # a bag-of-words kind -> (n-gram options, its options, C) -> its features and linear classifier
    "tfidf-lr": lambda ngrams, options, C: make_pipeline(
        TfidfVectorizer(sublinear_tf=True, **ngrams), LogisticRegression(C=C, max_iter=2000, warm_start=True)
    ),
    "nbsvm": lambda ngrams, options, C: make_pipeline(
        CountVectorizer(binary=True, **ngrams), NBSVM(C=C, beta=options.nb_beta)
    ),
}


def make_model(kind: str, options: BagOfWordsConfig, C: float) -> Pipeline:
    """The unfitted pipeline of a bag-of-words ``kind`` at inverse regularisation ``C``: n-gram features, then
    a linear classifier (logistic regression warm-starts from its last fit: a C path costs less)."""
    if kind not in PIPELINES:
        raise ValueError(f"unknown bag-of-words kind {kind!r}; valid: {', '.join(PIPELINES)}")
    ngrams = {"ngram_range": (1, options.ngrams), "min_df": options.min_df, "max_features": options.max_features,
              "token_pattern": options.token_pattern}
    return PIPELINES[kind](ngrams, options, C)


def parameter_count(model: Pipeline) -> int:
    classifier = model[-1]
    return int(classifier.coef_.size + np.size(classifier.intercept_))


def select_and_fit(kind: str, options: BagOfWordsConfig, train: Split, dev: Split, num_classes: int,
                   log=lambda metrics, step: None) -> tuple[Pipeline, float, Metrics]:
    """Fit the classifier at each C of ``options.c_grid`` on ``train``'s features (the vocabulary and weights
    of the training split, computed once); the model with the best dev macro-F1 (the first of equals), its C
    and its dev metrics. ``log(metrics, step)`` receives each C's dev figures."""
    model = make_model(kind, options, options.c_grid[0])
    features, classifier = model[:-1], model[-1]
    try:
        train_x = features.fit_transform(train.texts)
    except ValueError:  # scikit-learn's "no terms remain": say which setting, and how far to change it
        check_vocabulary(options, train)
        raise
    dev_x = features.transform(dev.texts)
    best = None
    for step, C in enumerate(options.c_grid, 1):
        classifier.set_params(C=C).fit(train_x, train.labels)
        dev_metrics = metrics_of(dev.labels, classifier.predict(dev_x).tolist(), num_classes)
        log({"search/C": C, "search/dev_accuracy": dev_metrics.accuracy, "search/dev_macro_f1": dev_metrics.macro_f1}, step)
        if best is None or dev_metrics.macro_f1 > best[2].macro_f1:
            best = (copy.deepcopy(classifier), C, dev_metrics)
    chosen, C, dev_metrics = best
    return make_pipeline(*[step for _, step in features.steps], chosen), C, dev_metrics


def check_vocabulary(options: BagOfWordsConfig, train: Split) -> None:
    """Why ``train`` gave no n-gram, if that is why: a ``model.bow.min_df`` above every n-gram's document
    count (a ConfigError with the largest count, the highest min_df that keeps one), or texts without a
    word of two letters or digits, what scikit-learn counts (a DataError)."""
    try:
        counts = CountVectorizer(binary=True, ngram_range=(1, options.ngrams),
                                 token_pattern=options.token_pattern).fit_transform(train.texts)
    except ValueError:
        raise DataError(
            f"the {len(train)} training documents hold no word model.bow.token_pattern ({options.token_pattern!r}) "
            "matches: a bag of words has nothing to count; check data.text_field (or the pattern)"
        ) from None
    most = int(counts.sum(0).max())
    if most < options.min_df:
        raise ConfigError(
            f"model.bow.min_df = {options.min_df} keeps no word n-gram: none occurs in {options.min_df} or more of "
            f"the {len(train)} training documents (the most frequent in {most}); set model.bow.min_df to {most} or less"
        )


@dataclass
class Fitted:
    """A classifier fitted and selected on dev, before its run is recorded."""

    dev: Metrics
    test: Metrics
    parameters: dict[str, int]
    metrics: dict[str, float]  # its own final figures (the C chosen, feature counts), besides dev and test
    searched: list[tuple[dict[str, float], int]]  # each C's dev figures, by step
    seconds: float  # fitting and selection (the epoch time of a report)
    docs: int  # training documents seen, over the C grid
    words: int  # training words seen, over the C grid


def run_baseline(config: ExperimentConfig, *, uri: str, nested: bool = False) -> RunResult:
    """Fit, select on dev, test and record one bag-of-words run in the MLflow store at ``uri`` (connected).
    The model is fitted, selected and tested before the MLflow run opens: data or ``model.bow`` settings it
    cannot use (:func:`check_vocabulary`) stop it with no run left behind, and its time (``epoch/seconds``)
    holds no wait for the store; the run then records the search and the results."""
    kind, options = config.model.attention, config.model.bow
    dataset = load_dataset(config.data)
    tracking.notice_skipped_empty(dataset)
    searched: list[tuple[dict[str, float], int]] = []
    started = time.perf_counter()
    model, C, dev = select_and_fit(kind, options, dataset.train, dataset.dev, dataset.num_classes,
                                   lambda metrics, step: searched.append((metrics, step)))
    seconds = time.perf_counter() - started
    test = metrics_of(dataset.test.labels, model.predict(dataset.test.texts).tolist(), dataset.num_classes)
    words = sum(len(text.split()) for text in dataset.train.texts) * len(options.c_grid)
    fitted = Fitted(dev, test, {"quantum": 0, "classical": parameter_count(model)},
                    {"bow/C": C, "bow/features": model[-1].coef_.shape[1]}, searched, seconds,
                    len(dataset.train) * len(options.c_grid), words)
    return record(config, dataset, fitted, uri=uri, nested=nested)


def run_probe(config: ExperimentConfig, *, uri: str, nested: bool = False) -> RunResult:
    """The linear probe of ``model.backbone``: each document's mean token feature (the frozen encoder's, from
    the feature cache, over its real tokens), standardised, and a logistic regression whose C from
    ``model.probe.c_grid`` has the best dev macro-F1; fitted before its MLflow run opens, as the bag of words."""
    if config.train.threads:  # the encoder's threads, while it builds the cache
        torch.set_num_threads(config.train.threads)
    dataset = load_dataset(config.data)
    tracking.notice_skipped_empty(dataset)
    data = encoded_data(config, dataset)
    pooled = {name: data.cached[name].pooled() for name in ("train", "dev", "test")}
    grid, searched, best = config.model.probe.c_grid, [], None
    started = time.perf_counter()
    scaler = StandardScaler().fit(pooled["train"])
    train, dev_x = scaler.transform(pooled["train"]), scaler.transform(pooled["dev"])
    for step, C in enumerate(grid, 1):
        classifier = LogisticRegression(C=C, max_iter=2000).fit(train, dataset.train.labels)
        dev = metrics_of(dataset.dev.labels, classifier.predict(dev_x).tolist(), dataset.num_classes)
        searched.append(({"search/C": C, "search/dev_accuracy": dev.accuracy, "search/dev_macro_f1": dev.macro_f1}, step))
        if best is None or dev.macro_f1 > best[2].macro_f1:
            best = (classifier, C, dev)
    seconds = time.perf_counter() - started
    classifier, C, dev = best
    test = metrics_of(dataset.test.labels, classifier.predict(scaler.transform(pooled["test"])).tolist(),
                      dataset.num_classes)
    tokens = sum(len(doc) for doc in data.tokens["train"]) * len(grid)
    fitted = Fitted(dev, test, {"quantum": 0, "classical": int(classifier.coef_.size + classifier.intercept_.size)},
                    {"probe/C": C}, searched, seconds, len(dataset.train) * len(grid), tokens)
    return record(config, dataset, fitted, uri=uri, nested=nested, params=data.params())


def record(config: ExperimentConfig, dataset: TextDataset, fitted: Fitted, *, uri: str, nested: bool,
           params: dict[str, str] | None = None) -> RunResult:
    """One MLflow run of a fitted classifier: its search, metadata, figures and per-document predictions."""
    name = run_name(config)
    final = {
        **fitted.dev.scalars("dev"), **fitted.test.scalars("test"), "best_epoch": 1, **fitted.metrics,
        "epoch/seconds": fitted.seconds, "epoch/docs_per_s": fitted.docs / fitted.seconds,
        "epoch/tokens_per_s": fitted.words / fitted.seconds,
    }
    with tracking.recorded_run(run_name=name, nested=nested, log_system_metrics=False) as run:
        tracking.patiently(lambda: mlflow.set_tag(tracking.EPOCH_TAG, "1"))
        for metrics, step in fitted.searched:
            tracking.patiently(partial(mlflow.log_metrics, metrics, step=step))
        tracking.patiently(lambda: tracking.log_run_metadata(config, fitted.parameters, dataset))
        if params:
            tracking.patiently(lambda: mlflow.log_params(params))
        tracking.patiently(lambda: tracking.log_skipped_empty(config, dataset))
        tracking.patiently(lambda: mlflow.log_metrics(final, step=1))
        tracking.patiently(lambda: tracking.log_predictions(dataset.test, fitted.test.predictions))
    return RunResult(
        run_id=run.info.run_id, run_name=name, tracking_uri=mask_uri(uri), test=fitted.test, best_epoch=1,
        epochs_run=1, seconds_per_epoch=fitted.seconds, docs_per_s=final["epoch/docs_per_s"],
        tokens_per_s=final["epoch/tokens_per_s"], parameters=fitted.parameters,
    )
