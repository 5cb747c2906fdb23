#!/usr/bin/env bash
# Train every recipe in models/recipes/gpu/ side by side on one lent GPU machine, each with its
# own time limit (the recipes' time_limit_s), and pack each run's best.pt, config and log into
# $OUT/<run>.tar. Measured on an H200 at batch 32: seven processes made about 17 steps/s in
# all (each step is 877-2,510 tiny kernels), so the next run should take larger batches rather
# than more processes (README, "One run on a lent GPU").
#
# The machine has torch but not this project's other needs, no ffmpeg, no FluidSynth and no
# network, so it gets (in .gpu/, which git ignores, carried with the repository):
#   .gpu/data   python -m livestems.models.data.pack --musdb ../shared/data/musdb18-7 \
#                   --midi-songs 40 --out .gpu/data
#   .gpu/whl    the wheels of soundfile, cffi, pycparser and soxr for its Python
#   .gpu/site   this checkout's livestems-*.dist-info (the families' entry points)
# Run from the repository root:  OUT=out/gpu bash models/recipes/gpu/run.sh [RUN ...]
# (EXTRA="--device cpu --time-limit-s 30 ..." tries it on a CPU first.)
set -u
OUT=${OUT:-out/gpu}
RUNS=${*:-lstm-live lstm-live-default lstm-ultra cws-live bsrnn-live bsrnn-medium hybrid-small}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT" runs/gpu
site=$(mktemp -d)
if [ -z "${NO_WHEELS:-}" ]; then  # NO_WHEELS=1 where the packages are installed already
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --target "$site" .gpu/whl/*.whl || exit 1
fi
cp -r .gpu/site/*.dist-info "$site"/
ln -s "$PWD" "$site/livestems"
export PYTHONPATH=$site PYTHONUNBUFFERED=1
{
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
    "$PYTHON" -c "import torch; print('torch', torch.__version__, torch.cuda.is_available())"
    nproc
} > "$OUT/machine.txt" 2>&1
for run in $RUNS; do
    limit=$("$PYTHON" -c "import json; print(json.load(open('models/recipes/gpu/$run.json'))['time_limit_s'])")
    # a hard stop beside the recipe's own limit: data loading and the last epoch come on top
    timeout -s INT $((${limit%.*} + 90)) "$PYTHON" -m livestems.realtime.commands.cli train \
        --config "models/recipes/gpu/$run.json" --out "runs/gpu/$run" \
        --no-progress ${EXTRA:-} > "runs/gpu/$run.out" 2>&1 &
done
while [ "$(jobs -r | wc -l)" -gt 0 ]; do
    sleep 30
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader >> "$OUT/machine.txt" 2>&1
done
wait
cp "$OUT/machine.txt" runs/gpu/
for run in $RUNS; do
    cp "runs/gpu/$run.out" "runs/gpu/$run/train.out" 2>/dev/null
    echo "== $run"; tail -4 "runs/gpu/$run.out"
    # MODELS=0: the logs alone (a first short run that checks every recipe starts)
    [ "${MODELS:-1}" = 1 ] && tar -C runs/gpu -cf "$OUT/$run.tar" --exclude last.pt "$run"
done
tar -C runs/gpu -cf "$OUT/logs.tar" machine.txt $(cd runs/gpu && ls -d ./*.out ./*/log.jsonl 2>/dev/null)
rm "$OUT/machine.txt"
