"""What the training scripts share: dataclass configs as flags, and the torchrun set-up."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import asdict

import numpy as np
import torch
import torch.distributed as dist


def parse_config(config_cls, argv: list[str] | None, module: str, description: str):
    """Every field of the dataclass `config_cls` as a `--flag`; returns (config, exact command)."""
    p = argparse.ArgumentParser(description=description)
    for k, v in asdict(config_cls()).items():
        if isinstance(v, bool):
            p.add_argument(f"--{k.replace('_', '-')}", action="store_true", default=v)
        else:
            p.add_argument(f"--{k.replace('_', '-')}", type=type(v), default=v)
    cfg = config_cls(**vars(p.parse_args(argv)))
    command = f"python -m {module} " + " ".join(sys.argv[1:] if argv is None else argv)
    return cfg, command


def init_process(seed: int, threads: int) -> tuple[int, int, np.random.Generator]:
    """(rank, world size, rng): torchrun sets RANK / WORLD_SIZE (gloo on CPU); plain python is rank 0 of 1."""
    rank, world_size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if world_size > 1:
        dist.init_process_group("gloo")
    torch.set_num_threads(threads)
    torch.manual_seed(seed + rank)
    return rank, world_size, np.random.default_rng(seed + 1000 * rank)


def time_is_up(elapsed: float, budget: float, world_size: int) -> bool:
    """True once `budget` seconds have passed on any rank, so every rank stops at the same step."""
    done = elapsed >= budget
    if world_size > 1:
        flag = torch.tensor([float(done)])
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        done = bool(flag.item())
    return done
