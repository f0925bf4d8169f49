"""The streamlearn benchmark: the pipeline against its physical limit and its peers, in one run.

`python -m bench --suite default` (see `python -m bench --help`). For each configuration the
same seeded events go through: the in-process limit (a dict of River models), a naive store
(pickle through RocksDB on every event), and streamlearn end to end (a backlog drained by
`streamlearn worker` processes on a local Kafka) beside the same backlog drained by the Python
peers (a hand-written aiokafka loop, Quix Streams), then a paced run for latency, the worker's
memory and disk per key, and the drain with more workers. All rates are pairs per second.

Modules: `workload` (the events), `baselines` (the two in-process loops), `cluster` (broker,
topics, backlog, worker processes), `e2e` (drains), `peers` (the peers and their drains),
`latency` (paced run), `suite` (configurations and their measurement), `report` (tables and
JSON), `__main__` (the command).
"""
