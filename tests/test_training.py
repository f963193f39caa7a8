"""Every training script runs unchanged under torchrun (2 processes, gloo) and its ranks stay in sync.

Each run is a few seconds of the real loop on tiny settings; the scripts themselves raise if any
rank's weights differ from rank 0's at the end (`trustframe.training.check_in_sync`).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

RUNS = {
    "watermark": ("trustframe.watermark.train", ["--pool", "8", "--batch", "2", "--patch", "64",
                                                 "--out-px", "48", "--keys", "2", "--minutes", "0.1"],
                  "tfwm-base"),
    "vae": ("trustframe.generator.train_vae", ["--minutes", "0.15", "--crop-batch", "2", "--width", "8"],
            "tfvae-f8c16"),
    "dit": ("trustframe.generator.train_dit", ["--clips", "16", "--captions-per-clip", "1", "--batch", "2",
                                               "--minutes", "0.1"], "tfdit-s"),
    "dit-finetune": ("trustframe.generator.train_dit",
                     ["--clips", "16", "--captions-per-clip", "1", "--batch", "2", "--minutes", "0.1",
                      "--init-from", "tfdit-s", "--fg-weight", "4"], "tfdit-s"),
}


@pytest.mark.parametrize("which", list(RUNS))
def test_trainer_runs_under_torchrun(tmp_path, which):
    module, args, name = RUNS[which]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", module, *args, "--out", str(tmp_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / name / "state.pt").is_file()
