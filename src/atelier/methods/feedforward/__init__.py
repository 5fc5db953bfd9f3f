"""Feed-forward style networks: one pass per image (Johnson et al. 2016, "Perceptual Losses
for Real-Time Style Transfer and Super-Resolution"; several styles in one network after
Dumoulin et al. 2017). :mod:`.apply` runs a trained network, :mod:`.train` trains one,
:mod:`.export` writes ONNX."""
