"""The learning core, free of I/O: events, models and presets, per-key state, the merge of the
two input topics and the processor. The worker, replay, tests and bench all run this code."""
