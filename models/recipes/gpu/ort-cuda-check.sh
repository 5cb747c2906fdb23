#!/usr/bin/env bash
# On a lent GPU machine: install onnxruntime-gpu from the five parts that
# ../shared/tools/ort-gpu-chunks.sh wrote (one part carried per call, .ortgpu/p1 ... p5, kept
# there while the machine stays warm), then run the CUDA tests and `livestems bench` with the
# CPU and CUDA providers side by side, into $OUT.
#
# The machine's own onnxruntime has no CUDA provider, and the wheel (245 MiB) is larger than
# one call may carry (64 MiB with the repository), hence the parts. Its CUDA and cuDNN
# libraries come from the machine's torch (the nvidia-* packages): torch is imported first so
# that they are loaded before onnxruntime looks for them.
# Run from the repository root:  OUT=out/ort bash models/recipes/gpu/ort-cuda-check.sh
# Carry .ortgpu/p5, .gpu/whl and .gpu/site in the call that runs it. Seen in session 13: the
# parts p1-p4 carried by the four calls before stayed on the machine, but .gpu, carried by the
# first call only, was gone by the second, so carry what a call reads in that call.
set -u
OUT=${OUT:-out/ort}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
name=$(cat .ortgpu/p1/name.txt) || exit 1
cat .ortgpu/p1/part0 .ortgpu/p2/part1 .ortgpu/p3/part2 .ortgpu/p4/part3 .ortgpu/p5/part4 \
    > "/tmp/$name" || exit 1
site=$(mktemp -d)
"$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" \
    "/tmp/$name" .gpu/whl/*.whl || exit 1
cp -r .gpu/site/*.dist-info "$site"/
ln -s "$PWD" "$site/livestems"
# sitecustomize runs before anything else in every Python started below (pytest included).
cat > "$site/sitecustomize.py" <<'PY'
import torch  # noqa: F401  (loads the CUDA, cuBLAS and cuDNN libraries onnxruntime needs)
import onnxruntime

onnxruntime.preload_dlls()
PY
export PYTHONPATH=$site PYTHONUNBUFFERED=1
{
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
    "$PYTHON" -c "import onnxruntime as o; print('onnxruntime', o.__version__, o.get_available_providers())"
    # the CUDA test, the provider test (whose 'auto' now picks CUDA) and torch == onnxruntime
    timeout 240 "$PYTHON" -m pytest -q -p no:cacheprovider tests/export/test_onnx_export.py \
        -k "cuda or provider" 2>&1 | tail -15
} 2>&1 | tee "$OUT/cuda-tests.txt"
timeout 200 "$PYTHON" -m livestems.realtime.commands.cli bench --provider cpu cuda --no-stream \
    --quick -o "$OUT/bench" 2>&1 | tail -25 | tee "$OUT/bench.txt"
