"""The bundled all-MiniLM-L6-v2 bi-encoder alone, exact inner-product search."""

from ragsys.generate import GeneratorConfig
from ragsys.pipeline import PipelineConfig
from ragsys.retrieve.dense import DenseConfig

CONFIG = PipelineConfig(name="dense", retrievers=(DenseConfig(model="minilm"),), generator=GeneratorConfig())
