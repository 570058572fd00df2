"""The `ragsys` command line (typer + rich): every command group, registered in one place.

Each group lives in its own module (`index`: index, search, inspect; `ask`; `eval`: convert,
eval; `train`; `tune`; `serve`; `feedback`) and declares its options through `options`;
`console` holds what they share. Command modules never import this one.
"""

from __future__ import annotations

import sys

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


def ray_argv(argv: list[str]) -> list[str]:
    """`--ray [ADDRESS]` as the issue's contract writes it: a bare `--ray` is a local Ray
    instance, `--ray auto` / `--ray ray://HOST:PORT` / `--ray HOST:PORT` an existing cluster.
    Typer has no option with an optional value, so the address is moved to `--ray-address`
    here; a token after `--ray` that is no address (a path to index) is left as a path.

    >>> ray_argv(["index", "docs", "--ray", "auto", "--index", "i"])
    ['index', 'docs', '--ray-address', 'auto', '--index', 'i']
    >>> ray_argv(["index", "--ray", "docs"])
    ['index', '--ray', 'docs']
    """
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token.startswith("--ray="):
            out += ["--ray-address", token.removeprefix("--ray=")]
        elif token == "--ray" and i + 1 < len(argv) and _is_ray_address(argv[i + 1]):
            out += ["--ray-address", argv[i + 1]]
            i += 1
        else:
            out.append(token)
        i += 1
    return out


def _is_ray_address(token: str) -> bool:
    """What `ragsys.distributed.parse_address` accepts (imported only when `--ray` is given)."""
    from ragsys.distributed.cluster import ClusterError, parse_address

    try:
        parse_address(token)
    except ClusterError:
        return False
    return True


def main() -> None:
    app(args=ray_argv(sys.argv[1:]))


if __name__ == "__main__":
    main()
