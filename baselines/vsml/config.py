"""VSML's hyper-parameters: one dataclass read by the network, the ES loop and acting, and named presets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class VSMLConfig:
    """Hyper-parameters; the defaults reach the quality target on bernoulli-k2-h100."""

    # model
    hidden_size: int = 16  # LSTM state per cell
    message_size: int = 8  # forward / backward message channels
    num_layers: int = 1  # 1 or 2 VSML layers
    hidden_units: int = 8  # units between the layers when num_layers == 2
    micro_ticks: int = 2  # LSTM updates per environment step
    gate_offset: float = 5.0  # +offset on the forget gate, -offset on the input gate
    init_random_frac: float = 0.5  # share of each cell state that starts random
    init_std: float = 1.0  # spread of that random part
    output_bound: float = 10.0  # messages and logits are bounded by c * tanh(x / c)
    bias_unit: bool = True  # a constant-1 input unit beside the observation
    unit_ids: bool = False  # learned identity vectors per input and output unit (fixed meanings; see VSMLNet)
    model_seed: int = 0  # initial parameters and the random initial cell states
    # evolution strategies
    population: int = 64  # members per generation (antithetic pairs: even)
    tasks_per_generation: int = 64  # every member plays these same tasks
    sigma: float = 0.04  # perturbation scale
    learning_rate: float = 0.02  # Adam step size on the ES gradient
    lr_final: float = 1.0  # anneal the step size linearly to lr_final * learning_rate over the budget
    weight_decay: float = 0.0  # L2 pull towards 0 (OpenAI-ES's "l2coeff")
    train_steps: int = 245_760_000  # default budget (env steps): 600 generations of 64 x 64 x 100
    checkpoint_every: int = 50  # generations between periodic checkpoints
    # acting
    deterministic: bool = False  # sample from softmax(logits), or take the argmax

    def __post_init__(self) -> None:
        if self.num_layers not in (1, 2):
            raise ValueError(f"num_layers must be 1 or 2, got {self.num_layers}")
        if self.population < 2 or self.population % 2:
            raise ValueError(f"population must be an even number >= 2 (antithetic pairs), got {self.population}")
        for name in ("hidden_size", "message_size", "hidden_units", "micro_ticks", "tasks_per_generation"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


# Named configurations, ``VSMLAgent(family, preset="gpu")``; keys given beside a preset win.
# "cpu" is the defaults, with which the shipped checkpoints were trained.  "gpu" spends a
# GPU's width on a larger population and more tasks per generation, so that fewer, bolder
# generations (a higher, annealed step size) reach the quality target: on a GPU a generation
# costs about the same at 32k trials as at 4k (it is bound by kernel launches, ~100 steps of
# ~100 small kernels), so the budget is counted in generations, not in agent-steps.
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {},
    "gpu": {
        "population": 256,
        "tasks_per_generation": 128,
        "learning_rate": 0.05,
        "lr_final": 0.2,
        "train_steps": 150 * 256 * 128 * 100,  # 150 generations on bernoulli-k2-h100
    },
}
