"""The default pipeline with scoping: each question searches only the documents whose company,
period or form it names (ragsys.scope), falling back to the whole index when it names none."""

from ragsys.pipeline import PipelineConfig, default_pipeline
from ragsys.scope import ScopeConfig


def build() -> PipelineConfig:
    return default_pipeline().model_copy(update={"name": "hybrid-scoped", "scoping": ScopeConfig()})
