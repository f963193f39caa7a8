# ruff: noqa  (an experiment, reverted next: kept as it ran)
"""Heavy compression (CRF 40, then JPEG 30) on held-out photo pans: flagged share at each model's threshold, n clips.
python experiments/calibration-features/heavy.py N MODEL..."""
import sys
import numpy as np
sys.path.insert(0, "benchmarks")
from detector import camera_clip, h264, jpeg, scores  # benchmarks/detector.py
from trustframe.detector.api import load
from trustframe.detector.data import SourceSampler

n = int(sys.argv[1])
rng = np.random.default_rng(12)  # not the benchmark's 11: new clips
test = SourceSampler("test")
pans = [camera_clip(test.photos[i % len(test.photos)], rng, 128) for i in range(n)]
heavy = [jpeg(h264(c, 40), 30) for c in pans]
for m in sys.argv[2:]:
    det = load(m)
    for name, clips in (("heavy", heavy), ("pans", pans)):
        lg, _ = scores(det, clips)
        print(m, name, "flagged", int((lg >= det.calibration.threshold_logit).sum()), "/", n,
              "uncertain+", int((lg >= det.calibration.uncertain_logit).sum()), flush=True)
