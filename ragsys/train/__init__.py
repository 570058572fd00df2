"""Post-training of each component: retriever, reranker and generator (LoRA), each a config
plus a `train()`; shared budget, checkpoint and seeding helpers live in `budget.py`."""
