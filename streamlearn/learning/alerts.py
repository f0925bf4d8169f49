"""What a user must hear about at once: learning that is quietly going wrong.

The counters say everything, but nobody reads counters until too late. `alerts` compares two
snapshots of them (the whole run for `replay`, the last log interval for a worker) and says in
plain words what went wrong in between: observations the model could not use, events whose
time had to be guessed, and records that were mostly duplicates or mostly rejected.

    >>> before = dict.fromkeys(("consumed", "duplicate", "dead_lettered", "predicted"), 0)
    >>> after = {**before, "consumed": 10, "duplicate": 8, "predicted": 2}
    >>> alerts(before, after, {"duplicate": "key 'a', id 3"})[0].split(":")[0]
    "8 of 10 records were duplicates (ids seen before, e.g. key 'a', id 3)"
"""

from __future__ import annotations

from collections.abc import Mapping


def alerts(
    before: Mapping[str, int], after: Mapping[str, int], examples: Mapping[str, str]
) -> list[str]:
    """One line per problem seen between two snapshots of `Counters.as_dict()`."""

    def new(name: str) -> int:
        return after.get(name, 0) - before.get(name, 0)

    consumed = new("consumed")
    lines = []
    if featureless := new("no_features"):
        lines.append(
            f"{featureless} observations had no feature the model can use (it keeps only"
            f" numbers; e.g. {examples.get('no_features', '?')}): its predictions ignore them."
            " Add numeric features or pick a model for these columns (--model m5, bikes, or yours)"
        )
    if mixed := new("mixed_time"):
        lines.append(
            f'{mixed} events had no "ts" on keys whose events carry one, or the reverse'
            f" (e.g. {examples.get('mixed_time', '?')}): each was given its key's latest"
            ' observation time. Send "ts" in every event or in none'
        )
    if consumed and (duplicates := new("duplicate")) * 2 > consumed:
        lines.append(
            f"{duplicates} of {consumed} records were duplicates (ids seen before, e.g."
            f" {examples.get('duplicate', '?')}): ids that repeat across files or runs?"
            " Name an id column with --id, or use --time"
        )
    if consumed and (rejected := new("dead_lettered")) * 2 > consumed:
        lines.append(f"{rejected} of {consumed} records were rejected: see the dead letters")
    return lines
