"""tutorial_lib: companion library of the course *Generative AI for single-cell perturbation modelling*.

Modules: :mod:`tutorial_lib.config` (fast/full mode, seeds, device), :mod:`tutorial_lib.data`
(Kang 2018: fetch, harmonise, preprocess, split), :mod:`tutorial_lib.models` (scGen, scPRAM,
baselines), :mod:`tutorial_lib.metrics`, :mod:`tutorial_lib.plotting`.
"""

__version__ = "0.1.0"
