"""ragsys: retrieval-augmented generation as a system of components, tuned jointly."""

__version__ = "0.1.0"
