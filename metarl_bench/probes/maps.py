"""State maps between an agent's memory and the Bayes state: ridge (linear) and a small MLP.

Both maps are fitted on the rows (every step of every trial) of the fit tasks and scored on
the test tasks; the score is the normalised MSE, ``sum SSE / sum SST`` over all test rows
and target dimensions with SST around the test mean (so it is ``1 - R²`` of the linear
probe, 0 for a perfect map and about 1 for the mean predictor), with a 95% bootstrap CI
over test tasks.

**Ridge** is the linear probe's closed form (``metarl_bench.probes.ridge``, penalty by
grouped cross-validation on the fit tasks), on every other penalty of the probe's grid
(a decade apart: targets of hundreds of dimensions, as a tabular MDP's posterior, make
each penalty costly).

**MLP**: two hidden layers of ``MLP_HIDDEN`` tanh units on standardised inputs,
trained by Adam on the mean squared error of the targets centred and divided by one
common scale (so the loss is the normalised MSE itself: every target dimension counts by
its variance, as in the score).  A fifth of the fit tasks is held aside: training stops
early on it and keeps the best epoch's parameters, and where the least-squares linear map
does better on it than the trained MLP, the linear map is the result (the MLP family
holds the linear maps, SGD just finds them slowly): so an MLP map is never worse than
linear on the held-aside tasks for want of training, and an exact linear relation stays
exact.  Everything random (initial weights,
minibatches, the held-aside tasks) comes from
one ``torch.Generator`` and one ``numpy.random.Generator`` seeded by the caller; training
runs on one torch thread, so a fit is reproducible bit for bit on one machine.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from metarl_bench.probes.analysis import r2_figure
from metarl_bench.probes.ridge import RIDGE_ALPHAS, fit_ridge_cv

MAP_KINDS = ("mlp", "ridge")
MAP_ALPHAS = RIDGE_ALPHAS[::2]  # 1e-9 .. 1e2, a decade apart
MLP_HIDDEN = 64
MLP_EPOCHS = 30
MLP_PATIENCE = 5  # epochs without improvement on the held-aside tasks before stopping
MLP_WARMUP = 5  # epochs always trained before early stopping may end the fit
MLP_BATCH = 1024
MLP_LR = 5e-3
MLP_MAX_ROWS = 12_000  # fit rows beyond this are subsampled (rows of one task are highly correlated anyway)
MAP_MAX_ROWS = MLP_MAX_ROWS  # the same cap for every map, so ridge and MLP see the same rows
MLP_HOLDOUT = 0.2

Predictor = Callable[[np.ndarray], np.ndarray]  # rows (n, d) -> predictions (n, m)


@dataclass
class MapScore:
    """A fitted map's held-out normalised MSE with its CI, and its test predictions [trial, step, m]."""

    nmse: float
    ci: tuple[float, float]
    prediction: np.ndarray


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run the block on one torch thread (small models: threads only wait for each other)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _scale(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, sd = x.mean(axis=0), x.std(axis=0)
    return mean, np.where(sd > 1e-12, sd, 1.0)  # constant columns carry nothing; leave them at 0


class _MLP(torch.nn.Module):
    """d -> hidden -> hidden -> m with tanh; weights drawn as torch.nn.Linear draws them, from ``gen``."""

    def __init__(self, d: int, m: int, hidden: int, gen: torch.Generator):
        super().__init__()
        dims = [d, hidden, hidden, m]
        self.weights = torch.nn.ParameterList()
        self.biases = torch.nn.ParameterList()
        for fan_in, fan_out in zip(dims[:-1], dims[1:], strict=True):
            bound = 1.0 / np.sqrt(fan_in)
            self.weights.append(torch.nn.Parameter((torch.rand(fan_in, fan_out, generator=gen) * 2 - 1) * bound))
            self.biases.append(torch.nn.Parameter((torch.rand(fan_out, generator=gen) * 2 - 1) * bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = x @ w + b
            if i < last:
                x = torch.tanh(x)
        return x


def _least_squares(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """[W; b] (d + 1, m) of the least-squares map x -> y, with a tiny ridge for collinear columns."""
    xa = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    gram = xa.T @ xa
    gram[np.diag_indices_from(gram)] += 1e-8 * max(1.0, float(np.trace(gram)) / len(gram))
    return np.linalg.solve(gram, xa.T @ y)


def fit_mlp(x: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int) -> Predictor:
    """An MLP map x -> y fitted on rows ``x`` (n, d), ``y`` (n, m); ``groups`` (n,) names each row's task."""
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    if len(x) > MLP_MAX_ROWS:
        keep = np.sort(rng.choice(len(x), MLP_MAX_ROWS, replace=False))
        x, y, groups = x[keep], y[keep], groups[keep]
    x_mean, x_sd = _scale(x)
    y_mean = y.mean(axis=0)
    y_sd = float(np.sqrt(((y - y_mean) ** 2).sum(axis=1).mean() / y.shape[1])) or 1.0
    tasks = np.unique(groups)
    held = np.isin(groups, rng.choice(tasks, max(1, int(round(MLP_HOLDOUT * len(tasks)))), replace=False))
    if held.all():  # one task only: no early stopping set
        held[:] = False

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=torch.float32)

    x_std, y_std = (x - x_mean) / x_sd, (y - y_mean) / y_sd
    xs, ys = tensor(x_std), tensor(y_std)
    x_tr, y_tr, x_va, y_va = xs[~held], ys[~held], xs[held], ys[held]
    with one_torch_thread():
        net = _MLP(x.shape[1], y.shape[1], MLP_HIDDEN, gen)
        opt = torch.optim.Adam(net.parameters(), lr=MLP_LR, foreach=True)
        best, best_state, stale = np.inf, None, 0
        for epoch in range(MLP_EPOCHS):
            order = torch.randperm(len(x_tr), generator=gen)
            for start in range(0, len(order), MLP_BATCH):
                idx = order[start : start + MLP_BATCH]
                loss = ((net(x_tr[idx]) - y_tr[idx]) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            if not len(x_va):
                continue
            with torch.no_grad():
                val = float(((net(x_va) - y_va) ** 2).mean())
            if val < best * (1 - 1e-3):
                best, stale = val, 0
                best_state = [p.detach().clone() for p in net.parameters()]
            elif epoch >= MLP_WARMUP:
                stale += 1
                if stale >= MLP_PATIENCE:
                    break
        if best_state is not None:
            with torch.no_grad():
                for p, q in zip(net.parameters(), best_state, strict=True):
                    p.copy_(q)
    linear = _least_squares(x_std[~held], y_std[~held])
    x_va_np, y_va_np = x_std[held], y_std[held]
    use_linear = len(x_va_np) > 0 and float(((_affine(x_va_np, linear) - y_va_np) ** 2).mean()) <= best

    def predict(rows: np.ndarray) -> np.ndarray:
        z = (rows - x_mean) / x_sd
        if use_linear:
            return _affine(z, linear) * y_sd + y_mean
        with one_torch_thread(), torch.no_grad():
            out = net(tensor(z)).double().numpy()
        return out * y_sd + y_mean

    return predict


def _affine(x: np.ndarray, coef: np.ndarray) -> np.ndarray:
    return x @ coef[:-1] + coef[-1]


def fit_ridge(x: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int) -> Predictor:
    """The linear probe's ridge map x -> y (penalty by grouped cross-validation)."""
    ridge = fit_ridge_cv(x, {"y": y}, groups, np.random.default_rng(seed), alphas=MAP_ALPHAS)["y"]
    return ridge.predict


def fit_map(kind: str, x: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int) -> Predictor:
    """A map of ``kind`` (one of MAP_KINDS) fitted on rows ``x`` -> ``y``."""
    if kind == "mlp":
        return fit_mlp(x, y, groups, seed)
    if kind == "ridge":
        return fit_ridge(x, y, groups, seed)
    raise ValueError(f"unknown map kind {kind!r}; allowed: {', '.join(MAP_KINDS)}")


def score_map(
    kind: str,
    x: np.ndarray,
    y: np.ndarray,
    fit: np.ndarray,
    test: np.ndarray,
    task_of_trial: np.ndarray,
    seed: int,
    bootstrap_seed: int = 0,
    sample_seed: int = 0,
) -> MapScore:
    """Fit a ``kind`` map x -> y on the ``fit`` trials and score it on the ``test`` trials.

    ``x`` [trial, step, d] and ``y`` [trial, step, m]; CI over the test trials' tasks.  Beyond
    ``MAP_MAX_ROWS`` fit rows, the map sees a random subset of them drawn by ``sample_seed``
    (give two kinds the same one and they see the same rows); ``seed`` drives the fit itself.
    """
    T = x.shape[1]
    groups = np.repeat(task_of_trial[fit], T)
    flat = lambda a: a.reshape(-1, a.shape[-1]).astype(np.float64)  # noqa: E731
    rows = np.arange(len(groups))
    if len(rows) > MAP_MAX_ROWS:
        rows = np.sort(np.random.default_rng(sample_seed).choice(len(rows), MAP_MAX_ROWS, replace=False))
    predict = fit_map(kind, flat(x[fit])[rows], flat(y[fit])[rows], groups[rows], seed)
    pred = predict(flat(x[test])).reshape(len(test), T, -1)
    fig = r2_figure(y[test].astype(np.float64), pred, task_of_trial[test], bootstrap_seed)
    return MapScore(1.0 - fig.value, (1.0 - fig.ci[1], 1.0 - fig.ci[0]), pred)
