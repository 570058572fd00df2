"""Post-training of each component: the dense encoder (`retriever`), the cross-encoder
(`reranker/`), the generator as a LoRA adapter (`generator/`) and the fusion mixture
(`mixture`), each a config plus a `train…()`. Their examples are mined in `mining/` (which
also holds the shared mine -> train -> re-index recipe); `budget`, `fit`, `lora` and `merge`
hold what the trainers share."""
