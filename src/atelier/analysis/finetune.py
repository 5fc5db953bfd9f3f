"""Does fine-tuning the last VGG block help the style classifier? (``atelier classify train --fine-tune``)

The linear probe of :mod:`.classify` keeps the encoder frozen. Here the first convolution of
VGG19's last block (``conv5_1``, from which ``relu5_1``, the deepest layer of the style
statistics, comes) is trained together with a linear head, in stratified k-fold
cross-validation, and compared on the *same folds and the same inputs* with the linear probe
(standardized logistic regression, as :func:`.classify.cross_validate`) on the frozen statistics.

Inputs: each image resized to ``size`` x ``size`` (224 by default), encoded once by the frozen
encoder up to ``pool4``; the statistics of ``relu1_1 .. relu4_1`` (per-channel mean and standard
deviation, square-rooted, each layer L2-normalized, as :mod:`.embeddings` makes them, without the
projection) stay fixed, and those of ``relu5_1 = relu(conv5_1(pool4))`` are recomputed with the
trainable convolution at every step. Features are standardized with the training split's mean and
deviation (taken before training), then a linear layer gives the logits; cross-entropy, Adam
(convolution ``lr``, head ``head_lr`` with weight decay), ``epochs`` passes in shuffled batches,
seeded. Only blocks 1-4 are frozen: the rest of block 5 (``conv5_2 .. conv5_4``) is not used by
the style statistics, so training it would change nothing.

The exported classifier stays the linear probe; this measures whether fine-tuning is worth it
(``docs/benchmarks.md``).
"""

from __future__ import annotations

import copy
import time
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..io import images as img
from ..core.errors import InputError
from ..encoders.vgg import get_encoder

__all__ = ["finetune_cross_validate"]

FROZEN_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


