set -e
export OMP_NUM_THREADS=2
P=.venv/bin/python
$P -m trustframe.detector.train_autoencoder --name ps2d-f4 --out runs/f4ps/rec --minutes 7 --threads 2
$P -m trustframe.detector.train_autoencoder --name ps2d-f4 --out runs/f4ps/adv --minutes 7 --threads 2 --adversarial 0.5 --lr 1e-4 --init-from runs/f4ps/rec/ps2d-f4/ps2d-f4.safetensors
W=runs/f4ps/adv/ps2d-f4/ps2d-f4.safetensors
$P experiments/ps2d-f4/pairs.py $W train 500 runs/f4ps/train-f4.npz footage
$P experiments/ps2d-f4/pairs.py $W train 125 runs/f4ps/train-world-f4.npz world
$P experiments/ps2d-f4/join.py
$P -m trustframe.detector.train --name lodo-tfvae-f4c8 --out runs/f4ps/arm --data runs/f4ps/data --size det-s --threads 2 --resize-p 0.3 --gif-p 0.3 --grain-p 0.25 --exclude-decoder tfvae-f4c8 --minutes 15
$P experiments/sd2d-f4/eval.py (from ae08cee) runs/f4ps/arm
