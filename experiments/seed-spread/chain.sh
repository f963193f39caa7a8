#!/bin/bash
# seed spread of the shipped tfdet-s recipe, on stop 41's data (runs/r1/tfdet-s/data)
cd /work/main
S=${1:-1}
OUT=runs/seeds/s$S
COMMON="--name tfdet-s --out $OUT --data runs/r1/tfdet-s/data --size det-s --threads 2 --resize-p 0.3 --gif-p 0.3 --grain-p 0.25 --seed $S"
date; .venv/bin/python -m trustframe.detector.train $COMMON --minutes 45 > $OUT.stage1.log 2>&1
date; .venv/bin/python -m trustframe.detector.train $COMMON --jpeg-p 0.3 --minutes 62 > $OUT.stage2.log 2>&1
date; echo done
