"""Evaluation: eval sets (`evalset`) and converters of public datasets (`convert`), the one
train/dev/test split module (`split`), retrieval metrics (`metrics`) and scoring a pipeline's
rankings (`retrieval`), answer metrics (`answers`) and scoring its answers (`answering`),
uncertainty (`stats`), one eval run (`run`) and run reports (`report`).

Submodules are imported by name, not re-exported here, so that importing one (say,
`stats` in a benchmark) does not pull in `ir_measures` or `rouge_score`.
"""
