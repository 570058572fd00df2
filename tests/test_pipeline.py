from __future__ import annotations

from pathlib import Path

import pytest

from ragsys.pipeline import PipelineConfig, PipelineError, default_pipeline, load_pipeline
from ragsys.rerank import CrossEncoderConfig
from ragsys.retrieve.dense import DenseConfig
from tests.fixtures.paths import REPO_ROOT

PIPELINES = REPO_ROOT / "pipelines"


@pytest.mark.parametrize("name", ["bm25", "dense", "hybrid", "hybrid_rerank", "mixture"])
def test_shipped_pipelines_round_trip_through_yaml(name: str, tmp_path: Path) -> None:
    config = load_pipeline(PIPELINES / f"{name}.py")
    config.to_yaml(tmp_path / "p.yaml")
    assert PipelineConfig.from_yaml(tmp_path / "p.yaml") == config


def test_default_is_the_hybrid_file() -> None:
    assert load_pipeline(None) == load_pipeline(PIPELINES / "hybrid.py") == default_pipeline()
    assert default_pipeline().reranker is None


def test_save_bundles_local_weights_and_load_restores_them(tmp_path: Path, tiny_st_path: Path) -> None:
    config = PipelineConfig(
        retrievers=(DenseConfig(model=str(tiny_st_path)), DenseConfig(model="minilm")),
        reranker=CrossEncoderConfig(model=str(tiny_st_path)),
    )
    out = tmp_path / "saved"
    config.save(out)
    text = (out / "pipeline.yaml").read_text()
    assert str(tiny_st_path) not in text and "models/" in text  # relative, inside the directory
    copied = next((out / "models").iterdir())
    assert (copied / "config.json").exists()
    moved = tmp_path / "moved"
    out.rename(moved)  # self-contained: works from anywhere
    loaded = load_pipeline(moved)
    first = loaded.retrievers[0]
    assert (
        isinstance(first, DenseConfig) and Path(first.model).resolve().parent == (moved / "models").resolve()
    )
    assert isinstance(loaded.retrievers[1], DenseConfig) and loaded.retrievers[1].model == "minilm"
    assert loaded.reranker is not None and loaded.reranker.model == first.model


def test_identity_follows_weight_contents_not_folders_or_name(tmp_path: Path, tiny_st_path: Path) -> None:
    import shutil

    config = PipelineConfig(name="a", retrievers=(DenseConfig(model=str(tiny_st_path)),))
    config.save(tmp_path / "one")
    config.model_copy(update={"name": "b"}).save(tmp_path / "two")
    one, two = PipelineConfig.load(tmp_path / "one"), PipelineConfig.load(tmp_path / "two")
    assert one.retrievers != two.retrievers and one.identity() == two.identity()
    assert one.model_copy(update={"top_k": 3}).identity() != one.identity()
    changed = tmp_path / "changed"
    shutil.copytree(tiny_st_path, changed)
    (changed / "config.json").write_text((changed / "config.json").read_text() + " ")
    other = PipelineConfig(retrievers=(DenseConfig(model=str(changed)),))
    assert other.identity() != one.identity()
    assert (
        '"model": "minilm"' in PipelineConfig(retrievers=(DenseConfig(model="minilm"),)).identity()
    )  # an alias


def test_pipeline_version_hashes_the_whole_config() -> None:
    from ragsys.pipeline import PipelineConfig
    from ragsys.retrieve.bm25 import BM25Config

    base = PipelineConfig(name="bm25", retrievers=(BM25Config(),))
    v = base.version()
    assert v.startswith("bm25-") and len(v) == len("bm25-") + 12
    assert PipelineConfig(name="bm25", retrievers=(BM25Config(),)).version() == v
    assert base.model_copy(update={"top_k": 3}).version() != v


def test_unknown_component_kind_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text(
        "retrievers:\n- kind: os.system\n  model: rm -rf /\n", encoding="utf-8"
    )
    with pytest.raises(PipelineError, match="pipeline.yaml"):
        load_pipeline(tmp_path)


def test_py_files_expose_build_or_config(tmp_path: Path) -> None:
    good = tmp_path / "good.py"
    good.write_text(
        "from ragsys.pipeline import PipelineConfig\nfrom ragsys.retrieve.bm25 import BM25Config\n"
        "def build():\n    return PipelineConfig(name='x', retrievers=(BM25Config(),))\n"
    )
    assert load_pipeline(good).name == "x"
    bad = tmp_path / "bad.py"
    bad.write_text("X = 1\n")
    with pytest.raises(PipelineError, match="CONFIG"):
        load_pipeline(bad)
    with pytest.raises(PipelineError, match="not found"):
        load_pipeline(tmp_path / "missing.py")
    with pytest.raises(PipelineError, match="pipeline.yaml"):
        load_pipeline(tmp_path)


def test_the_default_generator_is_smollm2_with_the_bundled_grounded_adapter() -> None:
    from ragsys.models import adapter_card, resolve_adapter

    generator = default_pipeline().generator
    assert generator is not None and generator.adapter == "smollm2-grounded"
    folder = resolve_adapter(generator.adapter)
    assert (folder / "adapter_config.json").is_file() and (folder / "adapter_model.safetensors").is_file()
    card = adapter_card(generator.adapter)
    assert card is not None and "never the 10-Q questions or the demo corpus" in str(card["trained_on"])
    base = load_pipeline(PIPELINES / "hybrid_base.py").generator
    assert base is not None and base.adapter is None and base.model == generator.model
