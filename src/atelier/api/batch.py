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

__all__ = ["ApplyJob", "SketchJob", "EmbedJob"]


@dataclass
class ApplyJob:
    """``atelier apply`` on Ray: a feed-forward model over image files.

    Attributes:
        model: shipped model name or ``.safetensors`` path (visible from every worker).
        metadata: the JSON fields of the single-machine path (version, model, sha256, ...);
            each output also gets ``input`` (its file name), as there.
        device: ``"cpu"``, ``"cuda"``, ``"auto"`` on the worker.
        size, style_weights, preserve_color, precision, batch_size, max_pixels, tileable, engine: as
            for :func:`atelier.methods.feedforward.apply.apply_files`.
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
    tileable: bool = False
    engine: str = "auto"
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
                        metadata=self.metadata, callback=lambda src, e: errors.__setitem__(str(src), e),
                        tileable=self.tileable, engine=self.engine)
        except InputError as e:  # a batch too large for the memory: every pair of it fails with the reason
            return [errors.get(s, str(e)) if s in errors else str(e) for s, _ in pairs]
        return [errors.get(str(pathlib.Path(s))) for s, _ in pairs]


@dataclass
class SketchJob:
    """``atelier sketch`` on Ray: photos to sketches, one photo per task.

    Attributes: ``metadata`` as the single-machine path writes it (each output also gets
    ``input``); the drawing options of :func:`atelier.methods.sketch.draw.sketch_file`.
    The contour network and the VGG encoder are loaded once per worker.
    """

    metadata: dict
    contours: Optional[str] = None
    style: str = "pencil"
    lines_only: bool = False
    detail: float = 0.5
    size: Optional[int] = None
    seed: int = 0
    precision: str = "fp32"
    max_pixels: Optional[int] = None
    device: str = "cpu"
    _models: object = field(default=None, repr=False, compare=False)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_models"] = None
        return state

    def setup(self) -> None:
        from ..encoders.vgg import get_encoder
        from ..methods.sketch.contours import load_contour_net

        if self._models is None:
            self._models = (load_contour_net(self.contours), get_encoder())

    def expected_metadata(self, src: str) -> dict:
        return {**self.metadata, "input": pathlib.Path(src).name}

    def run(self, pairs: Sequence[tuple[str, str]]) -> list[Optional[str]]:
        from ..core.errors import InputError
        from ..methods.sketch.draw import sketch_file

        self.setup()
        net, encoder = self._models
        errors: list[Optional[str]] = []
        for src, dst in pairs:
            try:
                sketch_file(src, dst, style=self.style, lines_only=self.lines_only, detail=self.detail,
                            size=self.size, seed=self.seed, precision=self.precision, max_pixels=self.max_pixels,
                            metadata=self.metadata, net=net, encoder=encoder)
                errors.append(None)
            except (InputError, OSError) as e:
                errors.append(str(e))
        return errors


@dataclass
class EmbedJob:
    """``atelier index --ray``: style embeddings of image files on Ray workers (one
    :class:`~atelier.analysis.embeddings.StyleEmbedder` per worker); the vectors go back to the
    driver, which writes the collection (SQLite) as on one machine.

    Attributes: ``config``, the collection's :class:`~atelier.analysis.embeddings.EmbeddingConfig`.
    """

    config: object
    batch_size: int = 8
    device: str = "cpu"
    _embedder: object = field(default=None, repr=False, compare=False)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_embedder"] = None
        return state

    def setup(self) -> None:
        from ..analysis.embeddings import StyleEmbedder

        if self._embedder is None:
            self._embedder = StyleEmbedder(self.config, device=self.device)

    def map(self, paths: Sequence[str]) -> list[tuple[Optional[bytes], Optional[str]]]:
        """(float32 little-endian vector bytes, None) or (None, one-line reason) per path."""
        self.setup()
        errors: dict[str, str] = {}
        done, vecs = self._embedder.embed_files(list(paths), on_error=lambda p, e: errors.__setitem__(str(p), e.message),
                                                batch=self.batch_size)
        by_path = {str(p): vecs[i].astype("<f4").tobytes() for i, p in enumerate(done)}
        return [(by_path.get(p), errors.get(p) if p not in by_path else None) for p in paths]
