"""Arbitrary style transfer: any style image in one pass. :mod:`.model` is AdaIN (Huang &
Belongie 2017, "Arbitrary Style Transfer in Real-time with Adaptive Instance
Normalization"), :mod:`.adain` loads the shipped decoder and stylizes, :mod:`.train`
trains a decoder; :mod:`.train_decoders` trains the WCT inversion decoders (Li et al.
2017, "Universal Style Transfer via Feature Transforms")."""
