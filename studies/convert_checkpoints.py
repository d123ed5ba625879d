"""Convert the shipped checkpoints of format 1 (each learner's own file) to the one container.

    python studies/convert_checkpoints.py baselines/checkpoints

Run once, when the container (``metarl_bench.core.learner.Learner``) replaced the three
formats; no weight is retrained or changed, only re-wrapped:

* ``rl2/*.zip``: SB3's zip with our record inside -> the container, with SB3's zip (its
  members byte for byte, our old record taken out) as ``sb3.zip``;
* ``vsml*/*.pt``: a torch dict of the record and the flat parameters -> the container with
  the parameters as a torch ``state_dict`` (``state_dict.pt``);
* ``gradient-bandit/*.json``: the tuning -> the container with it as ``tuning.json``.

The training seed, which format 1 kept only in the file name (``<env>__seed<N>``), goes into
the record; the code version that trained them was not kept, so the record says so.  Files
already in the container are left alone.  ``tests/test_checkpoints.py`` checks the result.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
import zipfile
from pathlib import Path

import torch

from metarl_bench.baselines.gradient_bandit import SWEEP_TASKS
from metarl_bench.core.learner import CONTAINER_FORMAT, RECORD_FILE, write_container
from metarl_bench.core.registry import get_spec

OLD_RL2_RECORD = "metarl_bench.json"
UNKNOWN_VERSION = "unknown (format 1 kept no code version; converted by studies/convert_checkpoints.py)"


def seed_of(path: Path) -> int:
    match = re.search(r"__seed(\d+)$", path.stem)
    return int(match.group(1)) if match else 0


def is_container(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return RECORD_FILE in zf.namelist()


def convert_rl2(path: Path) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(path) as old, zipfile.ZipFile(buffer, "w") as inner:
        meta = json.loads(old.read(OLD_RL2_RECORD))
        for info in old.infolist():
            if info.filename != OLD_RL2_RECORD:
                inner.writestr(info, old.read(info))
    record = {
        "agent": "rl2", "format": CONTAINER_FORMAT, "config": meta["config"], "trained_on": meta["trained_on"],
        "train_seed": seed_of(path), "train_steps": int(meta["train_steps"]), "version": UNKNOWN_VERSION,
        "spaces": meta["spaces"], "curve": meta.get("curve", []),
    }  # fmt: skip
    write_container(path, record, "sb3.zip", buffer.getvalue())
    return path


def convert_vsml(path: Path) -> Path:
    old = torch.load(path, map_location="cpu", weights_only=True)
    metrics = dict(old.get("metrics", {}))
    buffer = io.BytesIO()
    torch.save({"theta": old["theta"]}, buffer)
    record = {
        "agent": old["agent"], "format": CONTAINER_FORMAT, "config": old["config"], "trained_on": old["trained_on"],
        "train_seed": seed_of(path), "train_steps": int(old["train_steps"]), "version": UNKNOWN_VERSION,
        "spaces": {"obs_dim": int(old["obs_dim"])}, "curve": metrics.pop("curve", []),
        "generations": int(old.get("generations", 0)), "metrics": metrics,
    }  # fmt: skip
    new = path.with_suffix(".zip")
    write_container(new, record, "state_dict.pt", buffer.getvalue())
    path.unlink()
    return new


def convert_gradient_bandit(path: Path) -> Path:
    old = json.loads(path.read_text())
    record = {
        "agent": old["agent"], "format": CONTAINER_FORMAT, "config": old["config"], "trained_on": old["trained_on"],
        "train_seed": seed_of(path), "version": UNKNOWN_VERSION, "spaces": {"bandit": True},
        # what the sweep spent (GradientBanditAgent.fit): every configuration on the same tasks
        "train_steps": SWEEP_TASKS * get_spec(old["trained_on"]).make().trial_length * len(old.get("sweep", [])),
        "curve": [],
    }  # fmt: skip
    tuning = json.dumps({"config": old["config"], "sweep": old.get("sweep", [])}, indent=2).encode()
    new = path.with_suffix(".zip")
    write_container(new, record, "tuning.json", tuning)
    path.unlink()
    return new


def convert_folder(root: Path, only: set[str] | None = None) -> list[Path]:
    done = []
    for path in sorted(root.glob("*/*")):
        if only and path.parent.name not in only:
            continue
        if path.suffix == ".zip" and path.parent.name == "rl2" and not is_container(path):
            done.append(convert_rl2(path))
        elif path.suffix == ".pt" and path.parent.name.startswith("vsml"):
            done.append(convert_vsml(path))
        elif path.suffix == ".json" and path.parent.name == "gradient-bandit":
            done.append(convert_gradient_bandit(path))
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root", type=Path, help="the folder of per-agent checkpoint folders")
    parser.add_argument("--only", default="", help="comma-separated agent folders (default: all)")
    args = parser.parse_args(argv)
    for path in convert_folder(args.root, set(filter(None, args.only.split(","))) or None):
        print(f"converted {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
