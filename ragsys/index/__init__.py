"""The on-disk index: generations of a chunk store, BM25 structures and vectors, switched atomically.

`spec.IndexSpec` says what an index holds; `build.index_paths` brings a directory up to date
with files (incrementally, resumable, crash-safe); `reader.Index` opens the current
generation for reading; `copy.copy_index` re-embeds a copy for another spec.
"""
