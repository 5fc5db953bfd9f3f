"""Pretrained encoders: VGG19/VGG16 (Simonyan & Zisserman 2014) returning named layers
(``relu1_1`` ... ``relu5_1``), with the original Caffe VGG19 weights by default and a
small registry of weight sources (:data:`~atelier.encoders.vgg.ENCODERS`)."""

from .vgg import (ENCODERS, VGGEncoder, decode_quantized, default_layers, get_encoder, layer_names, layer_table,
                  load_caffe_vgg19, load_torchvision_vgg)

__all__ = ["ENCODERS", "VGGEncoder", "decode_quantized", "default_layers", "get_encoder", "layer_names",
           "layer_table", "load_caffe_vgg19", "load_torchvision_vgg"]
