"""Options that several commands take, declared once, and options made from a config's fields.

`config_options` turns fields of a `…TrainConfig` into a command's CLI options (help text from
the field's description unless the flag gives its own) and hands the command the validated
config, so a train command never rebuilds its config option by option, and a field added to
a config needs one `Flag` line to reach the command line.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, TypeVar, get_origin

import typer
from pydantic import BaseModel

from ragsys.cli.console import user_errors

IndexOpt = Annotated[Path, typer.Option("--index", help="index directory")]
PipelineOpt = Annotated[
    str | None, typer.Option("--pipeline", help="a pipelines/*.py file or a saved pipeline directory")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON object as the last line of stdout")]
EvalSetOpt = Annotated[Path, typer.Option("--eval-set", help="eval set JSONL (see README)")]
SplitOpt = Annotated[str, typer.Option("--split", help="the split trained on (never the test split)")]
FeedbackOpt = Annotated[Path | None, typer.Option("--feedback", help="feedback store (thumbs, revisions)")]
FEEDBACK_VERSION_HELP = (
    "whose --feedback records to learn from: 'current' (recorded against this --pipeline's version, "
    "as `ragsys serve` records it), 'all', or one version string; the others are counted as "
    "skipped_other_versions in the run's JSON"
)
FeedbackVersionOpt = Annotated[str, typer.Option("--feedback-version", help=FEEDBACK_VERSION_HELP)]
FilterOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--filter",
        help="KEY=VALUE metadata filter (company, ticker, form, period, period_end, title, file, doc; "
        "globs allowed); repeat: AND across keys, OR within a key",
    ),
]

F = TypeVar("F", bound=Callable[..., Any])
_FIELD_DEFAULT: Any = object()  # the config field's own default


class Flag(NamedTuple):
    """One config field as a CLI option: its flag declaration (`--lr`, `--x/--no-x`), and a
    help text or default of its own where the command's differ from the field's."""

    decls: str
    help: str | None = None
    default: Any = _FIELD_DEFAULT


def config_options(
    model: type[BaseModel], flags: Mapping[str, Flag], name: str = "train"
) -> Callable[[F], F]:
    """Adds one option per field in `flags` to the command and passes `name=model(**values)`.

    typer reads a command's `__signature__`, so the options are parameters of the signature
    the wrapper shows; the command itself declares only its own options and `name`.
    """

    def wrap(command: F) -> F:
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != name]
        added = [_parameter(model, field, flag) for field, flag in flags.items()]

        @functools.wraps(command)
        def run(**kwargs: Any) -> Any:
            values = {field: kwargs.pop(field) for field in flags}
            with user_errors():  # a bad value (say --lr 0) is a one-line error, as any other
                config = model.model_validate(values)
            return command(**kwargs, **{name: config})

        params = [*own, *added]
        run.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in params}
        return run  # type: ignore[return-value]

    return wrap


def _parameter(model: type[BaseModel], field: str, flag: Flag) -> inspect.Parameter:
    info = model.model_fields[field]
    annotation: Any = info.annotation
    if get_origin(annotation) is Literal:  # the config validates choices and names them in its error
        annotation = str
    default = info.default if flag.default is _FIELD_DEFAULT else flag.default
    option = typer.Option(flag.decls, help=flag.help or info.description or "")
    return inspect.Parameter(
        field, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[annotation, option]
    )
