"""A style classifier by transfer learning: a linear probe (multinomial logistic regression,
scikit-learn) on the frozen encoder's style embeddings (:mod:`.embeddings`).

Training data is a folder with one sub-folder per label (artist, movement, or the user's own
categories). The probe is scored by stratified k-fold cross-validation (accuracy, balanced
accuracy, a confusion matrix), then refitted on everything and exported like every other
trained thing in atelier: weights as safetensors (float32 ``coef`` (classes or 1, dim) and
``intercept``) with a JSON model card beside it that carries their sha256, the labels, the
embedding it expects and the cross-validation results. Loading verifies the sha256
(:func:`atelier.training.cards.read_verified`) and never unpickles anything.

Fine-tuning the last VGG block is measured against this probe by :mod:`.finetune` (``--fine-tune``).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from ..core.errors import InputError
from ..core.files import atomic_write
from ..training.cards import output_paths, read_verified
from .embeddings import EmbeddingConfig, StyleEmbedder, config_digest
from .index import IMAGE_EXTENSIONS

__all__ = ["CARD_FORMAT", "StyleClassifier", "check_folds", "labelled_files", "train_classifier", "cross_validate"]

CARD_FORMAT = "atelier-style-classifier"


def labelled_files(folder: str | os.PathLike) -> tuple[list[Path], list[str]]:
    """(image files, their labels) from a folder with one sub-folder per label.

    Raises:
        InputError: not a folder, fewer than two labels, or a label with no images.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise InputError("folder not found" if not root.exists() else "is not a folder", root)
    files, labels = [], []
    subs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    for d in subs:
        found = sorted(p for p in d.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                       and not p.name.startswith("."))
        if not found:
            raise InputError(f"label folder {d.name!r} has no images", d)
        files += found
        labels += [d.name] * len(found)
    if len(subs) < 2:
        raise InputError("needs one sub-folder per label and at least two labels (e.g. vangogh/ and other/)", root)
    return files, labels


def check_folds(labels: Sequence[str], folds: int, folder=None) -> None:
    """Refuse a fold count that some label cannot fill (InputError)."""
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise InputError(f"folds must be a whole number >= 2, got {folds!r}")
    classes, counts = np.unique(np.asarray(labels, dtype=str), return_counts=True)
    if counts.min() < folds:
        raise InputError(f"label {str(classes[counts.argmin()])!r} has {counts.min()} images; {folds}-fold "
                         f"cross-validation needs at least {folds} per label (use --folds {max(2, counts.min())})",
                         folder)


