"""Which weights the llama.cpp engine runs a GGUF teacher with: the file's own, or an F16 copy of them.

Why a copy: llama.cpp's CPU backend multiplies a batch of prompt tokens with fast batched kernels for most
weight types (F16, BF16, Q8_0, Q4_0, the K-quants), but not for the older Q4_1 and Q5_1, which it reads a token
row at a time. The embedded teacher ships as Q4_1, and a GOLD round mostly reads prompts (about 120 prompt tokens
for each ~30-token sample, and every sample read back for its soft label). On a 2-core x86 CPU the same model read
prompts 1.7–2.1× as fast from an F16 copy and decoded one reply at a time 0.6–0.7× as fast
(`bench/teacher_weights.py`); decoding several replies together (`parallel_decode`) more than makes that up. The copy holds the same numbers: a Q4_1 weight is d·q + m with 16-bit d and m, which F16
keeps to its last bit or so, and llama.cpp no longer rounds the activations to 8 bits for the product, so the F16
copy is closer to the full-precision model than the quantized arithmetic was.

`auto` makes the copy only where it pays and fits: a Q4_1 or Q5_1 file of at most `AUTO_MAX_FILE_BYTES` (larger
models decode from memory bandwidth, where 16-bit weights are 3–4× the bytes to stream per token). The copy is
written once per source file among the model copies (gold/model_copies.py; about 2 s and 270 MB for the embedded
teacher) and reused; if it cannot be written (read-only or full disk) the file's own weights run and the teacher says so.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from gold import model_copies

GGUF_WEIGHTS = ("auto", "file", "f16")

# llama.cpp's `general.file_type` values (enum llama_ftype) of the types its CPU backend has no batched kernel for
SLOW_PROMPT_TYPES = {3: "Q4_1", 9: "Q5_1"}
FILE_TYPE_NAMES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
                   11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
                   17: "Q5_K_M", 18: "Q6_K", 32: "BF16"}
AUTO_MAX_FILE_BYTES = 512 * 1024 * 1024  # Q4_1 of about 900M parameters; its F16 copy about 1.8 GB
LLAMA_FTYPE_MOSTLY_F16 = 1

# GGUF value types (gguf.GGUFValueType) and the byte size of the fixed-size ones
_STRING, _ARRAY = 8, 9
_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_UINT = {0: "<B", 2: "<H", 4: "<I", 10: "<Q", 1: "<b", 3: "<h", 5: "<i", 11: "<q"}

def file_type(path: str | os.PathLike) -> int | None:
    """The GGUF's `general.file_type` (llama.cpp's ftype: 3 = Q4_1), read from its header alone: the key/value
    section is walked until that key, so the tokenizer's long arrays after it are never read. None when the file
    is not a GGUF or does not say."""
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"GGUF":
                return None
            version, _tensors, kv_count = struct.unpack("<IQQ", f.read(20))
            if version < 2:
                return None

            def string() -> bytes:
                (n,) = struct.unpack("<Q", f.read(8))
                return f.read(n)

            def skip(kind: int) -> None:
                if kind == _STRING:
                    string()
                elif kind == _ARRAY:
                    inner, count = struct.unpack("<IQ", f.read(12))
                    if inner in _FIXED:
                        f.seek(_FIXED[inner] * count, os.SEEK_CUR)
                    else:
                        for _ in range(count):
                            skip(inner)
                elif kind in _FIXED:
                    f.seek(_FIXED[kind], os.SEEK_CUR)
                else:
                    raise ValueError(f"unknown GGUF value type {kind}")

            for _ in range(kv_count):
                key = string()
                (kind,) = struct.unpack("<I", f.read(4))
                if key == b"general.file_type" and kind in _UINT:
                    (value,) = struct.unpack(_UINT[kind], f.read(_FIXED[kind]))
                    return int(value)
                skip(kind)
    except (OSError, ValueError, struct.error):
        return None
    return None


def type_name(ftype: int | None) -> str:
    return FILE_TYPE_NAMES.get(ftype, f"type {ftype}") if ftype is not None else "unknown type"


def resolved_weights(weights: str, path: str | os.PathLike) -> str:
    """What `weights` stands for with this file: "f16" or "file" ("auto" decided by the module docstring's rule;
    a file already stored in F16 or F32 is its own weights either way)."""
    if weights not in GGUF_WEIGHTS:
        raise ValueError(f"GGUF weights must be one of {', '.join(GGUF_WEIGHTS)}, not {weights!r}.")
    ftype = file_type(path)
    if weights == "file" or ftype in (0, 1):
        return "file"
    if weights == "f16":
        return "f16"
    try:
        small = os.path.getsize(path) <= AUTO_MAX_FILE_BYTES
    except OSError:
        return "file"
    return "f16" if ftype in SLOW_PROMPT_TYPES and small else "file"


def f16_copy(path: str | os.PathLike, threads: int = 1, folder: Path | None = None) -> Path:
    """The F16 copy of a GGUF file, written on first use and reused after (gold/model_copies.py: named by the
    source, written whole or not at all), in `folder` (else the model copies' folder)."""
    import llama_cpp
    from llama_cpp._logger import set_verbose

    src = Path(path).resolve()

    def write(partial: Path) -> None:
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = LLAMA_FTYPE_MOSTLY_F16
        params.allow_requantize = True
        params.nthread = max(1, threads)
        set_verbose(False)  # llama.cpp logs a line per tensor; errors still show
        failed = llama_cpp.llama_model_quantize(str(src).encode(), str(partial).encode(), params)
        if failed or not partial.is_file():
            raise OSError(f"llama.cpp could not write an F16 copy of {src.name} (code {failed})")

    return model_copies.write_once(model_copies.copy_path(src, "f16.gguf", folder), write)
