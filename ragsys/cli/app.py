"""The `ragsys` command line (typer + rich): every command group, registered in one place.

Each group lives in its own module (`index`: index, search, inspect; `ask`; `eval`: convert,
eval; `train`; `tune`; `serve`; `feedback`) and declares its options through `options`;
`console` holds what they share. Command modules never import this one.
"""

from __future__ import annotations

import typer

from ragsys.cli import ask, feedback, index, serve, train, tune
from ragsys.cli import eval as evaluate

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Retrieval-augmented generation as a system."
)
app.command()(index.index)
app.command()(index.search)
app.command()(index.inspect)
app.command()(ask.ask)
app.command()(evaluate.convert)
app.command(name="eval")(evaluate.eval_)
app.add_typer(train.train_app, name="train")
app.command()(tune.tune)
app.command()(serve.serve)
app.add_typer(feedback.feedback_app, name="feedback")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
