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

Content Credentials (C2PA; ``pip install 'atelier[provenance]'``, docs/provenance.md)::

    atelier.stylize("photo.jpg", "starry.jpg", method="adain").save("out.png")
    atelier.sign_image("out.png", content="photo.jpg", styles=["starry.jpg"],
                       style_credits=["Van Gogh, The Starry Night, public domain"])
    atelier.verify_image("out.png").lines()   # valid, untrusted signer (the local certificate)
"""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("atelier")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+local"

# The public names are imported on first use (PEP 562), so that ``import atelier.cli`` (the
# console entry point) starts without torch and can catch a Ctrl-C during start-up.
_LAZY = {
    "evaluate": ".analysis.metrics", "stylize": ".api",
    "load_adain": ".methods.arbitrary.adain", "stylize_adain": ".methods.arbitrary.adain",
    "load_wct": ".methods.arbitrary.wct", "stylize_wct": ".methods.arbitrary.wct",
    "AtelierError": ".core.errors", "InputError": ".core.errors",
    "list_models": ".training.zoo", "model_card": ".training.zoo", "load_model": ".methods.feedforward.apply",
    "load_image": ".io.images", "save_image": ".io.images", "demo_images": ".io.images",
    "GatysConfig": ".methods.gatys.optimize", "GatysStyleTransfer": ".methods.gatys.optimize",
    "Progress": ".methods.gatys.optimize", "StyleTransferInterrupted": ".methods.gatys.optimize",
    "sketch": ".api",  # issue 17: photo to sketch
    "paint": ".api",  # issue 27: painting with brush strokes
    "sign_image": ".io.verify", "verify_image": ".io.verify",  # issue 28: Content Credentials
}


from .core.lazy import lazy_exports  # noqa: E402

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())

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
    "demo_images",
    "save_image",
    "stylize",
    "sketch",
    "paint",
    "sign_image",
    "verify_image",
]