def _stats(f: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, 2C): per-channel mean and std, square-rooted, L2-normalized together."""
    flat = f.flatten(2)
    s = torch.cat([flat.mean(2), flat.var(2, unbiased=False).add(1e-8).sqrt()], 1)
    s = s.clamp_min(0).add(1e-8).sqrt()
    return s / s.norm(dim=1, keepdim=True).clamp_min(1e-12)


def finetune_cross_validate(files: Sequence, labels: Sequence[str], folds: int = 5, seed: int = 0, epochs: int = 8,
                            lr: float = 1e-5, head_lr: float = 3e-3, size: int = 224, batch: int = 8,
                            time_budget: Optional[float] = None, on_error: Optional[Callable] = None,
                            progress: Optional[Callable[[str, int, int], None]] = None) -> dict:
    """Stratified k-fold accuracy of conv5_1 fine-tuned with a linear head, against the linear probe
    on the same folds and the same frozen statistics.

    Args:
        files, labels: the images and their labels (as :func:`.classify.labelled_files` gives them).
        folds: folds of the stratified cross-validation (seeded with ``seed``).
        epochs: training passes per fold; lr / head_lr: Adam step sizes of the convolution / the head.
        size: side of the square the images are resized to (px).
        time_budget: seconds for the whole run; the folds' training stops early when it is spent
            (``stopped_early`` in the result), and the folds left are scored as they are.
        on_error: ``on_error(path, InputError)`` for an unreadable file (default: raise).
        progress: ``progress(stage, done, total)`` with stage ``encoding`` or ``fold N``.

    Returns:
        dict with ``folds``, ``fine_tuned``, ``linear_probe`` and ``head_only`` (the same head and
        schedule on the frozen statistics: the control for the optimizer; each ``accuracy``,
        ``accuracy_std``, ``fold_accuracy``), ``images``, ``epochs``, ``seconds``, ``stopped_early``,
        ``settings``.

    Raises:
        InputError: a label with fewer readable images than ``folds``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from .classify import check_folds

    t0 = time.perf_counter()
    enc = get_encoder(None, device="cpu")
    frozen, pool4, y = [], [], []
    for i, (p, lab) in enumerate(zip(files, labels)):
        try:
            x = img.resize_to(img.load_image(p, size=max(size, 64) * 2), size, size)
        except InputError as e:
            if on_error is None:
                raise
            on_error(p, e)
            continue
        with torch.no_grad():
            f = enc(x, (*FROZEN_LAYERS, "pool4"))
        frozen.append(torch.cat([_stats(f[n]) for n in FROZEN_LAYERS], 1)[0])
        pool4.append(f["pool4"][0])
        y.append(lab)
        if progress:
            progress("encoding", i + 1, len(files))
    check_folds(y, folds)
    classes = sorted(set(y))
    target = torch.tensor([classes.index(v) for v in y])
    frozen_t, pool4_t = torch.stack(frozen), torch.stack(pool4)
    conv0 = enc.convs["conv5_1"]

    def features(conv, idx):
        s5 = _stats(F.relu(conv(pool4_t[idx])))
        return torch.cat([frozen_t[idx], s5], 1) / np.sqrt(len(FROZEN_LAYERS) + 1)

    fine, probe, frozen_head, stopped = [], [], [], False
    split = StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), np.asarray(y))
    for k, (train, test) in enumerate(split):
        train_t, test_t = torch.as_tensor(train), torch.as_tensor(test)
        with torch.no_grad():
            start = features(conv0, torch.arange(len(y))).numpy()
        lp = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000, random_state=seed))
        lp.fit(start[train], np.asarray(y)[train])
        probe.append(float((lp.predict(start[test]) == np.asarray(y)[test]).mean()))
        mu = torch.as_tensor(start[train].mean(0), dtype=torch.float32)
        sd = torch.as_tensor(start[train].std(0) + 1e-6, dtype=torch.float32)
        conv = copy.deepcopy(conv0).requires_grad_(True)
        head = torch.nn.Linear(start.shape[1], len(classes))
        torch.nn.init.zeros_(head.weight)
        torch.nn.init.zeros_(head.bias)
        opt = torch.optim.Adam([{"params": conv.parameters(), "lr": lr},
                                {"params": head.parameters(), "lr": head_lr, "weight_decay": 1e-3}])
        # the control: the same head, optimizer and schedule on the frozen statistics
        head0 = torch.nn.Linear(start.shape[1], len(classes))
        torch.nn.init.zeros_(head0.weight)
        torch.nn.init.zeros_(head0.bias)
        opt0 = torch.optim.Adam(head0.parameters(), lr=head_lr, weight_decay=1e-3)
        z0 = (torch.as_tensor(start, dtype=torch.float32) - mu) / sd
        g0 = torch.Generator().manual_seed(seed * 1000 + k)
        for epoch in range(epochs):
            order = train_t[torch.randperm(len(train_t), generator=g0)]
            for b in range(0, len(order), batch):
                idx = order[b:b + batch]
                loss = F.cross_entropy(head0(z0[idx]), target[idx])
                opt0.zero_grad()
                loss.backward()
                opt0.step()
        with torch.no_grad():
            frozen_head.append(float((head0(z0[test_t]).argmax(1) == target[test_t]).float().mean()))
        g = torch.Generator().manual_seed(seed * 1000 + k)
        for epoch in range(epochs):
            if time_budget is not None and time.perf_counter() - t0 > time_budget:
                stopped = True
                break
            order = train_t[torch.randperm(len(train_t), generator=g)]
            for b in range(0, len(order), batch):
                idx = order[b:b + batch]
                loss = F.cross_entropy(head((features(conv, idx) - mu) / sd), target[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            if progress:
                progress(f"fold {k + 1}", epoch + 1, epochs)
        with torch.no_grad():
            pred = head((features(conv, test_t) - mu) / sd).argmax(1)
        fine.append(float((pred == target[test_t]).float().mean()))

    def summary(accs):
        return {"accuracy": float(np.mean(accs)), "accuracy_std": float(np.std(accs)), "fold_accuracy": accs}

    return {"folds": folds, "fine_tuned": summary(fine), "linear_probe": summary(probe),
            "head_only": summary(frozen_head), "images": len(y),
            "classes": classes, "epochs": epochs, "seconds": time.perf_counter() - t0, "stopped_early": stopped,
            "settings": {"size": size, "lr": lr, "head_lr": head_lr, "batch": batch, "seed": seed,
                         "trained": "conv5_1 + linear head; blocks 1-4 frozen",
                         "inputs": "sqrt mean/std of relu1_1..relu5_1, per-layer L2 (no projection), standardized"}}
