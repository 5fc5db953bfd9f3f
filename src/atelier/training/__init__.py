"""Training: the one shared loop for every trained thing (steps, checkpoints, exact resume,
Ctrl-C, previews, a time budget), data loading, model cards and verified loading.

The loop follows the fast_neural_style recipe of Johnson et al. (2016, "Perceptual Losses
for Real-Time Style Transfer and Super-Resolution"); the per-method trainers
(:class:`~atelier.methods.feedforward.train.FeedForwardTrainer`,
:class:`~atelier.methods.arbitrary.train.AdaINTrainer`, ...) live with their methods.
"""

from ..core.lazy import lazy_exports

# loading a model (cards) never imports the loop
_LAZY = {"CARD_FORMAT": ".cards", "load_trained": ".cards", "output_paths": ".cards", "read_verified": ".cards",
         "IMAGE_EXTENSIONS": ".data", "ImageFolderDataset": ".data", "list_images": ".data", "BaseTrainer": ".loop"}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())

__all__ = ["BaseTrainer", "CARD_FORMAT", "IMAGE_EXTENSIONS", "ImageFolderDataset", "list_images", "load_trained",
           "output_paths", "read_verified"]
