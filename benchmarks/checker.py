"""The analytic checker against ground truth: agreement per attribute on world renders.

    python benchmarks/checker.py [--clips 500] [--seed 0] [--vae PRESET]

Draws `--clips` random specs (split "any": all sizes 64x64 / 64x96 / 96x64, 8-48 frames, 30%
two-shot, 30% camera pan/zoom), renders them, and runs `trustframe.generator.checker.check` on
- clean: the exact render;
- light: Gaussian blur sigma 0.7 px + Gaussian noise sigma 4 (0..255) + H.264 CRF 28 (yuv420p)
  through `trustframe.media.encode_video` / `media.read`: roughly what a VAE decode plus a
  delivery encode does;
- heavy: blur sigma 1.2 + noise sigma 8 + per-channel colour drift (gain 1 +- 0.1, offset +- 10)
  + H.264 CRF 35; a stress level with no target;
- with --vae PRESET, also the render encoded and decoded by that shipped VAE: the ceiling the VAE
  puts on what the checker can read in generated clips.
Also the caption grammar end to end: each spec's caption is parsed, laid out afresh, rendered
and checked against the original spec (clean). Reports the fraction of clips on which each
attribute (colour, shape, count, direction, cut) and all of them together agree with the spec.
Writes benchmarks/results/checker.json and checker.md.
"""

from __future__ import annotations

import argparse
import collections
import json
import platform
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
from scipy import ndimage

from trustframe import media
from trustframe.generator import captions, checker, world

