"""Maps: where the generated data lies. Sentence embeddings of every sample, and a 2-D UMAP per (run, round).

Why this way:
- Embeddings come from the embedded all-MiniLM-L6-v2 (masked mean pooling, L2-normalised: the
  sentence-transformers recipe), cached in the store by (model, hash of the text), so each distinct text is
  embedded once across rounds and runs.
- UMAP is fitted per (run, round) by the worker right after the round, and its coordinates are stored, so
  opening the Explore page never waits for UMAP (its first call in a process costs ~11 s of numba compiling).
- Duplicate vectors break UMAP's spectral initialisation, so identical rows are collapsed before fitting and
  share one point; `n_neighbors` shrinks for small sets; tiny sets (< 6 distinct points) use PCA instead.
- Seeds and evaluation rows are placed on the same map, so a user sees which region the seeds cover.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from gold.checkpoints import load_checkpoint
from gold.models import embedded_encoder, force_offline
from gold.specs import TaskSpec
from gold.store import Store

ENCODER_KEY = "all-MiniLM-L6-v2/mean"
MIN_UMAP_POINTS = 6
_ENCODERS: dict[str, Any] = {}


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class Encoder:
    """The embedded MiniLM as a sentence encoder. Loaded once per process (`get_encoder`)."""

    def __init__(self, folder=None, batch_size: int = 64, max_length: int = 128):
        force_offline()
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.torch = torch
        folder = folder or embedded_encoder().folder
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.model = AutoModel.from_pretrained(str(folder)).eval()
        self.batch_size, self.max_length = batch_size, max_length

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        torch = self.torch
        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths together: little padding
        with torch.inference_mode():
            for s in range(0, len(texts), self.batch_size):
                idx = order[s : s + self.batch_size]
                batch = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                       max_length=self.max_length, return_tensors="pt")
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out[idx] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
        return out


def get_encoder() -> Encoder:
    if "default" not in _ENCODERS:
        _ENCODERS["default"] = Encoder()
    return _ENCODERS["default"]


def embed_cached(store: Store, texts: Sequence[str], encoder: Encoder | None = None) -> np.ndarray:
    """Embeddings for `texts`, computing only those not cached in the store yet."""
    hashes = [text_hash(t) for t in texts]
    cached = store.get_embeddings(ENCODER_KEY, sorted(set(hashes)))
    missing = {h: t for h, t in zip(hashes, texts) if h not in cached}
    if missing:
        enc = encoder or get_encoder()
        vecs = enc.encode(list(missing.values()))
        new = {h: v.astype(np.float32).tobytes() for h, v in zip(missing, vecs)}
        store.put_embeddings(ENCODER_KEY, new)
        cached.update(new)
    return np.stack([np.frombuffer(cached[h], dtype=np.float32) for h in hashes]) if texts else np.zeros((0, 384), np.float32)


def layout_2d(vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D coordinates for the rows of `vectors`: UMAP (cosine) on distinct rows, PCA for tiny sets."""
    n = len(vectors)
    if n == 0:
        return np.zeros((0, 2))
    uniq, inverse = np.unique(np.round(vectors, 5), axis=0, return_inverse=True)
    inverse = np.asarray(inverse).reshape(-1)
    if len(uniq) < MIN_UMAP_POINTS:
        coords = _pca_2d(uniq)
    else:
        import umap

        reducer = umap.UMAP(
            n_components=2, n_neighbors=max(2, min(15, len(uniq) - 1)), min_dist=0.1, metric="cosine",
            random_state=seed, init="spectral" if len(uniq) >= 20 else "random", n_jobs=1,
        )
        coords = reducer.fit_transform(uniq)
    return np.asarray(coords, dtype=float)[inverse]


def _pca_2d(x: np.ndarray) -> np.ndarray:
    if len(x) == 1:
        return np.zeros((1, 2))
    centred = x - x.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    coords = centred @ vt[:2].T
    if coords.shape[1] < 2:
        coords = np.hstack([coords, np.zeros((len(coords), 2 - coords.shape[1]))])
    return coords


