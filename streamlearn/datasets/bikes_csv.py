"""`python -m streamlearn.datasets.bikes_csv FILE`: write the bundled bike-stations stream to a
CSV file, for `streamlearn produce` (the Docker demo's one-shot producer uses it).
"""

from __future__ import annotations

from pathlib import Path

import click

from streamlearn.commands.options import fault_option
from streamlearn.datasets.bikes import Fault, bike_stream, write_csv


@click.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--stations", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--days", type=click.IntRange(1, 365), default=7, show_default=True)
@click.option("--seed", default=42, show_default=True)
@fault_option
def main(file: Path, stations: int, days: int, seed: int, faults: tuple[Fault, ...]) -> None:
    """Write the seeded bike-stations stream (one row per station and hour) to FILE."""
    rows = write_csv(file, bike_stream(stations=stations, days=days, seed=seed, faults=faults))
    click.echo(f"wrote {rows} rows to {file}")


if __name__ == "__main__":
    main()