RESULTS = Path(__file__).parent / "results"
COLUMNS = (*checker.ATTRIBUTES, "all", *checker.EXTRA_ATTRIBUTES)
def vae_round_trip(frames: np.ndarray, name: str) -> np.ndarray:
    """uint8 (T, H, W, 3) -> encoded and decoded by a shipped VAE preset -> uint8 (T, H, W, 3)."""
    import torch

    from trustframe.generator.models import load_vae

    vae, _ = load_vae(name)
    t, h, w, _ = frames.shape
    x = torch.from_numpy(frames).permute(3, 0, 1, 2)[None].float() / 127.5 - 1.0  # (1, 3, T, H, W)
    with torch.no_grad():
        y = vae.decode(vae.encode(x), frames=t, height=h, width=w)
    return ((y[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 3, 0).numpy()


LEVELS = {
    "clean": None,
    "light": {"blur": 0.7, "noise": 4.0, "drift": 0.0, "crf": 28},
    "heavy": {"blur": 1.2, "noise": 8.0, "drift": 0.1, "crf": 35},
}


def degrade(frames: np.ndarray, level: dict, rng: np.random.Generator, fps: float) -> np.ndarray:
    """uint8 (T, H, W, 3) -> degraded uint8 (T, H, W, 3), through a real H.264 encode."""
    f = ndimage.gaussian_filter(frames.astype(np.float64), sigma=(0, level["blur"], level["blur"], 0))
    f = f + rng.normal(0, level["noise"], f.shape)
    if level["drift"]:
        gain = 1 + rng.uniform(-level["drift"], level["drift"], 3)
        offset = rng.uniform(-100 * level["drift"], 100 * level["drift"], 3)
        f = f * gain + offset
    f = np.clip(np.rint(f), 0, 255).astype(np.uint8)
    with media.scratch_path(".mp4") as p:
        media.encode_video(f, p, fps=fps, crf=level["crf"])
        out = media.read(p).data
    return out[:, :frames.shape[1], :frames.shape[2]]


def describe(spec: world.ClipSpec) -> dict:
    return {"frames": spec.frames, "size": f"{spec.width}x{spec.height}", "cut_at": spec.cut_at,
            "shots": [{"background": s.background, "camera": s.camera, "bg_tint": s.bg_tint,
                       "objects": [(o.colour, o.shape, o.direction, o.speed, o.size) for o in s.objects]}
                      for s in spec.shots]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vae", default=None, help="also score round trips through this shipped VAE "
                    "preset (e.g. tfvae-f4c8): the ceiling that VAE puts on generated clips")
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    specs = [world.sample_spec(rng, frames=None, height=None, width=None, split="any",
                               multi_shot_p=0.3, camera_p=0.3) for _ in range(args.clips)]
    mix = {
        "two_shot": sum(len(s.shots) == 2 for s in specs),
        "camera": sum(any(sh.camera for sh in s.shots) for s in specs),
        "objects": dict(sorted(collections.Counter(len(sh.objects) for s in specs
                                                   for sh in s.shots).items())),
        "sizes": dict(collections.Counter(f"{s.width}x{s.height}" for s in specs)),
        "frames": dict(sorted(collections.Counter(s.frames for s in specs).items())),
    }
    results: dict = {}
    levels = dict(LEVELS)
    if args.vae:
        levels[f"vae:{args.vae}"] = {"vae": args.vae}
    for name, level in levels.items():
        noise_rng = np.random.default_rng(args.seed + 1)
        agree = collections.Counter()
        failures = []
        t0 = time.perf_counter()
        check_s = 0.0
        for i, spec in enumerate(specs):
            frames = world.render(spec)
            if level is not None and "vae" in level:
                frames = vae_round_trip(frames, level["vae"])
            elif level is not None:
                frames = degrade(frames, level, noise_rng, spec.fps)
            t1 = time.perf_counter()
            obs = checker.check(frames)
            check_s += time.perf_counter() - t1
            res = checker.adherence(spec, obs)
            agree.update(k for k, ok in res.items() if ok)
            if not all(res.values()) and len(failures) < 10:
                failures.append({"clip": i, "failed": [k for k, ok in res.items() if not ok],
                                 "spec": describe(spec), "seen": obs.summary(), "cut": obs.cut,
                                 "camera": [s.camera for s in obs.shots]})
        n = len(specs)
        results[name] = {"level": level, "agreement": {k: agree[k] / n for k in COLUMNS},
                         "seconds": round(time.perf_counter() - t0, 1),
                         "check_ms_per_clip": round(1000 * check_s / n, 1), "failures": failures}
        print(name, {k: round(v, 4) for k, v in results[name]["agreement"].items()}, file=sys.stderr)

    # The grammar end to end: caption -> parse -> layout (fresh positions) -> render -> check,
    # scored against the original spec. A perfect "generator" that only reads the prompt.
    cap_rng = np.random.default_rng(args.seed + 2)
    agree = collections.Counter()
    for spec in specs:
        parsed = captions.parse(captions.caption(spec, cap_rng), frames=spec.frames, height=spec.height,
                                width=spec.width)
        res = checker.adherence(spec, checker.check(world.render(world.layout(parsed, cap_rng))))
        agree.update(k for k, ok in res.items() if ok)
    results["prompt"] = {"level": "prompt", "agreement": {k: agree[k] / len(specs)
                                                          for k in COLUMNS},
                         "check_ms_per_clip": None, "failures": []}
    print("prompt", results["prompt"]["agreement"], file=sys.stderr)

    cmd = "python benchmarks/checker.py" + (f" --clips {args.clips}" if args.clips != 500 else "") + (
        f" --seed {args.seed}" if args.seed else "") + (f" --vae {args.vae}" if args.vae else "")
    out = {"command": cmd, "date": str(date.today()), "machine": f"{platform.machine()}, {platform.system()}",
           "clips": args.clips, "seed": args.seed, "mix": mix, "results": results}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "checker.json").write_text(json.dumps(out, indent=1) + "\n")

    lines = ["# Analytic checker vs ground truth", "",
             f"`{cmd}` — {out['machine']}, {out['date']}. {args.clips} random world specs (split "
             f"\"any\"; {mix['two_shot']} two-shot, {mix['camera']} with camera pan/zoom; sizes "
             f"{mix['sizes']}; frames {mix['frames']}). Fraction of clips where the checker's reading "
             "agrees with the spec (cut: same frame +-1, or both none; all: every group's colour, shape, "
             "count and direction, and the cut; camera: every shot's pan/zoom or none, reported but not "
             "part of all).", "",
             "| degradation | colour | shape | count | direction | cut | all | camera | ms/clip |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        lv = r["level"]
        label = "clean render" if lv is None else "prompt round trip: caption → parse → layout → render" if (
            lv == "prompt") else f"VAE round trip: `{lv['vae']}` encode → decode" if "vae" in lv else (
            f"{name}: blur σ={lv['blur']}, noise σ={lv['noise']:g}"
            + (f", colour drift ±{lv['drift']:.0%}" if lv["drift"] else "") + f", H.264 CRF {lv['crf']}")
        a = r["agreement"]
        lines.append(f"| {label} | " + " | ".join(f"{a[k]:.3f}" for k in COLUMNS)
                     + f" | {r['check_ms_per_clip'] or '–'} |")
    lines += ["", "Target: all ≥ 0.98 on clean and light. Failures (up to 10 per level) are listed in "
              "checker.json."]
    (RESULTS / "checker.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
