"""Companion library of the course *Generative AI for single-cell perturbation modelling*."""

__version__ = "0.1.0"
