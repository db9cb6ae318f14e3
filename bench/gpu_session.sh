#!/usr/bin/env bash
# The GPU checks still owed (issues 9, 10, 13), as parts that each fit one device call.
#
# A device session has 15 minutes in all, start-up (2-3 min) included, and 10 minutes per command,
# so run one or two parts per session, biggest need first:
#
#   gpu       (~4 min) bench_gpu.py: CPU/GPU agreement, simulate img/s per preset and batch,
#             profiles, training loop vs bare step at batch 256, on the fly; then
#             bench_magnification.py (lens-finding refinement batched vs per system) -> issue 13
#   robust    (~4.5 min) bench_transfer.py, row `robust` (2 GPU-min) tested on its own test split
#             and on DeepLenseSim's Models I-III reference images                -> issue 9, item 4
#   lensfind  (~5 min)   bench_lensfind.py on lensfind_ground: darklens vs CMU vs LASTRO,
#             1 GPU-min each, full-resolution darklens, threshold at FPR 1e-3       -> issue 10
#   lensfind_space (~5 min) the same on lensfind_space (Euclid-VIS-like)         -> issue 10
#
# On the device machine, from the repository root (carry [".whl"], filled here once by
# ../shared/tools/device-wheels), e.g. `bash bench/gpu_session.sh gpu robust`: every part writes
# its log and JSON under $OUT (the device tool's folder) and the logs are tarred into one file.
# Dry run on a CPU at tiny sizes: `DRY=1 OUT=/tmp/gs bash bench/gpu_session.sh gpu robust lensfind`.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu_session}
WORK=${WORK:-/tmp/darklens_gpu_session}
mkdir -p "$OUT" "$WORK"
if [ -d .whl ] && [ -z "${DRY:-}" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target .site .whl/*.whl
fi
export PYTHONPATH="$PWD/.site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
PY=${PY:-python3}
[ -x .venv/bin/python ] && [ -n "${DRY:-}" ] && PY=.venv/bin/python

if [ -n "${DRY:-}" ]; then
    DEVICE=cpu
    MAG_IMAGES=5
    GPU_ARGS=(--device cpu --tiny)
    ROBUST_ARGS=(--device cpu --n-per-class 40 --n-ref-per-class 10 --budget-cpu-min 0.2)
    LENSFIND_ARGS=(--device cpu --n-train 60 --n-val 40 --n-test 40 --budget-min 0.1
                   --workers 1 --eval-batch-size 16)
else
    DEVICE=cuda
    GPU_ARGS=(--device cuda)
    ROBUST_ARGS=(--device cuda --n-per-class 10000 --n-ref-per-class 500 --budget-gpu-min 2
                 --workers 12)
    LENSFIND_ARGS=(--device cuda --n-train 5000 --n-val 2000 --n-test 4000 --budget-min 1
                   --workers 16 --threads 8 --target-fpr 1e-3 --darklens-img-size 0
                   --eval-batch-size 256)
fi

run_part() {  # name, time limit (s), command...
    local name=$1 limit=$2
    shift 2
    local t0=$SECONDS
    timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
    echo "$name: exit $? after $((SECONDS - t0)) s ($DEVICE)" | tee -a "$OUT/summary.txt"
}

for part in "$@"; do
    case $part in
        gpu) run_part gpu 240 "$PY" bench/bench_gpu.py "${GPU_ARGS[@]}" --work "$WORK"
            run_part magnification 60 "$PY" bench/bench_magnification.py --device "$DEVICE" \
                --images "${MAG_IMAGES:-100}" --repeats 2 ;;
        robust) run_part robust 300 "$PY" bench/bench_transfer.py --rows robust \
            --columns robust,dls_i,dls_ii,dls_iii \
            "${ROBUST_ARGS[@]}" --work "$WORK/transfer" --json "$OUT/robust.json" ;;
        lensfind) run_part lensfind 330 "$PY" bench/bench_lensfind.py \
            --preset lensfind_ground "${LENSFIND_ARGS[@]}" --work "$WORK/lensfind" \
            --json "$OUT/lensfind.json" ;;
        lensfind_space) run_part lensfind_space 330 "$PY" bench/bench_lensfind.py \
            --preset lensfind_space "${LENSFIND_ARGS[@]}" --work "$WORK/lensfind" \
            --json "$OUT/lensfind_space.json" ;;
        *) echo "unknown part $part (gpu, robust, lensfind, lensfind_space)" >&2; exit 2 ;;
    esac
done
tar czf "$OUT/logs.tar.gz" -C "$OUT" --exclude logs.tar.gz . 2>/dev/null
