"""The worker: the Faust app of streamlearn (`app.py`), its hot path and the rebalance plumbing."""
