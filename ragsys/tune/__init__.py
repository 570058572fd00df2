"""`ragsys tune`: specialize the whole pipeline against one eval set, stage by stage.

`split.py` carves train/dev from the non-test questions; `decide.py` is the keep/revert
rule (a paired test on dev); `state.py` checkpoints after every stage; `stages.py` holds
the stages; `run.py` drives them; `report.py` writes the final test report and ablation.
"""
