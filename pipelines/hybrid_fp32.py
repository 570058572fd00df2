"""The default pipeline on the fp32 runtimes: MiniLM in torch fp32, SmolLM2 in transformers fp32.

The same components as pipelines/hybrid.py without the fast CPU backends (OpenVINO int8
encoders, llama.cpp Q8_0 generation): the reference the fast path is measured against
(eval/pubmedqa_e2e.sh, eval/bench/*), and a choice for bit-for-bit fp32 results. It needs its
own vectors (the encoder backend is part of the index's vector key): index with it too.
"""

from ragsys.pipeline import PipelineConfig, default_pipeline
from ragsys.retrieve.dense import DenseConfig


def build() -> PipelineConfig:
    config = default_pipeline()
    assert config.generator is not None
    return config.model_copy(
        update={
            "name": "hybrid-fp32",
            "retrievers": tuple(
                r.model_copy(update={"backend": "torch", "query_backend": "torch"})
                if isinstance(r, DenseConfig)
                else r
                for r in config.retrievers
            ),
            "generator": config.generator.model_copy(update={"backend": "transformers"}),
        }
    )
