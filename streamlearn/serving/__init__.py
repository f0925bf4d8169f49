"""What the worker's web server serves: a key's model, Prometheus metrics, the dashboard."""
