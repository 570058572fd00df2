"""`ragsys tune`: specialize the whole pipeline against one eval set, stage by stage.

`settings.py` says what runs; `stages.py` names the stages (`retrieval_stages.py`,
`answer_stages.py`), each taking a `context.TuneContext`; `decide.py` is the keep/revert rule
(a paired test on dev); `scoring.py` scores candidates; `state.py` checkpoints after every
stage; `run.py` drives them; `isolated.py` builds the control; `report.py` (and
`report_html.py`) write the final test report and ablation. The split into train and dev is
`ragsys.eval.split`'s.
"""