def _probe(c: float, seed: int):
    """Standardize each embedding dimension (the unit vectors share a large common direction,
    so their coordinates vary little), then logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000, random_state=seed))


def _folded(pipeline) -> tuple[np.ndarray, np.ndarray]:
    """(coef, intercept) of the fitted pipeline with the standardization folded in:
    ``w . (x - mu) / sigma + b = (w / sigma) . x + (b - w . mu / sigma)``."""
    scaler, lr = pipeline[0], pipeline[-1]
    w = lr.coef_ / scaler.scale_
    b = lr.intercept_ - w @ scaler.mean_
    return w.astype(np.float32), b.astype(np.float32)


def cross_validate(vectors: np.ndarray, labels: Sequence[str], folds: int = 5, c: float = 1.0,
                   seed: int = 0) -> dict:
    """Stratified k-fold scores of the linear probe.

    Returns:
        dict with ``folds``, ``accuracy`` (mean), ``accuracy_std``, ``fold_accuracy``,
        ``balanced_accuracy``, ``chance`` (the majority label's share), ``classes`` and
        ``confusion`` (rows: true label, columns: predicted, counts over all folds).

    Raises:
        InputError: a label has fewer images than ``folds``.
    """
    from sklearn.metrics import balanced_accuracy_score, confusion_matrix
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(labels, dtype=str)
    classes, counts = np.unique(y, return_counts=True)
    check_folds(labels, folds)
    pred = np.empty_like(y)
    accs = []
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(vectors, y):
        model = _probe(c, seed).fit(vectors[train], y[train])
        pred[test] = model.predict(vectors[test])
        accs.append(float((pred[test] == y[test]).mean()))
    return {"folds": folds, "accuracy": float(np.mean(accs)), "accuracy_std": float(np.std(accs)),
            "fold_accuracy": accs, "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
            "chance": float(counts.max() / counts.sum()), "classes": classes.tolist(),
            "confusion": confusion_matrix(y, pred, labels=classes).tolist()}


@dataclass
class StyleClassifier:
    """A trained linear probe: ``classes``, ``coef`` (C or 1, dim), ``intercept`` (the
    standardization folded in), and the
    embedding it expects (``identity``, from :meth:`StyleEmbedder.identity`)."""

    classes: list
    coef: np.ndarray
    intercept: np.ndarray
    identity: dict
    card: Optional[dict] = None

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """(N, classes) probabilities for embeddings (N, dim)."""
        z = np.asarray(vectors, np.float64) @ self.coef.T.astype(np.float64) + self.intercept
        if len(self.classes) == 2 and self.coef.shape[0] == 1:
            p1 = 1.0 / (1.0 + np.exp(-z[:, 0]))
            return np.stack([1 - p1, p1], 1)
        z -= z.max(1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(1, keepdims=True)

    def embedder(self) -> StyleEmbedder:
        emb = StyleEmbedder(EmbeddingConfig.from_dict(self.identity["config"]))
        if config_digest(emb.identity()) != config_digest(self.identity):
            raise InputError("this classifier was trained with other encoder weights than the ones available")
        return emb

    def predict_files(self, paths: Sequence[str | os.PathLike], on_error: Optional[Callable] = None
                      ) -> tuple[list, np.ndarray]:
        """(the files read, probabilities (N, classes)); unreadable files go to ``on_error``."""
        done, vecs = self.embedder().embed_files(list(paths), on_error=on_error)
        return done, self.probabilities(vecs)

    def save(self, out: str | os.PathLike, card: dict) -> dict:
        """Write ``<out>.safetensors`` and the model card ``<out>.json`` (atomically). Returns the paths."""
        from safetensors.torch import save as st_save
        import torch

        paths = output_paths(out)
        blob = st_save({"coef": torch.from_numpy(np.ascontiguousarray(self.coef, np.float32)),
                        "intercept": torch.from_numpy(np.ascontiguousarray(self.intercept, np.float32))})
        card = dict(card, format=CARD_FORMAT, sha256=hashlib.sha256(blob).hexdigest(), classes=list(self.classes),
                    embedding=self.identity)
        with atomic_write(paths["weights"], "wb") as f:
            f.write(blob)
        with atomic_write(paths["card"], "w") as f:
            json.dump(card, f, indent=2)
            f.write("\n")
        self.card = card
        return paths

    @classmethod
    def load(cls, path: str | os.PathLike) -> "StyleClassifier":
        """Load ``<path>.safetensors`` + ``<path>.json``, verifying the sha256.

        Raises:
            InputError: missing or modified files, or not a style classifier.
        """
        def parse(card):
            if card.get("format") != CARD_FORMAT:
                raise ValueError(f"format is {card.get('format')!r}, not a style classifier")
            return list(card["classes"]), dict(card["embedding"])

        card, state, _, (classes, identity) = read_verified(path, parse)
        coef, intercept = state["coef"].float().numpy(), state["intercept"].float().numpy()
        if coef.ndim != 2 or coef.shape[0] not in (1, len(classes)) or intercept.shape != (coef.shape[0],):
            raise InputError("the classifier's weights do not match its card", path)
        return cls(classes, coef, intercept, identity, card)


def train_classifier(folder: str | os.PathLike, folds: int = 5, c: float = 1.0, seed: int = 0,
                     config: Optional[EmbeddingConfig] = None, on_error: Optional[Callable] = None,
                     progress: Optional[Callable[[int], None]] = None) -> tuple[StyleClassifier, dict]:
    """Embed a labelled folder, cross-validate the probe, refit it on everything.

    Returns:
        (the classifier, its model card: data, counts, embedding, probe, cross-validation).
    """
    files, labels = labelled_files(folder)
    check_folds(labels, folds, folder)
    emb = StyleEmbedder(config)
    done, vecs = emb.embed_files(files, on_error=on_error, progress=progress)
    keep = {str(p) for p in done}
    labels = [lab for p, lab in zip(files, labels) if str(p) in keep]
    if len(set(labels)) < 2:
        raise InputError("fewer than two labels have readable images", folder)
    cv = cross_validate(vecs, labels, folds, c, seed)
    model = _probe(c, seed).fit(vecs, np.asarray(labels))
    coef, intercept = _folded(model)
    clf = StyleClassifier([str(x) for x in model.classes_], coef, intercept, emb.identity())
    classes, counts = np.unique(labels, return_counts=True)
    card = {
        "kind": "linear probe (standardized inputs, logistic regression, scikit-learn) on frozen style embeddings",
        "trained_on": {"folder": Path(folder).name, "images": len(labels),
                       "per_label": {str(k): int(v) for k, v in zip(classes, counts)}},
        "probe": {"standardize": True, "C": c, "max_iter": 5000, "seed": seed},
        "cross_validation": cv,
        "date": datetime.date.today().isoformat(),
        "limits": "trained on the images above only; the frozen VGG encoder is not fine-tuned",
    }
    return clf, card


def confusion_png(cv: dict, path: str | os.PathLike, title: str = "") -> Path:
    """A confusion-matrix figure (matplotlib, Agg) written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = np.asarray(cv["confusion"])
    classes = cv["classes"]
    fig, ax = plt.subplots(figsize=(2 + 0.6 * len(classes), 1.6 + 0.6 * len(classes)), dpi=120)
    ax.imshow(m, cmap="Blues")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, str(m[i, j]), ha="center", va="center", color="white" if m[i, j] > m.max() / 2 else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"{cv['folds']}-fold accuracy {cv['accuracy']:.3f}", fontsize=9)
    fig.tight_layout()
    p = Path(path)
    with atomic_write(p, "wb") as f:
        fig.savefig(f, format="png")
    plt.close(fig)
    return p
