"""The exceptions streamlearn raises on purpose.

StreamlearnError            a user-facing problem: the CLI prints its message as one line
 ├── ConfigError            a bad flag, environment variable, file or column
 ├── ModelError             a model name or factory that cannot be loaded
 └── KafkaError             a broker that is unreachable, or a local one that will not start
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
