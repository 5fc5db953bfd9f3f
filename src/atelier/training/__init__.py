"""Training of feed-forward style networks (Johnson et al. 2016; Dumoulin et al. 2017).

* :class:`TrainConfig` and :class:`FeedForwardTrainer`: train a
  :class:`~atelier.networks.TransformerNet` on a folder of photos against one or more
  style images, with checkpoints, resume and a model card.
* :func:`load_trained`: load the result, verified against its model card's sha256.
* :class:`ImageFolderDataset`: deterministic random crops of a folder of photos.
"""

from .data import IMAGE_EXTENSIONS, ImageFolderDataset, list_images
from .trainer import FeedForwardTrainer, TrainConfig, load_trained, output_paths

__all__ = [
    "IMAGE_EXTENSIONS",
    "FeedForwardTrainer",
    "ImageFolderDataset",
    "TrainConfig",
    "list_images",
    "load_trained",
    "output_paths",
]
