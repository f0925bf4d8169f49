"""`python -m streamlearn.datasets.bikes_csv FILE`: write the bundled bike-stations stream to a
CSV file, for `streamlearn produce` (the Docker demo's one-shot producer uses it).
"""

from __future__ import annotations

from pathlib import Path

import click

from streamlearn.datasets.bikes import Fault, bike_stream, write_csv


@click.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--stations", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--days", type=click.IntRange(1, 365), default=7, show_default=True)
@click.option("--seed", default=42, show_default=True)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    callback=lambda c, p, v: _faults(v),
    help="STATION:START_HOUR:HOURS: the station reports 0 bikes then (repeatable).",
)
def main(file: Path, stations: int, days: int, seed: int, faults: tuple[Fault, ...]) -> None:
    """Write the seeded bike-stations stream (one row per station and hour) to FILE."""
    rows = write_csv(file, bike_stream(stations=stations, days=days, seed=seed, faults=faults))
    click.echo(f"wrote {rows} rows to {file}")


def _faults(values: tuple[str, ...]) -> tuple[Fault, ...]:
    try:
        return tuple(Fault.parse(value) for value in values)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--fault") from None


if __name__ == "__main__":
    main()
