"""Encoders and cross-encoders on OpenVINO, exported once per weights and cached by their digest.

Export (needs torch, once): the sentence-transformers model's whole forward (transformer,
pooling, normalization or the classifier head) is converted by `openvino.convert_model`; for
int8, NNCF's post-training quantization calibrates activations on a fixed text set shipped
with ragsys (`calibration.txt`), so the int8 copy depends on the weights alone. The folder
`<cache>/openvino/<key>/` holds the OpenVINO IR, the tokenizer's `tokenizer.json` and
`meta.json`; `key` hashes the weights' content digest, the kind, precision, sequence length,
calibration text and library versions, so a fine-tuned encoder gets its own copy once and an
unchanged one is never exported twice.

Inference (no torch): texts are tokenized by the `tokenizers` library from the saved
`tokenizer.json`, sorted by length into batches (less padding), and run by the compiled
model; OpenVINO caches the compiled blob too, so a second process starts in milliseconds.
This is what lets `ragsys search` answer without importing torch (~1.6 s on its own).

Example:
    >>> encoder = load_openvino("minilm", "bi", "int8", max_length=256)  # doctest: +SKIP
    >>> encoder.encode(["a passage"], batch_size=64).shape  # doctest: +SKIP
    (1, 384)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from tokenizers import Tokenizer

Kind = Literal["bi", "cross"]
Precision = Literal["f32", "bf16", "int8"]
EXPORT_VERSION = "ov-v1"
META = "meta.json"
MODEL_XML = "model.xml"
TOKENIZER = "tokenizer.json"
CALIBRATION_BATCH = 8


class EncoderExportError(RuntimeError):
    """The model could not be exported to OpenVINO; the message says which and what to use."""


def calibration_texts() -> list[str]:
    text = resources.files("ragsys.encoders").joinpath("calibration.txt").read_text(encoding="utf-8")
    blocks = [b.strip() for b in text.split("\n\n")]
    return [b for b in blocks if b and not b.startswith("#")]


def export_key(digest: str, kind: Kind, int8: bool, max_length: int) -> str:
    """What an exported copy depends on: the weights, what is exported, and who exported it.
    Versions come from package metadata: importing NNCF would import torch (over a second)."""
    from importlib.metadata import version

    calibration = hashlib.sha256("\n\n".join(calibration_texts()).encode()).hexdigest()
    versions = [version("openvino")] + ([version("nncf")] if int8 else [])
    parts = [EXPORT_VERSION, digest, kind, "int8" if int8 else "f32", str(max_length), calibration, *versions]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def load_openvino(name: str, kind: Kind, precision: Precision, max_length: int | None) -> OVEncoder:
    """The cached OpenVINO copy of model `name` (exported now if missing), compiled; `max_length`
    None keeps the model's own truncation length."""
    from ragsys.models import cache_dir, folder_digest, local_folder

    folder = local_folder(name)
    key = export_key(folder_digest(folder), kind, precision == "int8", max_length or 0)
    out = cache_dir() / "openvino" / key
    if not (out / META).is_file():
        from ragsys.encoders.backend import note

        note(f"exporting {name!r} to OpenVINO ({'int8' if precision == 'int8' else 'fp32'}, once): {out}")
        export(name, kind, precision == "int8", max_length, out)
    return OVEncoder(out, precision)


def export(name: str, kind: Kind, int8: bool, max_length: int | None, out: Path) -> None:
    """Convert (and for int8, quantize) the model into `out`, atomically."""
    import openvino as ov

    from ragsys.fsutil import atomic_dir

    model, wrapper, inputs = _torch_model(name, kind, max_length)
    max_length = int(model.max_seq_length if kind == "bi" else model.max_length)
    calibration = _calibration_inputs(model, kind, inputs)
    example = {k: v for k, v in calibration[0].items()}
    try:
        converted = ov.convert_model(wrapper, example_input=_as_torch(example))
    except Exception as e:  # OpenVINO's frontend raises several unrelated types
        raise EncoderExportError(f"OpenVINO could not convert {name!r}: {e}; use backend='torch'") from e
    for port, input_name in zip(converted.inputs, inputs, strict=True):
        port.get_tensor().set_names({input_name})  # traced from *tensors: name them as the tokenizer does
    for port, input_name in zip(converted.inputs, inputs, strict=True):
        port.get_tensor().set_names({input_name})  # traced from *tensors: name them as the tokenizer does
    if int8:
        import nncf

        with contextlib.redirect_stdout(sys.stderr):  # NNCF's progress bars: stdout is for results
            converted = nncf.quantize(
                converted,
                nncf.Dataset(calibration),
                model_type=nncf.ModelType.TRANSFORMER,
                subset_size=len(calibration),
            )
    with atomic_dir(out) as tmp:
        ov.save_model(converted, tmp / MODEL_XML)
        _save_tokenizer(model, kind, max_length, tmp / TOKENIZER)
        meta = {"name": name, "kind": kind, "int8": int8, "max_length": max_length, "inputs": inputs}
        (tmp / META).write_text(json.dumps(meta, indent=1), encoding="utf-8")


