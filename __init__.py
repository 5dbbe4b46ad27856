"""facetvlp: domain-specialised vision-language pre-training.

`facetvlp.core` is domain-agnostic; `facetvlp.domains.*` stand on it; `facetvlp.cli` is the front
door that may import everything.
"""

__version__ = "0.1.0"
