"""Pretrained feature encoders (VGG16/VGG19 with named layers)."""

from .vgg import (
    VGGEncoder,
    decode_quantized,
    default_layers,
    get_encoder,
    layer_names,
    layer_table,
    load_caffe_vgg19,
    load_torchvision_vgg,
)

__all__ = [
    "VGGEncoder",
    "decode_quantized",
    "default_layers",
    "get_encoder",
    "layer_names",
    "layer_table",
    "load_caffe_vgg19",
    "load_torchvision_vgg",
]
