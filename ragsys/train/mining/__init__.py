"""Training examples for the rankers, mined from the pipeline's own index and retrieval.

`hard_negatives`: labelled questions (and any question-passage pairs) with the passages the
current pipeline wrongly ranks high; `ict`: inverse-cloze pseudo-queries, free from the
corpus; `synthetic`: questions a generator writes for sampled chunks, kept when retrieval
finds the chunk again; `lm`: the generator's likelihood of the reference answer given each
passage, as a target over passages. `recipe` holds the one mine -> train -> re-index recipe
that `ragsys train` and `ragsys tune` share.
"""
