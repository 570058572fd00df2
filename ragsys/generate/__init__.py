"""Generation: passages and a question in, a cited answer (or an abstention) out.

`hf` is the transformers backend (`GeneratorConfig` builds an `HFGenerator`); `prompt` packs
numbered passages into the model's chat template; `citations` reads `[n]` citations and
abstentions back out of the answer; `watch` streams and stops a generation token by token;
`labels` is the constrained final step that picks a closed-set label (yes/no/maybe).

`GeneratorConfig` is re-exported here because pipeline files declare it
(`from ragsys.generate import GeneratorConfig`).
"""

from ragsys.generate.hf import GeneratorConfig, HFGenerator

__all__ = ["GeneratorConfig", "HFGenerator"]
