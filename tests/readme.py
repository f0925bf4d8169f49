"""The README's code blocks, for the tests that keep them true."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

README = (Path(__file__).parents[1] / "README.md").read_text()


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def streamlearn_commands() -> list[list[str]]:
    """Every `streamlearn …` command line in the README's shell blocks, as argv lists."""
    commands = []
    for block in code_blocks("sh"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words and words[-1] == "&":
                words.pop()
            if words[:1] == ["streamlearn"]:
                commands.append(words[1:])
    return commands
