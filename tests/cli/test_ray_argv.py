"""`ragsys index ... --ray [ADDRESS]`: the command line's optional address, read before typer."""

from __future__ import annotations

import pytest

from ragsys.cli.app import ray_argv


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["index", "d", "--ray"], ["index", "d", "--ray"]),
        (["index", "d", "--ray", "--index", "i"], ["index", "d", "--ray", "--index", "i"]),
        (["index", "d", "--ray", "auto"], ["index", "d", "--ray-address", "auto"]),
        (["index", "--ray", "ray://head:10001", "d"], ["index", "--ray-address", "ray://head:10001", "d"]),
        (["index", "d", "--ray", "10.0.0.5:6379"], ["index", "d", "--ray-address", "10.0.0.5:6379"]),
        (["index", "d", "--ray=auto"], ["index", "d", "--ray-address", "auto"]),
        (["index", "--ray", "docs/"], ["index", "--ray", "docs/"]),  # a path stays a path
        (["ask", "what about --ray?"], ["ask", "what about --ray?"]),
    ],
)
def test_an_address_after_ray_becomes_ray_address_and_anything_else_is_left(
    argv: list[str], expected: list[str]
) -> None:
    assert ray_argv(argv) == expected


def test_the_installed_command_reads_the_address() -> None:
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "ragsys"]
    assert script.value == "ragsys.cli.app:main"