def _torch_model(name: str, kind: Kind, max_length: int | None) -> tuple[Any, Any, list[str]]:
    """The sentence-transformers model, a module with positional tensor inputs around its whole
    forward (what convert_model traces), and the input names its tokenizer produces."""
    import torch

    from ragsys.models import load_cross_encoder, load_sentence_transformer

    if kind == "bi":
        model: Any = load_sentence_transformer(name, device="cpu", max_seq_length=max_length)
        output, probe = "sentence_embedding", model.preprocess(["a b"])
    else:
        model = load_cross_encoder(name, max_length=max_length or 512, device="cpu")
        output, probe = "scores", model.preprocess([("a", "b")])
    # Never past the position table: a longer input would index outside it.
    positions = getattr(model[0].auto_model.config, "max_position_embeddings", None)
    if isinstance(positions, int):
        if kind == "bi":
            model.max_seq_length = min(model.max_seq_length, positions)
        else:
            model.max_length = min(model.max_length, positions)
    inputs = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in probe]

    class Forward(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            features: dict[str, Any] = dict(zip(inputs, tensors, strict=True)) | {"modality": "text"}
            out: torch.Tensor = self.inner(features)[output]
            return out

    return model, Forward().eval(), inputs


def _calibration_inputs(model: Any, kind: Kind, inputs: list[str]) -> list[dict[str, npt.NDArray[np.int64]]]:
    texts = calibration_texts()
    questions = [t for t in texts if t.endswith("?")] or texts
    items: list[Any] = (
        texts if kind == "bi" else [(questions[i % len(questions)], t) for i, t in enumerate(texts)]
    )
    batches = []
    for i in range(0, len(items), CALIBRATION_BATCH):
        features = model.preprocess(items[i : i + CALIBRATION_BATCH])
        batches.append({k: features[k].numpy().astype(np.int64) for k in inputs})
    return batches


def _as_torch(features: dict[str, npt.NDArray[np.int64]]) -> tuple[Any, ...]:
    import torch

    return tuple(torch.from_numpy(v) for v in features.values())


def _save_tokenizer(model: Any, kind: Kind, max_length: int, path: Path) -> None:
    """The fast tokenizer's `tokenizer.json`; checked to tokenize exactly as the model does."""
    tokenizer = model.tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
    if backend is None:
        raise EncoderExportError("the model's tokenizer is not a fast tokenizer; use backend='torch'")
    backend.save(str(path))
    probe: list[Any] = calibration_texts()[:16]
    if kind == "cross":
        probe = [(probe[-1], t) for t in probe[:-1]]
    expected = model.preprocess(probe)["input_ids"].numpy()
    got = _tokenize(_load_tokenizer(path, max_length), probe)["input_ids"]
    if expected.shape != got.shape or not np.array_equal(expected, got):
        raise EncoderExportError("the saved tokenizer does not reproduce the model's; use backend='torch'")


def _load_tokenizer(path: Path, max_length: int) -> Tokenizer:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(max_length=max_length)
    padding = tokenizer.padding or {}
    tokenizer.enable_padding(pad_id=padding.get("pad_id", 0), pad_token=padding.get("pad_token", "[PAD]"))
    return tokenizer


def _tokenize(tokenizer: Tokenizer, items: Sequence[Any]) -> dict[str, npt.NDArray[np.int64]]:
    encodings = tokenizer.encode_batch(list(items))
    return {
        "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
    }


class OVEncoder:
    """A compiled OpenVINO copy of a bi-encoder or cross-encoder, with its tokenizer.

    It answers the calls ragsys makes of sentence-transformers models: `encode` (bi-encoders),
    `predict` (cross-encoders; raw logits, the only activation the reranker asks for) and
    `get_embedding_dimension`.
    """

    def __init__(self, folder: Path, precision: Precision) -> None:
        import openvino as ov

        from ragsys.models import cache_dir

        meta = json.loads((folder / META).read_text(encoding="utf-8"))
        self.kind: Kind = meta["kind"]
        self._inputs: list[str] = meta["inputs"]
        self._tokenizer = _load_tokenizer(folder / TOKENIZER, int(meta["max_length"]))
        core = ov.Core()
        capabilities = set(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
        hint = "bf16" if precision in ("bf16", "int8") and "BF16" in capabilities else "f32"
        core.set_property({"CACHE_DIR": str(cache_dir() / "openvino-compiled")})
        self._model = core.compile_model(
            str(folder / MODEL_XML),
            "CPU",
            {
                "INFERENCE_PRECISION_HINT": hint,
                "INFERENCE_NUM_THREADS": _cpus(),
                "PERFORMANCE_HINT": "LATENCY",
            },
        )
        self.precision = precision
        self._dim = int(self._model.outputs[0].get_partial_shape()[-1].get_length())

    def get_embedding_dimension(self) -> int:
        return self._dim

    def encode(self, texts: Sequence[str], batch_size: int = 64, **_: Any) -> npt.NDArray[np.float32]:
        return self._run(list(texts), batch_size)

    def predict(
        self,
        inputs: Sequence[tuple[str, str]],
        *,
        batch_size: int = 32,
        activation_fn: Callable[[Any], Any] | None = None,
        **_: Any,
    ) -> npt.NDArray[np.float32]:
        scores = self._run(list(inputs), batch_size)
        return np.asarray(activation_fn(scores)) if activation_fn is not None else scores

    def _run(self, items: list[Any], batch_size: int) -> npt.NDArray[np.float32]:
        if not items:
            return np.zeros((0, self._dim), dtype=np.float32)
        lengths = [len(i) if isinstance(i, str) else len(i[0]) + len(i[1]) for i in items]
        order = sorted(range(len(items)), key=lambda i: -lengths[i])  # as sentence-transformers does
        out = np.zeros((len(items), self._dim), dtype=np.float32)
        for start in range(0, len(items), batch_size):
            rows = order[start : start + batch_size]
            features = _tokenize(self._tokenizer, [items[i] for i in rows])
            result = self._model([features[k] for k in self._inputs])  # in the traced order
            out[rows] = np.asarray(result[0], dtype=np.float32).reshape(len(rows), self._dim)
        return out


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on macOS or Windows
        return os.cpu_count() or 1
