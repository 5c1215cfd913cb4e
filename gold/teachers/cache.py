"""The teacher a run's settings name, loaded once per process and shared by the runs that name the same one."""

from __future__ import annotations

from typing import Any

from gold.specs import GoldSettings

_TEACHERS: dict[tuple, Any] = {}


def get_teacher(settings: GoldSettings) -> Any:
    """The generating teacher: an OpenAI-compatible client for the openai backend, else the local model."""
    t = settings.teacher
    key = (t.backend, t.engine, t.gguf_weights, t.parallel_sequences, t.model, t.base_url, t.price_in_per_m, t.price_out_per_m, t.budget_usd, t.max_concurrency,
           t.timeout_s, settings.labeler.votes)
    if key not in _TEACHERS:
        if t.backend == "openai":
            from gold.teachers.remote import OpenAITeacher

            _TEACHERS[key] = OpenAITeacher(
                model=t.model, base_url=t.base_url or None, max_concurrency=t.max_concurrency, timeout_s=t.timeout_s,
                price_prompt_per_1m=t.price_in_per_m or None, price_completion_per_1m=t.price_out_per_m or None,
                budget_usd=t.budget_usd or None, label_votes=settings.labeler.votes,
            )
        else:
            from gold.teachers import local_teacher

            _TEACHERS[key] = local_teacher(t.model, t.engine, gguf_weights=t.gguf_weights,
                                           sequences=t.parallel_sequences)
    return _TEACHERS[key]


def scoring_teacher(settings: GoldSettings) -> Any:
    """The teacher that reads samples back (soft labels): the generating teacher itself. Both local engines
    compute label log-likelihoods (llama.cpp from the prefix it keeps cached, ~4× faster than transformers on a
    CPU), so a run loads its model once; a remote one reads them from the server's `logprobs`."""
    return get_teacher(settings)
