"""OpenAI-ES (Salimans et al. 2017) on a flat parameter vector: antithetic pairs, centered ranks, Adam.

Each generation perturbs the mean parameters by antithetic noise, plays the population
(``rollout.play``), shapes the fitness by centered ranks and takes one Adam step on the ES
gradient.  Adam is hand-written because ``torch.optim.Adam`` adds eps after bias-correcting
sqrt(v), not before as here (and in OpenAI-ES), which moves the first step by ~1e-4, far above
float rounding (``tests/test_vsml.py``), and makes a retraining at the shipped settings part
from the shipped checkpoints' run after ~40 generations.
"""

from __future__ import annotations

import math

import torch


def antithetic(theta: torch.Tensor, sigma: float, pairs: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Noise (pairs, D) and the population (2 pairs, D) theta +- sigma noise: members j and j + pairs pair up."""
    noise = torch.randn(pairs, theta.shape[-1], generator=generator)
    return noise, theta + sigma * torch.cat([noise, -noise])


def centered_ranks(x: torch.Tensor) -> torch.Tensor:
    """Fitness shaping of OpenAI-ES: ranks scaled to [-0.5, 0.5] (ties broken by order)."""
    ranks = torch.empty_like(x)
    ranks[x.argsort()] = torch.arange(len(x), dtype=x.dtype, device=x.device)
    return ranks / (len(x) - 1) - 0.5


def es_gradient(fitness: torch.Tensor, noise: torch.Tensor, sigma: float) -> torch.Tensor:
    """The ES estimate of the gradient of the mean fitness, from the fitness (2 pairs,) of ``antithetic``'s population.

    Ranks, not raw returns: the step does not depend on the scale of the rewards.
    """
    pairs = len(noise)
    w = centered_ranks(fitness)
    return (w[:pairs] - w[pairs:]) @ noise / (2 * pairs * sigma)


def annealed_lr(lr: float, lr_final: float, generation: int, generations: int) -> float:
    """The step size of ``generation`` (from 0): linear from ``lr`` to ``lr_final * lr`` at the last one."""
    return lr * (1 - (1 - lr_final) * generation / max(1, generations - 1))


class Adam:
    """Adam (Kingma & Ba 2015) on a flat parameter vector, ascending the given gradient."""

    def __init__(self, num_params: int, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m = torch.zeros(num_params)
        self.v = torch.zeros(num_params)
        self.t = 0

    def ascent(self, theta: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """The parameters after one step up ``grad`` (a new tensor; ``theta`` is not changed)."""
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * grad
        self.v = self.beta2 * self.v + (1 - self.beta2) * grad * grad
        a = self.lr * math.sqrt(1 - self.beta2**self.t) / (1 - self.beta1**self.t)
        return theta + a * self.m / (self.v.sqrt() + self.eps)
