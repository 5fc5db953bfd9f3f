"""Style-transfer methods. Each subpackage is one method family and never imports another:
:mod:`~atelier.methods.gatys` (optimization, Gatys et al. 2016),
:mod:`~atelier.methods.feedforward` (Johnson et al. 2016; Dumoulin et al. 2017) and
:mod:`~atelier.methods.arbitrary` (AdaIN, Huang & Belongie 2017; WCT decoders, Li et al. 2017).
A method takes tensors and returns tensors; files and progress display are the interfaces'."""
