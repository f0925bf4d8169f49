"""Flags shared by the commands that talk to Kafka or run the app.

Each flag also reads `STREAMLEARN_<NAME>` and shows its default and variable in `--help`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from streamlearn.datasets.bikes import Fault
from streamlearn.errors import ConfigError
from streamlearn.kafka.outage import DEFAULT_BROKER_TIMEOUT
from streamlearn.kafka.security import MECHANISMS, PROTOCOLS, Security
from streamlearn.learning.anomaly import Threshold
from streamlearn.learning.core import DEFAULT_HORIZON, DEFAULT_MAX_PENDING, Selection
from streamlearn.learning.drift import DETECTORS, REACTIONS, DriftWatch
from streamlearn.learning.events import DEFAULT_MAX_EVENT_BYTES
from streamlearn.learning.models import split_specs
from streamlearn.settings import Settings, Topics
from streamlearn.snapshot import SECRET_ENV

WEB_TOKEN_ENV = "STREAMLEARN_WEB_TOKEN"


def option(name: str, *decls: str, **kwargs: Any) -> Callable:
    """A flag that also reads `STREAMLEARN_<NAME>` and shows its default and variable in --help.

    Extra `decls` are click's (a Python parameter name, say, for `--id`).
    """
    env = "STREAMLEARN_" + name.lstrip("-").replace("-", "_").upper()
    return click.option(name, *decls, envvar=env, show_envvar=True, show_default=True, **kwargs)


def compose(*decorators: Callable) -> Callable:
    def apply(function: Callable) -> Callable:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


SASL_PASSWORD_ENV = "STREAMLEARN_SASL_PASSWORD"

kafka_options = compose(
    option("--broker", default="localhost:9092",
           help="Kafka bootstrap HOST:PORT, or several comma-separated."),
    option("--security-protocol", type=click.Choice(PROTOCOLS, case_sensitive=False),
           default="PLAINTEXT", callback=lambda ctx, param, value: value.upper(),
           help="How to reach the brokers (README, Running on a real cluster)."),
    option("--sasl-mechanism", type=click.Choice(MECHANISMS, case_sensitive=False),
           default="PLAIN", callback=lambda ctx, param, value: value.upper(),
           help="With SASL_SSL or SASL_PLAINTEXT."),
    option("--sasl-username", default=None, help="With SASL_SSL or SASL_PLAINTEXT."),
    option("--sasl-password-file", type=click.Path(dir_okay=False, path_type=Path),
           default=None,
           help=f"A file whose first line is the SASL password [default: ${SASL_PASSWORD_ENV};"
                " never a flag, which `ps` would show]."),
    option("--ssl-cafile", type=click.Path(dir_okay=False, path_type=Path), default=None,
           help="PEM file of the CA that signed the brokers' certificates [default: the"
                " system's CAs]."),
    option("--ssl-certfile", type=click.Path(dir_okay=False, path_type=Path), default=None,
           help="PEM file of this client's certificate, for mutual TLS."),
    option("--ssl-keyfile", type=click.Path(dir_okay=False, path_type=Path), default=None,
           help="PEM file of that certificate's private key."),
)  # fmt: skip
SECURITY_FLAGS = (
    "security_protocol", "sasl_mechanism", "sasl_username", "sasl_password_file",
    "ssl_cafile", "ssl_certfile", "ssl_keyfile",
)  # fmt: skip

replication_option = option(
    "--replication-factor", type=click.IntRange(1), default=None,
    help="Replicas of each topic streamlearn creates [default: 3, or as many brokers as there"
         " are when fewer]; existing topics with fewer are reported.",
)  # fmt: skip


@click.command()
@kafka_options
def _kafka_flags(**params: Any) -> None:
    """Only parses `kafka_options` (for `security_from_env`)."""


def security_from_env() -> Security:
    """The `Security` that the `STREAMLEARN_*` variables alone give: how the bench and its peers
    reach a secured cluster."""
    return security_from(dict(_kafka_flags.make_context("kafka", []).params))


def security_from(params: dict[str, Any]) -> Security:
    """The `Security` from the parsed values of `kafka_options`; takes them out of `params`."""
    values = {name: params.pop(name) for name in SECURITY_FLAGS}
    password = os.environ.get(SASL_PASSWORD_ENV) or None
    if values["sasl_password_file"] is not None:
        try:
            lines = values["sasl_password_file"].read_text().splitlines()
        except OSError as error:
            raise ConfigError(
                f"cannot read --sasl-password-file {values['sasl_password_file']}: {error.strerror}"
            ) from None
        password = lines[0] if lines else None
    return Security(
        values["security_protocol"], values["sasl_mechanism"], values["sasl_username"] or None,
        password, values["ssl_cafile"], values["ssl_certfile"], values["ssl_keyfile"],
    )  # fmt: skip


broker_timeout_option = option(
    "--broker-timeout", type=click.FloatRange(1), default=DEFAULT_BROKER_TIMEOUT,
    help="Seconds without an answer from the broker, once it went away, before giving up.",
)  # fmt: skip


def model_option(default: str) -> Callable:
    """`--model`, repeatable: each value is one or more specs, comma- or space-separated, so
    `STREAMLEARN_MODEL="knn-regression,linear-regression"` lists candidates too."""
    return option(
        "--model",
        "models",
        multiple=True,
        default=(default,),
        callback=lambda ctx, param, values: split_specs(values),
        help="A preset name or module:factory; several (repeated or comma-separated) are"
        " candidates per key, the best one serving (see README, Several models per key).",
    )


selection_options = compose(
    option("--select-window", type=click.IntRange(0), default=Selection().window,
           help="Choose each key's serving candidate by its metric over the key's last N labels"
                " (0: over all of them)."),
    option("--select-min-labels", type=click.IntRange(0), default=Selection().min_labels,
           help="Labels a key learns after its serving candidate changed (or from its start)"
                " before it may change again."),
)  # fmt: skip


def selection_from(params: dict[str, Any]) -> Selection:
    """The `Selection` from the parsed values of `selection_options`."""
    return Selection(params["select_window"], params["select_min_labels"])


watch_options = compose(
    option("--anomaly-quantile", type=click.FloatRange(0, 1, min_open=True, max_open=True),
           default=None,
           help="With an anomaly detector: flag a score as is_anomaly when it is at or above"
                " this quantile of the key's earlier scores (see README, Anomalies and drift)."),
    option("--anomaly-threshold", type=float, default=None,
           help="With an anomaly detector: flag a score as is_anomaly when it is at or above"
                " this value."),
    option("--anomaly-grace", type=click.IntRange(0), default=Threshold().grace,
           help="Observations a key scores before its scores may be flagged, and count in its"
                " quantile."),
    option("--drift", type=click.Choice(DETECTORS), default=DriftWatch().detector,
           help="Watch each key's prediction error for drift with this detector."),
    option("--on-drift", type=click.Choice(REACTIONS), default=DriftWatch().on_drift,
           help="What a key's drift does besides showing in its predictions: reset its models."),
)  # fmt: skip


def _faults(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple:
    try:
        return tuple(Fault.parse(value) for value in values)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


fault_option = click.option(
    "--fault", "faults", multiple=True, callback=_faults, metavar="STATION:START_HOUR:HOURS",
    help="Break a station of the bikes stream: it reports 0 bikes for HOURS hours from hour"
         " START_HOUR (repeatable).",
)  # fmt: skip


def threshold_from(params: dict[str, Any]) -> Threshold:
    """The `Threshold` from the parsed values of `watch_options`."""
    quantile, value = params["anomaly_quantile"], params["anomaly_threshold"]
    if quantile is not None and value is not None:
        raise ConfigError("--anomaly-quantile and --anomaly-threshold: give one, not both")
    return Threshold(quantile, value, params["anomaly_grace"])


def drift_from(params: dict[str, Any]) -> DriftWatch:
    """The `DriftWatch` from the parsed values of `watch_options`."""
    return DriftWatch(params["drift"], params["on_drift"])


WATCH_FLAGS = ("anomaly_quantile", "anomaly_threshold", "anomaly_grace", "drift", "on_drift")


def watch_args(params: dict[str, Any]) -> tuple[str, ...]:
    """The `watch_options` given, as flags for a worker the command starts (the demo's)."""
    args: list[str] = []
    for name in WATCH_FLAGS:
        if params[name] is not None:
            args += ["--" + name.replace("_", "-"), str(params[name])]
    return tuple(args)


topic_options = compose(
    option("--topic-prefix", default="", help="Prefix for all four topic names."),
    option("--observations-topic", default=None, help="[default: PREFIX + observations]"),
    option("--labels-topic", default=None, help="[default: PREFIX + labels]"),
    option("--predictions-topic", default=None, help="[default: PREFIX + predictions]"),
    option("--dead-letters-topic", default=None, help="[default: PREFIX + dead-letters]"),
)
app_options = compose(
    kafka_options,
    replication_option,
    model_option("linear-regression"),
    selection_options,
    watch_options,
    option("--app-id", default="streamlearn", help="Faust app id; workers with one id share."),
    option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Settings.data_dir,
        help="Where this worker keeps its RocksDB tables (one per worker).",
    ),
    option("--partitions", type=click.IntRange(1, 1024), default=Settings.partitions,
            help="Partitions per topic."),
    option("--web-port", type=click.IntRange(1, 65535), default=Settings.web_port,
            help="HTTP port (/counters/); one per worker on a machine."),
    option("--web-host", default=Settings.web_host,
            help="Address the HTTP server binds (0.0.0.0: every interface; beyond loopback it"
                 " needs STREAMLEARN_WEB_TOKEN)."),
    topic_options,
    option(
        "--horizon",
        type=click.FloatRange(min=0, min_open=True),
        default=DEFAULT_HORIZON,
        help="Seconds of event time a pending observation or early label waits.",
    ),
    option("--max-pending", type=click.IntRange(1), default=DEFAULT_MAX_PENDING,
            help="Pending entries kept per key, whatever the horizon."),
    option("--max-event-bytes", type=click.IntRange(64), default=DEFAULT_MAX_EVENT_BYTES,
            help="Larger event values go to the dead letters."),
    option("--standby-replicas", type=click.IntRange(0), default=Settings.standby_replicas,
            help="Standby copies of each table partition on other workers (see README)."),
    option("--session-timeout", type=click.FloatRange(6, 300), default=Settings.session_timeout,
            help="Seconds before a silent worker's partitions go to the others."),
    option("--instance-id", default=None,
           help="Static group membership: a name unique to this worker that it keeps across"
                " restarts; restarted within --session-timeout, it gets its partitions back"
                " with no rebalance (see README) [default: none, dynamic membership]."),
    option("--checkpoint-interval", type=click.FloatRange(0.01),
           default=Settings.checkpoint_interval,
           help="Seconds between checkpoints of state and input offsets (see README)."),
    option("--checkpoint-records", type=click.IntRange(1), default=Settings.checkpoint_records,
           help="A checkpoint also after this many records."),
    option("--cache-keys", type=click.IntRange(0), default=Settings.cache_size,
           help="Key states kept in memory per partition, beyond those not yet checkpointed."),
    option("--merge-wait", type=click.FloatRange(0), default=Settings.merge_wait,
           help="Seconds a record waits at most for the other input topic, when that topic is"
                " read to its end but not yet by a fetch --merge-grace after the record's time"
                " (see README)."),
    option("--merge-grace", type=click.FloatRange(0), default=Settings.merge_grace,
           help="Seconds after a record's time by which the records written before it have"
                " reached the broker (see README)."),
)  # fmt: skip


