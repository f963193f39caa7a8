"""Adapt a detector to a user's own footage: `trustframe detector train --real DIR --generated DIR`.

Files are split by file (70 % train, 30 % held out, seeded). The backbone stays frozen; the 1x1
head is fine-tuned on native-resolution crops of the training files' frames, then calibration
and the 1 %-FPR threshold are fixed on the held-out files, and the held-out metrics reported.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from trustframe import media
from trustframe.detector.api import Calibration, Detector, load, to_tensor
from trustframe.detector.metrics import summary
from trustframe.errors import ConfigError, TrustFrameError
from trustframe.settings import Settings

MIN_FILES = 4  # per class: at least one held out, and something to train on


def _read_folder(folder: Path, s: Settings) -> list[media.Frames]:
    from trustframe.media import expand

    if not folder.is_dir():
        raise ConfigError(f"{folder}: not a folder")
    out = []
    for path in expand([folder]):
        try:
            frames = media.read(path, max_frames=8, settings=s, quantiser=True)
        except TrustFrameError:
            continue
        if min(frames.height, frames.width) >= 64:
            out.append(frames)
    if len(out) < MIN_FILES:
        raise ConfigError(
            f"{folder}: {len(out)} readable image/video file(s) of at least 64 px; need {MIN_FILES} or more"
        )
    return out


def _crops(files: list[media.Frames], n: int, rng: np.random.Generator, px: int = 64):
    cur, pre = [], []
    for _ in range(n):
        f = files[int(rng.integers(len(files)))]
        i = int(rng.integers(len(f)))
        j = Detector._prev(f, i)
        y, x = int(rng.integers(0, f.height - px + 1)), int(rng.integers(0, f.width - px + 1))
        cur.append(f.data[i, y : y + px, x : x + px])
        pre.append(f.data[j, y : y + px, x : x + px])
    return to_tensor(np.stack(cur)), to_tensor(np.stack(pre))


def adapt(
    real_dir: Path,
    generated_dir: Path,
    output: Path,
    *,
    minutes: float,
    preset: str,
    seed: int,
    settings: Settings,
) -> dict:
    base = load(preset)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    split = {}
    for label, folder in ((0, real_dir), (1, generated_dir)):
        files = _read_folder(Path(folder), settings)
        order = rng.permutation(len(files))
        cut = max(1, round(0.3 * len(files)))
        split[label] = ([files[i] for i in order[cut:]], [files[i] for i in order[:cut]])

    net = type(base.net)(base.net.cfg)
    net.load_state_dict(base.net.state_dict())
    net.eval()  # batch-norm statistics stay those of the base model
    for p in net.parameters():
        p.requires_grad_(False)
    for p in net.head.parameters():
        p.requires_grad_(True)
    opt = torch.optim.Adam(net.head.parameters(), lr=1e-3)
    steps, t0 = 0, time.time()
    while time.time() - t0 < minutes * 60:
        cr, pr = _crops(split[0][0], 16, rng)
        cg, pg = _crops(split[1][0], 16, rng)
        logit = net(torch.cat([cr, cg]), torch.cat([pr, pg])).mean(dim=(1, 2, 3))
        loss = F.binary_cross_entropy_with_logits(logit, torch.cat([torch.zeros(16), torch.ones(16)]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps += 1

    probe = Detector(net, base.calibration, output.stem, **base.scoring)
    real = np.array([probe.logit(f) for f in split[0][1]])
    fake = np.array([probe.logit(f) for f in split[1][1]])
    qp = [np.array([f.meta.get("h264_qp", np.nan) for f in split[k][1]], np.float64) for k in (0, 1)]
    calibration = Calibration.fit(real, fake, real_qp=qp[0], fake_qp=qp[1])
    labels = np.r_[np.zeros(len(real)), np.ones(len(fake))]
    metrics = summary(labels, np.r_[real, fake], calibration.prob(np.r_[real, fake], np.r_[qp[0], qp[1]]))

    from trustframe.weights import save_checkpoint

    card = dict(base.card)
    card.update(
        {
            "name": output.stem,
            "calibration": calibration.to_dict(),
            "adapted": {
                "from": preset,
                "real": str(real_dir),
                "generated": str(generated_dir),
                "minutes": minutes,
                "steps": steps,
                "seed": seed,
                "train_files": [len(split[0][0]), len(split[1][0])],
                "heldout_files": [len(split[0][1]), len(split[1][1])],
                "heldout_metrics": metrics,
            },
        }
    )
    target = output.with_suffix("")
    save_checkpoint(target, net.state_dict(), card)
    return {"output": str(target.with_suffix(".safetensors")), "steps": steps, "heldout": metrics}
