"""The batch jobs that :func:`atelier.api.ray_batch.run_batch` runs on Ray workers: one per
command (``apply``, ``sketch``, ``stylize``). Each calls the same library function as the
single-machine command, so the outputs carry the same names, formats and metadata.

A job is built on the driver (cheap: paths and options only), pickled to every worker, and
loads its model in :meth:`setup` once per worker.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass, field
from typing import Optional, Sequence

__all__ = ["ApplyJob"]


@dataclass
class ApplyJob:
    """``atelier apply`` on Ray: a feed-forward model over image files.

    Attributes:
        model: shipped model name or ``.safetensors`` path (visible from every worker).
        metadata: the JSON fields of the single-machine path (version, model, sha256, ...);
            each output also gets ``input`` (its file name), as there.
        device: ``"cpu"``, ``"cuda"``, ``"auto"`` on the worker.
        size, style_weights, preserve_color, precision, batch_size, max_pixels: as for
            :func:`atelier.methods.feedforward.apply.apply_files`.
    """

    model: str
    metadata: dict
    device: str = "cpu"
    size: Optional[int] = None
    style_weights: object = None
    preserve_color: str = "none"
    precision: str = "auto"
    batch_size: int = 4
    max_pixels: Optional[int] = None
    _net: object = field(default=None, repr=False, compare=False)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_net"] = None  # never ship a loaded model: each worker loads its own
        return state

    def setup(self) -> None:
        from ..methods.feedforward.apply import load_model

        if self._net is None:
            self._net = load_model(self.model, device=self.device)

    def expected_metadata(self, src: str) -> dict:
        from ..methods.feedforward.apply import output_metadata

        return output_metadata(self.metadata, src)

    def run(self, pairs: Sequence[tuple[str, str]]) -> list[Optional[str]]:
        from ..core.errors import InputError
        from ..methods.feedforward.apply import apply_files

        self.setup()
        errors: dict[str, Optional[str]] = {}
        try:
            apply_files(self._net, [(pathlib.Path(s), pathlib.Path(d)) for s, d in pairs], size=self.size,
                        style_weights=self.style_weights, preserve_color=self.preserve_color,
                        precision=self.precision, batch_size=self.batch_size, max_pixels=self.max_pixels,
                        metadata=self.metadata, callback=lambda src, e: errors.__setitem__(str(src), e))
        except InputError as e:  # a batch too large for the memory: every pair of it fails with the reason
            return [errors.get(s, str(e)) if s in errors else str(e) for s, _ in pairs]
        return [errors.get(str(pathlib.Path(s))) for s, _ in pairs]
