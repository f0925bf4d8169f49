"""What `create_app` hands Faust, from flags and `STREAMLEARN_*` variables (no broker)."""

from __future__ import annotations

from streamlearn.commands.cli import settings_from_env
from streamlearn.worker.app import create_app


def test_the_web_server_binds_loopback_unless_told(monkeypatch):
    monkeypatch.delenv("STREAMLEARN_WEB_HOST", raising=False)
    app = create_app(settings_from_env())
    assert (app.conf.web_bind, app.conf.web_host) == ("127.0.0.1", "127.0.0.1")


def test_the_web_host_variable_reaches_faust(monkeypatch):
    monkeypatch.setenv("STREAMLEARN_WEB_HOST", "127.0.0.2")
    app = create_app(settings_from_env())
    assert (app.conf.web_bind, app.conf.web_host) == ("127.0.0.2", "127.0.0.2")


async def test_a_fetch_of_idle_partitions_cannot_hold_the_inputs_back_for_long():
    """aiokafka keeps one fetch in flight per broker; one made only of partitions that never
    get data (Faust's leader topic) used to wait Faust's 1.5 s while the inputs piled up."""
    app = create_app(settings_from_env())
    thread = app.consumer._thread
    consumer = thread._create_worker_consumer(app.transport)
    try:
        assert consumer._fetch_max_wait_ms <= 50
    finally:
        await consumer.stop()  # never started; stopped, it does not warn when collected
