"""Encoder runtimes on tiny random models: every backend ranks as torch does, exports are cached
by weight digest, and a machine that cannot run one falls back to torch with a note."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from ragsys.encoders import backend as backends
from ragsys.encoders import load_encoder, openvino
from ragsys.encoders.backend import resolve_backend
from ragsys.models import load_cross_encoder, load_sentence_transformer
from tests.fixtures.tiny_models import CORPUS, make_tiny_cross_encoder

pytest.importorskip("openvino", reason="the [fast] extra is not installed")
QUERY = "does aspirin reduce heart attack risk?"


@pytest.fixture(scope="module")
def tiny_ce(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-ce"))


@pytest.fixture()
def exports(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts exports (a cached copy must not be made twice)."""
    calls: list[str] = []
    real = openvino.export

    def counting(name: str, *args: object, **kwargs: object) -> None:
        calls.append(name)
        real(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(openvino, "export", counting)
    return calls


def _unique_copy(src: Path, dest: Path, scale: float) -> Path:
    """A copy with its word embeddings scaled: new content, so a new digest (nothing cached for it)."""
    if src != dest:
        shutil.copytree(src, dest)
    weights = dest / "model.safetensors"
    tensors = load_file(weights)
    name = next(k for k in tensors if k.endswith("word_embeddings.weight"))
    tensors[name] = tensors[name] * scale
    save_file(tensors, weights)
    return dest


def _ranks(vectors: np.ndarray) -> list[int]:
    return [int(i) for i in np.argsort(-(vectors[1:] @ vectors[0]), kind="stable")]


@pytest.mark.parametrize("backend", ["openvino", "openvino-int8", "torch-bf16"])
def test_bi_encoders_embed_as_torch_does(tiny_st_path: Path, backend: str) -> None:
    texts = [QUERY, *CORPUS[:12]]
    reference = load_sentence_transformer(str(tiny_st_path), device="cpu").encode(texts)
    reference = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    model, resolved = load_encoder(str(tiny_st_path), "bi", backend, None)  # type: ignore[arg-type]
    fast = np.asarray(model.encode(texts, batch_size=5))
    fast = fast / np.linalg.norm(fast, axis=1, keepdims=True)
    cosine = (fast * reference).sum(axis=1)
    assert resolved == resolve_backend(backend)  # type: ignore[arg-type]
    assert cosine.min() > (0.999 if backend == "openvino" else 0.97)  # int8 and bf16 round
    if backend == "openvino":
        assert _ranks(fast) == _ranks(reference)


def test_cross_encoder_scores_as_torch_does(tiny_ce: Path) -> None:
    pairs = [(QUERY, t) for t in CORPUS[:10]]
    reference = load_cross_encoder(str(tiny_ce), device="cpu").predict(pairs, activation_fn=lambda x: x)
    model, resolved = load_encoder(str(tiny_ce), "cross", "openvino", None)
    scores = np.asarray(model.predict(pairs, batch_size=4, activation_fn=None)).reshape(-1)
    assert resolved == "openvino"
    np.testing.assert_allclose(scores, np.asarray(reference).reshape(-1), atol=1e-4)


def test_an_export_is_made_once_and_a_changed_model_gets_its_own(
    tiny_st_path: Path, tmp_path: Path, exports: list[str]
) -> None:
    copy = _unique_copy(tiny_st_path, tmp_path / "encoder", 2.0)
    first = load_encoder(str(copy), "bi", "openvino-int8", None)[0].encode(["a b c"])
    load_encoder(str(copy), "bi", "openvino-int8", None)
    assert exports == [str(copy)]  # the second load reused the cached copy
    _unique_copy(copy, copy, 1.5)  # a "fine-tuned" encoder saved over the same path
    second = load_encoder(str(copy), "bi", "openvino-int8", None)[0].encode(["a b c"])
    assert exports == [str(copy), str(copy)] and not np.allclose(first, second)


def test_auto_prefers_openvino_int8_where_the_cpu_has_int8_dot_products(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(backends, "cpu_flags", lambda: frozenset({"avx2", "avx512_vnni", "avx512_bf16"}))
    assert resolve_backend("auto") == "openvino-int8"
    monkeypatch.setattr(backends, "cpu_flags", lambda: frozenset({"avx2", "avx512_bf16"}))
    assert resolve_backend("auto") == "openvino-bf16"
    monkeypatch.setattr(backends, "cpu_flags", lambda: frozenset({"avx2"}))
    assert resolve_backend("auto") == "openvino"
    assert resolve_backend("openvino-bf16") == "openvino"  # no bf16 here: runs in fp32


def test_without_openvino_every_choice_falls_back_to_torch(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tiny_st_path: Path
) -> None:
    monkeypatch.setattr(backends, "openvino_installed", lambda int8=False: False)
    monkeypatch.setattr(backends, "cpu_flags", lambda: frozenset({"avx2"}))
    backends.note.cache_clear()
    assert resolve_backend("auto") == "torch"
    assert resolve_backend("openvino-int8") == "torch"
    assert "ragsys[fast]" in capsys.readouterr().err
    model, resolved = load_encoder(str(tiny_st_path), "bi", "openvino-int8", None)
    assert resolved == "torch" and model.encode(["a b"]).shape[0] == 1


def test_a_model_openvino_cannot_export_runs_on_torch(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tiny_st_path: Path, tmp_path: Path
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise openvino.EncoderExportError("OpenVINO could not convert it")

    monkeypatch.setattr(openvino, "export", broken)
    copy = _unique_copy(tiny_st_path, tmp_path / "enc", 0.5)
    backends.note.cache_clear()
    model, resolved = load_encoder(str(copy), "bi", "openvino", None)
    assert resolved == "torch" and "runs on torch" in capsys.readouterr().err
    assert model.encode(["a b"]).shape[0] == 1


def test_the_calibration_text_is_varied_and_has_questions() -> None:
    texts = openvino.calibration_texts()
    assert len(texts) >= 50 and sum(t.endswith("?") for t in texts) >= 15
    assert not any(t.startswith("#") for t in texts)
