"""The default pipeline with the bundled SmolLM2 as it ships, without any fine-tuned adapter:
the base that eval/train_grounded_adapter.sh trains from and that results compare against."""

from ragsys.pipeline import PipelineConfig, default_pipeline


def build() -> PipelineConfig:
    config = default_pipeline()
    assert config.generator is not None
    return config.model_copy(
        update={"name": "hybrid-base", "generator": config.generator.model_copy(update={"adapter": None})}
    )
