"""What the training scripts share: dataclass configs as flags, and the torchrun set-up."""

from __future__ import annotations

import argparse
import faulthandler
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist


def parse_config(config_cls, argv: list[str] | None, module: str, description: str):
    """Every field of the dataclass `config_cls` as a `--flag` (a bool field as `--flag` / `--no-flag`);
    returns (config, exact command)."""
    p = argparse.ArgumentParser(description=description)
    for k, v in asdict(config_cls()).items():
        if isinstance(v, bool):
            p.add_argument(f"--{k.replace('_', '-')}", action=argparse.BooleanOptionalAction, default=v)
        else:
            p.add_argument(f"--{k.replace('_', '-')}", type=type(v), default=v)
    cfg = config_cls(**vars(p.parse_args(argv)))
    command = f"python -m {module} " + " ".join(sys.argv[1:] if argv is None else argv)
    return cfg, command


def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX). Only there does bf16
    autocast pay: on an AVX2-only CPU torch emulates it, and the DiT fine-tune ran 3 steps a minute
    under bf16 against 38 in float32 (2-core AVX2 EPYC, 2 threads; `train_dit.TrainConfig.bf16`)."""
    cpu = torch.cpu
    return any(getattr(cpu, probe, lambda: False)() for probe in ("_is_avx512_bf16_supported",
                                                                   "_is_amx_tile_supported"))


def init_process(seed: int, threads: int) -> tuple[int, int, np.random.Generator]:
    """(rank, world size, rng): torchrun sets RANK / WORLD_SIZE (gloo on CPU); plain python is rank 0 of 1."""
    rank, world_size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if world_size > 1:
        faulthandler.enable()  # a rank that dies on a signal prints where every thread of it was
        dist.init_process_group("gloo")
    torch.set_num_threads(threads)
    torch.manual_seed(seed + rank)
    return rank, world_size, np.random.default_rng(seed + 1000 * rank)


def shared_elapsed(t_start: float, world_size: int) -> float:
    """Seconds since `t_start` on rank 0's clock, the same number on every rank.

    Every rank must derive the stop and the learning rate from one clock: with per-rank clocks
    the ranks stop at different steps (a hang) or apply slightly different learning rates to the
    same averaged gradients, and their weights drift apart.
    """
    elapsed = time.time() - t_start
    if world_size > 1:
        t = torch.tensor([elapsed], dtype=torch.float64)
        dist.broadcast(t, 0)
        elapsed = float(t.item())
    return elapsed


def check_in_sync(model: torch.nn.Module, rank: int, world_size: int) -> None:
    """Raise on any rank whose weights differ from rank 0's (they must have trained one model)."""
    if world_size == 1:
        return
    flat = torch.cat([p.detach().float().flatten() for p in model.parameters()])
    ref = flat.clone()
    dist.broadcast(ref, 0)
    if not torch.allclose(flat, ref):
        gap = float((flat - ref).abs().max())
        raise RuntimeError(f"rank {rank}: weights differ from rank 0's by up to {gap:.3g}")


def finish_process(world_size: int) -> None:
    """Leave torchrun together: wait for rank 0's final work (saving, scoring, export), tear the
    process group down, then end the process at once with `os._exit(0)`.

    Two CI runs saw one rank die at the very end with "terminate called without an active exception"
    (SIGABRT from a C++ thread object of gloo / c10d), once after a plain return and once after
    barrier + destroy_process_group; neither reproduced here in 100+ runs. Past the barrier every
    collective is done and every file written, so the rank skips interpreter finalization, where
    such destructors run. Under plain python (one process) this returns as usual.
    """
    if world_size > 1:
        dist.barrier()
        dist.destroy_process_group()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def resume_state(state_path, into: dict) -> dict | None:
    """Load a run's own checkpoint (`runs/<name>/state.pt`, tensors only) into `into` ({key in the
    file: module or optimizer}) and return the whole state; None when the run has none yet.

    A checkpoint of another model (the --name of an older run, other sizes or flags) is refused with
    a SystemExit that names the file, and the file is left as it is.
    """
    state_path = Path(state_path)
    if not state_path.is_file():
        return None
    st = torch.load(state_path, weights_only=True)
    try:
        for key, obj in into.items():
            obj.load_state_dict(st[key])
    except (RuntimeError, KeyError, ValueError) as e:
        message = str(e).strip()
        first = message.splitlines()[0][:200] if message else type(e).__name__
        raise SystemExit(f"{state_path} is the checkpoint of another run (another model, size or flags), so "
                         f"this run cannot resume it: rerun the command that made it, or give this run "
                         f"another --name or --out ({first})") from e
    return st
