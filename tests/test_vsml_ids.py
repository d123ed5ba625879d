"""VSML with unit identities (``vsml-ids``): fixed-meaning actions, at the price of arm-count transfer."""

import numpy as np
import pytest
import torch

import metarl_bench  # noqa: F401  (registers the built-ins)
from metarl_bench.baselines.vsml.agent import VSMLAgent, VSMLIdsAgent
from metarl_bench.core.agent import UnsupportedFamilyError
from metarl_bench.core.registry import make_family

torch.set_num_threads(1)


def _first_step(k: int) -> dict[str, np.ndarray]:
    return {"obs": np.zeros((1, 1), np.float32), "prev_action": np.zeros((1, k), np.float32),
            "prev_reward": np.zeros((1, 1), np.float32), "new_episode": np.ones((1, 1), np.float32)}  # fmt: skip


def test_identities_break_the_arm_symmetry_only_when_asked():
    family = make_family("bernoulli-k5-h100")
    plain, ids = VSMLAgent(family), VSMLIdsAgent(family)
    assert ids.config["unit_ids"] and not plain.config["unit_ids"]
    # the shared parameters come first and are drawn identically: the default is unchanged
    assert torch.equal(ids.theta[: plain.net.num_params], plain.theta)
    logits_plain, _ = plain.logits(_first_step(5), plain.reset(1))
    logits_ids, _ = ids.logits(_first_step(5), ids.reset(1))
    assert np.ptp(logits_plain) < 1e-6  # symmetric: every arm looks the same before any feedback
    assert np.ptp(logits_ids) > 1e-3  # identities: arms differ from the first step


def test_an_identity_checkpoint_plays_only_its_own_number_of_actions(tmp_path):
    agent = VSMLIdsAgent(make_family("bernoulli-k2-h100"))
    agent.trained_on = "bernoulli-k2-h100"
    path = agent.save(tmp_path / "ids.zip")
    VSMLIdsAgent.load(path, make_family("bernoulli-k2-h100"))  # same arms: fine
    with pytest.raises(UnsupportedFamilyError, match="another number of actions"):
        VSMLIdsAgent.load(path, make_family("bernoulli-k5-h100"))
    assert not VSMLIdsAgent.transfers_across_spaces and VSMLAgent.transfers_across_spaces