@dataclass
class MapPoint:
    source: str  # "sample" | "seed" | "eval"
    ref_id: int
    text: str


def map_inputs(store: Store, run_id: int, round_n: int, task: TaskSpec, task_id: int) -> list[MapPoint]:
    """What goes on the map of (run, round): the run's kept samples up to that round, seeds and eval rows."""
    points = [MapPoint("sample", s.id, task.format_input(s.inputs))
              for s in store.samples(run_id, kept_only=True) if s.round <= round_n]
    for ex in store.examples_with_ids(task_id):
        points.append(MapPoint("seed" if ex["split"] == "seed" else "eval", ex["id"], task.format_input(ex["inputs"])))
    return points


def student_vectors(store: Store, run_id: int, round_n: int, texts: list[str]) -> np.ndarray:
    """The round's student's own representation of the texts (its mean-pooled hidden state): the map as the
    student sees the data, rather than as a general sentence encoder does."""
    return np.asarray(load_checkpoint(store, run_id, round_n).embed(texts), dtype=np.float32)


def compute_map(store: Store, run_id: int, round_n: int, seed: int = 0, encoder: Encoder | None = None,
                space: str = "encoder") -> int:
    """Embed and lay out the map of (run, round) in `space` ('encoder': the cached MiniLM sentence embeddings;
    'student': the round's student); stores and returns the number of points."""
    run = store.get_run(run_id)
    task = store.get_task(run.task_id).spec
    points = map_inputs(store, run_id, round_n, task, run.task_id)
    texts = [p.text for p in points]
    vectors = student_vectors(store, run_id, round_n, texts) if space == "student" else embed_cached(store, texts, encoder)
    coords = layout_2d(vectors, seed=seed)
    store.set_map_points(run_id, round_n, [(p.source, p.ref_id, x, y) for p, (x, y) in zip(points, coords)], space=space)
    return len(points)


def map_frame(store: Store, run_id: int, round_n: int, space: str = "encoder"):
    """The map of (run, round) as one table for the Explore page: coordinates plus everything a point shows
    (text, label, round, energy under the current student, prediction, confidence, flag, veto).
    Seeds and evaluation rows come along with source 'seed' / 'eval' and no energy."""
    import pandas as pd

    run = store.get_run(run_id)
    task = store.get_task(run.task_id).spec
    points = {(p["source"], p["ref_id"]): (p["x"], p["y"]) for p in store.map_points(run_id, round_n, space)}
    rows = []
    for s in store.samples(run_id, kept_only=True):
        xy = points.get(("sample", s.id))
        if xy is None:
            continue
        rows.append({
            "id": s.id, "source": s.role, "x": xy[0], "y": xy[1], "text": task.format_input(s.inputs),
            "label": s.output, "round": s.round, "energy": s.energy, "prediction": s.prediction,
            "confidence": s.confidence, "belief": s.label_prob,
            "flag": "vetoed" if s.vetoed else s.flag, "vetoed": bool(s.vetoed),
        })
    for ex in store.examples_with_ids(run.task_id):
        src = "seed" if ex["split"] == "seed" else "eval"
        xy = points.get((src, ex["id"]))
        if xy is None:
            continue
        rows.append({
            "id": -ex["id"], "source": src, "x": xy[0], "y": xy[1], "text": task.format_input(ex["inputs"]),
            "label": ex["output"], "round": 0, "energy": None, "prediction": None, "confidence": None, "belief": None,
            "flag": src, "vetoed": False,
        })
    # belief: the student's probability of the sample's given label (classification), the review queue's order
    cols = ["id", "source", "x", "y", "text", "label", "round", "energy", "prediction", "confidence", "belief", "flag",
            "vetoed"]
    return pd.DataFrame(rows, columns=cols)
