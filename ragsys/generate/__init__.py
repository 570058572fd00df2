"""Generation: passages and a question in, a cited answer (or an abstention) out.

`config` declares the generator and its backend; `local` is the answering logic every local
backend shares, over a decoder from `hf` (transformers) or `llama` (llama.cpp, on a GGUF
`gguf_export` writes); `openai` answers through an OpenAI-compatible server. `prompt` packs
numbered passages into the model's chat template; `citations` reads `[n]` citations and
abstentions back out of the answer; `watch` streams and stops a generation token by token;
`labels` is the constrained final step that picks a closed-set label (yes/no/maybe).

`GeneratorConfig` is re-exported here because pipeline files declare it
(`from ragsys.generate import GeneratorConfig`).
"""

from ragsys.generate.config import GeneratorConfig

__all__ = ["GeneratorConfig"]