def topics_from(params: dict[str, Any]) -> Topics:
    """The topic names from `--topic-prefix` and the per-topic flags."""
    topics = Topics.with_prefix(params["topic_prefix"])
    return Topics(
        params["observations_topic"] or topics.observations,
        params["labels_topic"] or topics.labels,
        params["predictions_topic"] or topics.predictions,
        params["dead_letters_topic"] or topics.dead_letters,
    )


def settings_from(params: dict[str, Any]) -> Settings:
    """`Settings` from the parsed values of `app_options`."""
    return Settings(
        broker=params["broker"],
        security=security_from(params),
        replication=params["replication_factor"],
        models=params["models"],
        selection=selection_from(params),
        threshold=threshold_from(params),
        drift=drift_from(params),
        app_id=params["app_id"],
        data_dir=params["data_dir"],
        partitions=params["partitions"],
        web_port=params["web_port"],
        web_host=params["web_host"],
        topics=topics_from(params),
        horizon=params["horizon"],
        max_pending=params["max_pending"],
        max_event_bytes=params["max_event_bytes"],
        standby_replicas=params["standby_replicas"],
        session_timeout=params["session_timeout"],
        instance_id=params["instance_id"] or None,
        cache_size=params["cache_keys"],
        checkpoint_interval=params["checkpoint_interval"],
        checkpoint_records=params["checkpoint_records"],
        merge_wait=params["merge_wait"],
        merge_grace=params["merge_grace"],
        # From the environment only, never a flag: a flag's value shows in `ps` (snapshot.py).
        state_secret=os.environ.get(SECRET_ENV, "").encode() or None,
        web_token=os.environ.get(WEB_TOKEN_ENV) or None,  # likewise
    )


column_options = compose(
    click.argument("file", type=click.Path(path_type=Path, dir_okay=False)),
    option("--key", required=True, help="Column with the entity key (also the model key)."),
    option("--target", default=None,
           help="Column with the target y [default: none, observations only, for an anomaly"
                " detector]."),
    option("--id", "id_column", default=None,
           help="Column(s) with the event id, comma-separated; they leave x unless they are the"
                " key or time [default: the time column, else the row number]."),
    option("--time", "time_column", default=None,
           help="Column with the event time (epoch seconds or ISO-8601)."),
    option("--label-delay", default="0",
           help="Send each label after N more events, or with --time after a duration (2h)."),
)  # fmt: skip
