"""What the training scripts share, so each trainer's `main` reads top to bottom:

- `RunConfig`: the fields every trainer has (name, out, minutes, stop_at, ckpt_minutes, init_from,
  export, seed, threads); a trainer's `TrainConfig` extends it, and `parse_config` makes every field
  a `--flag`;
- `init_process` / `finish_process`: plain python, or DDP over gloo under torchrun;
- `Run`: the run's folder (`<out>/<name>/`), its time budget (`running`, `frac`), resumable state
  (`resume`, `save`, `checkpoint_due`) and its final weights + card (`write`, or `finish`: the card's
  common fields and `--export` too);
- `cosine_lr`: the learning-rate schedule (warm-up, cosine over the elapsed share of the budget);
- `load_weights`: a shipped preset or a run's checkpoint file, for `--init-from`;
- `export`: a run's weights + card into the component's weights folder (`--export`).

Recipes (`trustframe.recipes`) run a shipped model's stages by calling a trainer's `main(argv)`;
`main` returns what the stage made (`Run.result`).
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist


@dataclass
class RunConfig:
    """The flags every trainer has; a trainer's TrainConfig extends this (and may change defaults)."""

    name: str = ""  # the model: the run's folder under --out, and the preset name --export writes
    out: str = "runs"
    minutes: float = 10.0  # wall-clock budget of the run, over all its resumes; the lr schedule follows it
    stop_at: float = 0.0  # stop at this many minutes although the budget (and schedule) is longer; 0 = at it
    ckpt_minutes: float = 4.0
    init_from: str = ""  # start from these weights: a shipped preset name or a checkpoint's .safetensors path
    export: bool = False  # at the end, copy the weights + card into the component's weights folder
    seed: int = 0
    threads: int = 1


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


def cosine_lr(base: float, step: int, frac: float, warmup: int = 100, floor: float = 0.0) -> float:
    """Learning rate at `step` when `frac` of the time budget is spent: a linear warm-up over `warmup`
    steps times a cosine from 1 down to `floor` over the budget."""
    frac = min(max(frac, 0.0), 1.0)
    cosine = 0.5 * (1 + math.cos(math.pi * frac))
    return base * min(1.0, (step + 1) / max(warmup, 1)) * (floor + (1 - floor) * cosine)


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = float(lr)  # a float: numpy scalars do not load with weights_only


