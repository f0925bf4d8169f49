"""The exceptions streamlearn raises on purpose.

StreamlearnError            a user-facing problem: the CLI prints its message as one line
 ├── ConfigError            a bad flag, environment variable, file or column
 ├── ModelError             a model name or factory that cannot be loaded
 ├── KafkaError             a broker that is unreachable, or a local one that will not start
 └── StateTooLarge          a key's state the broker refuses as one changelog record
"""

from __future__ import annotations


class StreamlearnError(Exception):
    """A problem the user can fix; its message is one line that says what to do."""

    exit_code = 1


class ConfigError(StreamlearnError):
    """A bad flag, environment variable, input file or column name."""

    exit_code = 2


class ModelError(StreamlearnError):
    """A model preset or `module:factory` reference that cannot be turned into a model."""

    exit_code = 2


class KafkaError(StreamlearnError):
    """A broker that does not answer, or a local broker that cannot start or stop."""


class StateTooLarge(StreamlearnError):
    """A key's state bigger than the broker takes as one record: no checkpoint can include it,
    so the worker stops rather than re-read the same records for ever."""

    def __init__(self, key: bytes, size: int, changelog: str) -> None:
        super().__init__(
            f"the state of key {key.decode(errors='replace')!r} is {size:,} bytes, more than"
            f" the broker takes as one record, so no checkpoint can include it; nothing since"
            f" the last one is committed and it is read again at the next start. Raise"
            f" max.message.bytes on topic {changelog} (and message.max.bytes on the brokers),"
            " or use a model whose state stays smaller"
        )
