"""Fast runtimes for encoders and cross-encoders: OpenVINO int8/bf16, torch bf16, or plain torch.

`backend` resolves a config's choice on this machine; `openvino` exports and runs the cached
OpenVINO copy; `autocast` runs the torch model in bf16. `load_encoder` is what dense retrieval,
indexing and reranking call: the model on the resolved backend and that backend's name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ragsys.encoders.backend import EncoderBackend, Resolved, resolve_backend

if TYPE_CHECKING:
    from ragsys.encoders.openvino import Precision

__all__ = ["EncoderBackend", "Resolved", "load_encoder", "resolve_backend"]


def load_encoder(
    name: str, kind: str, backend: EncoderBackend, max_length: int | None
) -> tuple[Any, Resolved]:
    """Model `name` as a bi-encoder (`kind="bi"`) or cross-encoder (`"cross"`) on `backend`.

    An OpenVINO export that fails (an architecture it cannot convert, a tokenizer it cannot
    reproduce) falls back to torch with a note, never an error: the model still runs.
    """
    resolved = resolve_backend(backend)
    if resolved.startswith("openvino"):
        from ragsys.encoders.backend import note
        from ragsys.encoders.openvino import EncoderExportError, load_openvino

        precision: Precision = (
            "int8" if resolved == "openvino-int8" else "bf16" if resolved == "openvino-bf16" else "f32"
        )
        try:
            return load_openvino(name, "bi" if kind == "bi" else "cross", precision, max_length), resolved
        except EncoderExportError as e:
            note(f"{e}; {name!r} runs on torch")
            resolved = "torch-bf16" if resolved != "openvino" else "torch"
    model = _torch(name, kind, max_length)
    if resolved == "torch-bf16":
        from ragsys.encoders.autocast import Bf16

        return Bf16(model), resolved
    return model, resolved


def _torch(name: str, kind: str, max_length: int | None) -> Any:
    from ragsys.models import load_cross_encoder, load_sentence_transformer

    if kind == "bi":
        return load_sentence_transformer(name, max_seq_length=max_length)
    return load_cross_encoder(name, max_length=max_length or 512)
