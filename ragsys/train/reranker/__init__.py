"""Post-training a cross-encoder reranker: `trainer.train_reranker`, configured by
`config.RerankerTrainConfig`, and `check`, the dev check that decides whether it is used."""
