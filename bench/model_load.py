"""What a process pays to load the embedded teacher, by engine and by where its weights come from: the cost every
worker, `gold serve`, `gold doctor` and seq2seq student start pays before its first token.

Usage: .venv/bin/python bench/model_load.py [--repeats 3]

Each load runs in a fresh Python process (as a worker starts), with a models folder (GOLD_MODEL_COPIES) of the
benchmark's own, in this order:
  transformers, first load     the GGUF de-quantized by transformers, and its unpacked copy written
                               (gold/gguf_unpacked.py) — what a new data folder's first worker pays;
  transformers, unpacked copy  every later load (the copy exists);
  transformers, from the GGUF  the same load with no copy (a data folder that cannot be written);
  llama.cpp, file / F16 copy   the llama.cpp engine on the file's Q4_1 weights, and on its F16 copy (first, then
                               reused);
  seq2seq student base         the seq2seq student's base model (the same GGUF) from the unpacked copy.
The seconds are the load alone (imports excluded), best of --repeats for the reused cases. Prints a table and
writes bench/results/model_load.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import RESULTS, ROOT, machine, machine_line, write_json  # noqa: I001

CHILD = r"""
import json, sys, time
how = sys.argv[1]
if how.startswith("transformers"):
    from gold.teachers.local import LocalTeacher
    if how == "transformers_gguf":
        import gold.gguf_unpacked as g
        g.loadable = lambda loc: loc  # the load as it is without a copy
    t0 = time.perf_counter(); LocalTeacher(threads=1)
elif how.startswith("llama"):
    from gold.teachers.llamacpp import LlamaCppTeacher
    t0 = time.perf_counter(); LlamaCppTeacher(threads=1, weights="file" if how == "llama_file" else "f16", sequences=1)
else:
    from gold.students.seq2seq import Seq2SeqStudent
    t0 = time.perf_counter(); Seq2SeqStudent()
print(json.dumps({"load_s": time.perf_counter() - t0}))
"""

CASES = [  # (key, words, repeats: 1 for a first load that writes a copy)
    ("transformers_first", "transformers, first load (GGUF de-quantized, unpacked copy written)", False),
    ("transformers_unpacked", "transformers, from the unpacked copy", True),
    ("transformers_gguf", "transformers, from the GGUF (no copy)", True),
    ("llama_file", "llama.cpp, the file's Q4_1 weights", True),
    ("llama_f16_first", "llama.cpp, F16 copy written", False),
    ("llama_f16", "llama.cpp, from the F16 copy", True),
    ("seq2seq_unpacked", "seq2seq student's base, from the unpacked copy", True),
]


def load_once(how: str, copies: str) -> float:
    env = {**os.environ, "GOLD_MODEL_COPIES": copies, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "OMP_NUM_THREADS": "1"}
    arg = "llama_f16" if how == "llama_f16_first" else how
    done = subprocess.run([sys.executable, "-c", CHILD, arg], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"error: loading {how} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["load_s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(RESULTS / "model_load.json"))
    a = ap.parse_args()
    try:
        import llama_cpp  # noqa: F401
        cases = CASES
    except ImportError:
        cases = [c for c in CASES if not c[0].startswith("llama")]
    rows = {}
    with tempfile.TemporaryDirectory(prefix="gold-bench-copies-") as copies:
        for key, words, reused in cases:
            times = [load_once(key, copies) for _ in range(a.repeats if reused else 1)]
            rows[key] = {"what": words, "load_s": round(min(times), 2), "runs_s": [round(t, 2) for t in times]}
            print(f"{words:<70} {min(times):>7.2f} s", flush=True)
        sizes = {"llama.cpp F16 copy" if p.is_file() else "unpacked transformers folder":
                 round(sum(f.stat().st_size for f in ([p] if p.is_file() else p.rglob("*"))) / 1e6)
                 for p in Path(copies).iterdir()}
    first, reused = rows["transformers_gguf"]["load_s"], rows["transformers_unpacked"]["load_s"]
    print(f"\ntransformers: the unpacked copy loads {first / reused:.0f}x as fast as the GGUF; copies on disk (MB): "
          f"{sizes}\n{machine_line(machine())}")
    write_json(Path(a.out), {"rows": rows, "copy_mb": sizes, "gguf_over_unpacked": round(first / reused, 1),
                             "machine": machine_line(machine()), "machine_info": machine()})


if __name__ == "__main__":
    main()
