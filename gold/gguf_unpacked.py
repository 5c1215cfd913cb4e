"""The transformers engine's copy of a GGUF model: the same weights de-quantized once and saved as an ordinary
transformers folder (safetensors, config, tokenizer), so every later load reads a plain folder.

Why: transformers loads a GGUF by parsing its metadata and tokenizer in Python and de-quantizing every tensor, 20 s
for the embedded 135M teacher in a fresh process on a 2-core CPU, in every process that loads it (a worker,
`gold serve`, `gold doctor`, the seq2seq student's base on each fresh start). The unpacked folder loads in 2.6 s
(`bench/model_load.py`; the first load, which writes it, takes 26 s) with bit-identical weights, tokenizer and logits (tests/test_gguf_unpacked.py). It is fp32, like the de-quantized model
transformers builds in memory: about 540 MB for the embedded teacher, kept among the model copies
(gold/model_copies.py) and written once per source file. Where it cannot be written (a read-only or full disk) or
would be large (a multi-GB model in fp32), `loadable` hands back the GGUF itself, which loads the slow way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from pathlib import Path

from gold import model_copies
from gold.models import ModelLocation
from gold.store import min_free_mb

log = logging.getLogger(__name__)

MAX_COPY_BYTES = 4 * 2**30  # about 1B parameters in fp32; transformers holds a model that size in memory anyway


def suffix() -> str:
    """The copies' name ending: the transformers version that wrote them, since another version may read a GGUF's
    tokenizer or tensors differently (an upgrade writes a copy of its own)."""
    import transformers

    return f"transformers-{transformers.__version__}"


def detach_quantizer(model) -> None:
    """Make a de-quantized GGUF model an ordinary one: no quantizer, no quantization_config in its config
    (`save_pretrained` refuses a model that still carries a quantizer, and a leftover quantization_config would make
    a plain `from_pretrained(folder)` look for GGUF)."""
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None
    for config in (model.config, getattr(model.config, "text_config", None)):
        if config is not None and hasattr(config, "quantization_config"):
            with contextlib.suppress(AttributeError):
                delattr(config, "quantization_config")


def _write(location: ModelLocation, partial: Path) -> None:
    """De-quantize `location`'s GGUF into a transformers folder at `partial`."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer, GgufConfig
    from transformers.utils import logging as hf_logging

    folder, gguf = str(location.folder), location.gguf_file
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
        config = AutoConfig.from_pretrained(folder, gguf_file=gguf)
        auto = AutoModelForSeq2SeqLM if getattr(config, "is_encoder_decoder", False) else AutoModelForCausalLM
        # dequantize=True: dense fp32 weights even where a GGUF matmul kernel is installed
        model = auto.from_pretrained(folder, gguf_file=gguf, dtype=torch.float32,
                                     quantization_config=GgufConfig(gguf_file=gguf, dequantize=True))
        detach_quantizer(model)
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def copy_bytes(path: Path) -> int:
    """An upper bound on the unpacked (fp32) copy's size: 4 bytes a weight, from the file's size and weight type
    (a 4-bit file grows about 5.5×, 8× at most; F16 2×)."""
    from gold.teachers.gguf_weights import file_type

    growth = {0: 1, 1: 2, 32: 2, 7: 4}.get(file_type(path), 8)  # F32, F16, BF16, Q8_0, else 4 bits or fewer
    return path.stat().st_size * growth


def unpacked(location: ModelLocation, where: Path | None = None) -> ModelLocation:
    """Where to load `location` from under transformers: itself when it is not a GGUF; for a GGUF, its unpacked
    folder (written on first use, in `where`, else the model copies' folder), with the same name. OSError when the
    folder cannot be written, or when the copy would exceed MAX_COPY_BYTES or leave the disk under GOLD_MIN_FREE_MB
    (a multi-GB model is not copied in fp32 to save its load seconds); a GGUF transformers cannot read raises what
    transformers raises."""
    if not location.gguf_file:
        return location
    target = model_copies.copy_path(location.weights, suffix(), where)
    if not target.exists():
        need = copy_bytes(location.weights)
        if need > MAX_COPY_BYTES:
            raise OSError(f"its fp32 copy would take up to {need / 2**30:.1f} GB (the limit is "
                          f"{MAX_COPY_BYTES / 2**30:.0f} GB)")
        free_mb = model_copies.free_mb(target.parent)
        keep_mb = min_free_mb()
        if free_mb is not None and free_mb - need / 2**20 < keep_mb:
            raise OSError(f"{free_mb:,.0f} MB free, and the copy needs up to {need / 2**20:,.0f} MB plus "
                          f"{keep_mb:,.0f} MB kept free")
    model_copies.write_once(target, lambda partial: _write(location, partial))
    return dataclasses.replace(location, folder=target, gguf_file=None)


def loadable(location: ModelLocation) -> ModelLocation:
    """`unpacked(location)`, or `location` itself where its copy cannot be written (it then loads from the GGUF,
    as fast as transformers does that)."""
    try:
        return unpacked(location)
    except OSError as exc:
        log.warning("No unpacked copy of %s (%s): loading it from the GGUF file", location.weights, exc)
        return location
