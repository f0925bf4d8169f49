"""Every `streamlearn` command the README shows parses with the real command line."""

from __future__ import annotations

import click
import pytest

from streamlearn.commands.cli import cli
from tests.readme import streamlearn_commands

COMMANDS = streamlearn_commands()


def test_the_readme_shows_the_commands_of_the_contract():
    shown = {args[0] for args in COMMANDS}
    assert {"kafka", "worker", "produce", "tail", "replay"} <= shown


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(a) for a in COMMANDS])
def test_readme_command_parses(args):
    command: click.Command = cli
    rest = list(args)
    while isinstance(command, click.Group):
        name, command, rest = command.resolve_command(click.Context(command), rest)
        assert command is not None, f"no command {name!r}"
    command.make_context(command.name, rest)  # raises on an unknown flag or a bad value
