"""Evaluation: retrieval metrics (`metrics`), answer metrics (`answers`), uncertainty
(`stats`) and run reports (`report`).

Submodules are imported by name, not re-exported here, so that importing one (say,
`stats` in a benchmark) does not pull in `ir_measures` or `rouge_score`.
"""
