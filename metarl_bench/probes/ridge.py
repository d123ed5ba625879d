"""Closed-form ridge regression with the penalty chosen by grouped cross-validation.

The belief probe fits linear maps memory -> belief (and back).  Rows come in groups
(every step of every trial of one task), so the folds split by group: a task is never on
both sides of a fold, and the chosen penalty is not rewarded for memorising a task.
One eigen-decomposition of X'X per fold serves every penalty and every target at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

RIDGE_ALPHAS = np.logspace(-9, 2, 23)  # penalty per row of standardised features: lambda = alpha * rows
CV_FOLDS = 5


@dataclass
class Ridge:
    """A fitted linear map: standardise x, multiply, add the target mean."""

    x_mean: np.ndarray
    x_scale: np.ndarray
    y_mean: np.ndarray
    coef: np.ndarray
    alpha: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.x_mean) / self.x_scale) @ self.coef + self.y_mean


class _Gram:
    """Closed-form ridge for many penalties at once: eigen-decomposition of X'X (X standardised)."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        self.x_mean = x.mean(axis=0)
        scale = x.std(axis=0)
        self.x_scale = np.where(scale > 1e-12, scale, 1.0)  # constant features contribute nothing
        xs = (x - self.x_mean) / self.x_scale
        self.y_mean = y.mean(axis=0)
        self.rows = len(x)
        self.eig, self.vecs = np.linalg.eigh(xs.T @ xs)
        self.proj = self.vecs.T @ (xs.T @ (y - self.y_mean))  # V' X' y

    def coef(self, alpha: float, cols: slice = slice(None)) -> np.ndarray:
        lam = alpha * self.rows
        return self.vecs @ (self.proj[:, cols] / (np.maximum(self.eig, 0.0) + lam)[:, None])

    def ridge(self, alpha: float, cols: slice = slice(None)) -> Ridge:
        return Ridge(self.x_mean, self.x_scale, self.y_mean[cols], self.coef(alpha, cols), alpha)


def fit_ridge_cv(
    x: np.ndarray,
    targets: Mapping[str, np.ndarray],
    groups: np.ndarray,
    rng: np.random.Generator,
    alphas: Iterable[float] = RIDGE_ALPHAS,
    folds: int = CV_FOLDS,
) -> dict[str, Ridge]:
    """Ridge maps x -> each target, the penalty of each chosen by grouped K-fold CV (min. SSE).

    ``x`` (rows, d) and every target (rows, m) hold only the fit rows; ``groups`` (rows,)
    names each row's task, so a task is never on both sides of a fold.  ``rng`` assigns
    groups to folds.  The final map is refitted on all rows with the chosen penalty.
    ValueError if there are fewer groups than folds.
    """
    alphas = np.asarray(list(alphas), float)
    names = list(targets)
    y = np.concatenate([targets[k] for k in names], axis=1)
    bounds = np.cumsum([0] + [targets[k].shape[1] for k in names])
    cols = {k: slice(bounds[i], bounds[i + 1]) for i, k in enumerate(names)}
    uniq = np.unique(groups)
    if len(uniq) < folds:
        raise ValueError(f"cross-validation needs >= {folds} fit tasks, got {len(uniq)}")
    fold_of = dict(zip(rng.permutation(uniq), np.arange(len(uniq)) % folds, strict=True))
    fold = np.vectorize(fold_of.__getitem__)(groups)
    sse = np.zeros((len(alphas), y.shape[1]))
    for f in range(folds):
        train, val = fold != f, fold == f
        gram = _Gram(x[train], y[train])
        xv = ((x[val] - gram.x_mean) / gram.x_scale) @ gram.vecs
        for a, alpha in enumerate(alphas):
            lam = alpha * gram.rows
            pred = xv @ (gram.proj / (np.maximum(gram.eig, 0.0) + lam)[:, None]) + gram.y_mean
            sse[a] += ((y[val] - pred) ** 2).sum(axis=0)
    full = _Gram(x, y)
    return {k: full.ridge(float(alphas[np.argmin(sse[:, cols[k]].sum(axis=1))]), cols[k]) for k in names}
