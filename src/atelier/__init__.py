"""Atelier: neural style transfer for artists, designers and researchers.

Quick start::

    import atelier
    out = atelier.stylize("photo.jpg", "painting.jpg", size=512)
    out.save("stylized.png")

Lower level: :class:`GatysStyleTransfer` works on tensors (float32 (1, 3, H, W),
RGB in [0, 1]) and reports every iteration to a callback.

Feed-forward models (one pass per image)::

    atelier.list_models()                     # shipped models, e.g. ["great_wave", "multi10", ...]
    net = atelier.load_model("starry_night")  # a torch.nn.Module
    out = net(images)                         # (N, 3, H, W) in [0, 1] -> same shape and range

Arbitrary styles in one pass (AdaIN)::

    model = atelier.load_adain()                          # the shipped decoder
    style = model.encode_style(atelier.load_image("painting.jpg", size=512))   # reusable
    out = model(atelier.load_image("photo.jpg"), style, alpha=0.8)
"""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("atelier")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+local"

from .metrics import evaluate
from .api import stylize
from .methods.arbitrary.adain import load_adain, stylize_adain
from .methods.arbitrary.wct import load_wct, stylize_wct
from .core.errors import AtelierError, InputError
from .zoo import list_models, model_card
from .methods.feedforward.apply import load_model
from .core.io import load_image, save_image
from .methods.gatys.optimize import GatysConfig, GatysStyleTransfer, Progress, StyleTransferInterrupted

__all__ = [
    "AtelierError",
    "GatysConfig",
    "GatysStyleTransfer",
    "InputError",
    "Progress",
    "StyleTransferInterrupted",
    "__version__",
    "evaluate",
    "list_models",
    "load_adain",
    "stylize_adain",
    "load_wct",
    "stylize_wct",
    "load_model",
    "model_card",
    "load_image",
    "save_image",
    "stylize",
]