def git_commit() -> str:
    """The repository's HEAD commit ("" outside a git checkout)."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        return ""


class Run:
    """One training run: folder `<out>/<name>/`, time budget, resumable state and final weights.

        run = Run(cfg, world_size)
        run.resume({"model": net, "opt": opt})          # continues runs/<name>/state.pt, if any
        while run.running():
            lr = cosine_lr(cfg.lr, run.step, run.frac)
            ...; run.step += 1
            if master and run.checkpoint_due(): run.save({"model": net, "opt": opt})
        run.save(...); run.write(state_dict, card)    # rank 0: runs/<name>/<name>.{safetensors,json}
        return run.finish(component, state_dict, card, command, metrics)  # or: the usual card + --export

    Every rank derives the stop and the schedule from rank 0's clock (`shared_elapsed`).
    """

    def __init__(self, cfg: RunConfig, world_size: int = 1):
        self.cfg, self.world_size = cfg, world_size
        self.dir = Path(cfg.out) / cfg.name
        self.state_path = self.dir / "state.pt"
        self.budget = cfg.minutes * 60
        self.limit = min(self.budget, cfg.stop_at * 60) if cfg.stop_at > 0 else self.budget
        self.step, self.log, self.extra = 0, [], {}
        self.elapsed0 = 0.0  # minutes already trained (seconds), from the resumed state
        self.t_start = time.time()  # set again when the loop starts: set-up time is not training time
        self.last_ckpt = time.time()
        self.elapsed = 0.0
        self.resumed = self.started = False

    def resume(self, into: dict) -> dict | None:
        """Load the run's state.pt into `into` ({key: module or optimizer}); sets step, log, elapsed."""
        st = resume_state(self.state_path, into)
        if st is not None:
            self.step, self.resumed = int(st["step"]), True
            self.elapsed0 = float(st["elapsed"])
            self.t_start = time.time() - self.elapsed0
            self.log = json.loads(st.get("log", "[]"))
            self.extra = json.loads(st.get("extra", "{}"))
            if int(os.environ.get("RANK", 0)) == 0:
                print(f"{self.cfg.name}: resumed at step {self.step}, {float(st['elapsed']) / 60:.1f} min",
                      flush=True)
        return st

    def running(self) -> bool:
        """Whether there is time left (the same answer on every rank); updates `elapsed`. The clock
        starts at the first call."""
        if not self.started:
            self.started = True
            self.t_start = self.last_ckpt = time.time()
            self.t_start -= self.elapsed0
        self.elapsed = shared_elapsed(self.t_start, self.world_size)
        return self.elapsed < self.limit

    @property
    def frac(self) -> float:
        """Share of the budget spent (what the learning-rate schedule follows)."""
        return self.elapsed / self.budget if self.budget > 0 else 1.0

    @property
    def minutes(self) -> float:
        return (time.time() - self.t_start) / 60

    def checkpoint_due(self) -> bool:
        if time.time() - self.last_ckpt > self.cfg.ckpt_minutes * 60:
            self.last_ckpt = time.time()
            return True
        return False

    def save(self, objects: dict) -> None:
        """Write state.pt atomically: `objects`' state dicts, step, elapsed, log (+ `extra`)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        state = {k: v.state_dict() for k, v in objects.items()}
        state.update(step=self.step, elapsed=time.time() - self.t_start, log=json.dumps(self.log),
                     extra=json.dumps(self.extra))
        tmp = self.state_path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.state_path)

    def write(self, state_dict: dict, card: dict, name: str | None = None) -> Path:
        """The run's weights + card as they would ship: `<dir>/<name>.{safetensors,json}`; returns the
        .safetensors path (what `--init-from` of a later stage and `export` take)."""
        from trustframe.weights import save_checkpoint

        stem = self.dir / (name or self.cfg.name)
        save_checkpoint(stem, state_dict, card)
        return stem.with_suffix(".safetensors")

    def finish(self, component: str, state_dict: dict, card: dict, command: str, metrics: dict) -> dict:
        """Write the weights with `card` completed by what every card says (the command, the config,
        steps, minutes, metrics with the log's tail, the commit); `--export` copies them into
        `component`'s weights folder. Returns `result`."""
        card = {**card, "command": command, "train_config": asdict(self.cfg), "steps": self.step,
                "train_minutes": round(self.minutes, 1),
                "metrics": {**metrics, "history_tail": self.log[-3:]}, "commit": git_commit()}
        weights = self.write(state_dict, card)
        if self.cfg.export:
            export(component, [weights])
        return self.result([weights], metrics)

    def result(self, weights: list[Path], metrics: dict) -> dict:
        """What `main` returns (a recipe records it per stage)."""
        return {"weights": [str(w) for w in weights], "steps": self.step,
                "train_minutes": round(self.minutes, 2), "metrics": metrics}


def load_weights(component: str, ref: str):
    """`--init-from` / `--vae` etc.: a shipped preset name, or the path of a run's .safetensors (its card
    beside it) -> `trustframe.weights.Checkpoint`."""
    from trustframe.weights import Checkpoint, load_checkpoint

    if ref.endswith(".safetensors") or os.sep in ref:
        from safetensors.torch import load_file

        path = Path(ref).with_suffix(".safetensors")
        if not path.is_file():
            raise SystemExit(f"no checkpoint {path}")
        card = json.loads(path.with_suffix(".json").read_text())
        return Checkpoint(card.get("name", path.stem), card, load_file(str(path)), path)
    return load_checkpoint(component, ref)


def sibling(ref: str, name: str) -> str:
    """The weights `name` that belong with `ref` (a preset name, or a path: the file beside it)."""
    if ref.endswith(".safetensors") or os.sep in ref:
        return str(Path(ref).with_name(f"{name}.safetensors"))
    return name


def export(component: str, weights: list[Path | str], dest_dir: Path | str | None = None,
           cards: list[dict] | None = None) -> list[Path]:
    """Copy run weights (each `<stem>.safetensors` + its card) into `dest_dir` (default: the component's
    shipped weights folder); `cards`, when given, replace the cards written beside them."""
    from trustframe.weights import weights_dir

    dest = Path(dest_dir) if dest_dir else weights_dir(component)
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for i, w in enumerate(weights):
        src = Path(w).with_suffix(".safetensors")
        target = dest / src.name
        if src.resolve() != target.resolve():
            shutil.copyfile(src, target)
        target.chmod(0o644)
        card = cards[i] if cards else json.loads(src.with_suffix(".json").read_text())
        target.with_suffix(".json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
        out.append(target)
        print(f"exported {target}", flush=True)
    return out
