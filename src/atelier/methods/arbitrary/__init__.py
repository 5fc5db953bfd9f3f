"""Arbitrary style transfer: any style image in one pass (:mod:`.common`: what both methods share). :mod:`.model` is AdaIN (Huang &
Belongie 2017, "Arbitrary Style Transfer in Real-time with Adaptive Instance
Normalization"), :mod:`.adain` loads the shipped decoder and stylizes, :mod:`.train`
trains a decoder. Universal style transfer (Li et al. 2017, "Universal Style Transfer via
Feature Transforms"): :mod:`.wct_model` holds the whitening-colouring transforms and the
multi-level pipeline, :mod:`.wct` loads the shipped inversion decoders and stylizes, and
:mod:`.train_decoders` trains the decoders."""
