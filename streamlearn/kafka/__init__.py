"""Talking to Kafka outside the Faust app: topic checks, the key partitioner, a local broker."""
