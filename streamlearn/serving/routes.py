"""streamlearn's routes on the worker's web server: a key's model, `/metrics` and the dashboard.

Any worker answers for any key: the key's partition (`partition_for`, as producers place it)
and Faust's assignment of the state table's changelog name the owner, and a worker that is not
it forwards the request there and returns the owner's answer. Forwarded rather than redirected:
the client needs one address (a load balancer's, a port-forward's), the owner's address may be
one only the workers reach, and a POST survives no redirect in many clients. A forwarded
request carries `FORWARDED_HEADER`; a worker that gets one for a key it does not own either
answers 503 (the assignment is moving) instead of forwarding again.

With `STREAMLEARN_WEB_TOKEN` set, every route here asks for `Authorization: Bearer <token>`,
except the dashboard's static page, which holds no data and sends the token from its URL's
fragment (`/dashboard#token=…`, never sent to a server) with each request it makes.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import aiohttp
from faust.web import View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streamlearn.kafka.partitioner import partition_for
from streamlearn.learning.events import Rejected, parse_query
from streamlearn.serving.describe import describe_key, predict_without_learning
from streamlearn.serving.metrics import WorkerMetrics
from streamlearn.serving.summary import worker_summary

FORWARDED_HEADER = "X-Streamlearn-Forwarded"
RETRY_AFTER = "1"  # seconds; a rebalance in tests and small apps takes a few
PEER_TIMEOUT = 5.0  # seconds a forwarded request or a dashboard poll waits for another worker
MAX_BODY = 1024 * 1024


def add_routes(app: Any) -> None:
    """Add the routes to `app` (the streamlearn Faust app) and its `app.metrics`."""
    app.metrics = WorkerMetrics(app)
    for path, view in (
        ("/keys/{key}", KeyView),
        ("/keys/{key}/predict", PredictView),
        ("/metrics", MetricsView),
        ("/counters/", CountersView),
        ("/dashboard", DashboardPage),
        ("/dashboard/worker.json", WorkerSummaryView),
        ("/dashboard/app.json", AppSummaryView),
    ):
        app.page(path)(view)


class _Guarded(View):
    """A view that answers only with the app's token, when one is set."""

    async def dispatch(self, request: Any) -> Any:
        token = self.app.settings.web_token
        if token:
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return self.json(
                    {"error": "unauthorized: send 'Authorization: Bearer <token>'"},
                    status=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        return await super().dispatch(request)

    def unavailable(self, reason: str) -> Any:
        """503 with `Retry-After`: the key's partition is moving or not yet ready."""
        return self.json({"error": reason}, status=503, headers={"Retry-After": RETRY_AFTER})


class _KeyRoute(_Guarded):
    """Finds the key's owner; answers with `local` there, forwards from anywhere else."""

    async def answer(
        self, request: Any, key: str, local: Callable[[Any, bytes], Awaitable[Any]]
    ) -> Any:
        app = self.app
        raw = key.encode()
        partition = partition_for(raw, app.settings.partitions)
        if app.rebalances.started is not None or not app.consumer.flow_active:
            return self.unavailable(f"partition {partition} is moving (a rebalance is under way)")
        owner = owner_of(app, partition)
        here = str(app.conf.canonical_url)
        if owner == here and partition in app.rebalances.owned:
            state = app.intake.states.peek(partition, raw)
            if state is None:
                return self.json(
                    {"error": f"no key {key!r}: it has no state (no event learned or pending)"},
                    status=404,
                )
            return await local(request, state)
        if owner is None or owner == here or request.headers.get(FORWARDED_HEADER):
            return self.unavailable(f"partition {partition} has no settled owner yet")
        return await self.forward(request, owner)

    async def forward(self, request: Any, owner: str) -> Any:
        """The owner's answer to the same request, status and body as they are."""
        headers = {FORWARDED_HEADER: str(self.app.conf.canonical_url)}
        if "Authorization" in request.headers:
            headers["Authorization"] = request.headers["Authorization"]
        url = owner.rstrip("/") + request.rel_url.path
        try:
            async with self.app.http_client.request(
                request.method,
                url,
                data=await request.read(),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT),
            ) as reply:
                body = await reply.read()
                extra = {"Retry-After": reply.headers["Retry-After"]} if reply.status == 503 else {}
                return self.bytes(
                    body, content_type=reply.content_type, status=reply.status, headers=extra
                )
        except (TimeoutError, aiohttp.ClientError) as error:
            return self.unavailable(f"the key's owner {owner} did not answer ({error!r:.100})")


class KeyView(_KeyRoute):
    """`GET /keys/<key>`: the key's metrics, candidates, joins in flight and models."""

    async def get(self, request: Any, key: str) -> Any:
        return await self.answer(request, key, self._describe)

    async def _describe(self, request: Any, state: Any) -> Any:
        key = request.match_info["key"]
        names = self.app.processor.learner.names
        return self.json({"key": key, **where(self.app, key), **describe_key(state, names)})


class PredictView(_KeyRoute):
    """`POST /keys/<key>/predict` with `{"x": {...}}`: the serving model's answer; no change."""

    async def post(self, request: Any, key: str) -> Any:
        body = await request.read()
        if len(body) > MAX_BODY:
            return self.json({"error": f"the body is over {MAX_BODY} bytes"}, status=413)
        try:
            parse_query(body, MAX_BODY)
        except Rejected as error:
            return self.json({"error": str(error)}, status=400)
        return await self.answer(request, key, self._predict)

    async def _predict(self, request: Any, state: Any) -> Any:
        x = parse_query(await request.read(), MAX_BODY)
        key = request.match_info["key"]
        learner = self.app.processor.learner
        try:
            answer = predict_without_learning(state, x, learner.classifier)
        except Exception as error:  # a model may raise on any feature, as in the intake
            return self.json({"error": f"model-error: {error!r:.200}"}, status=400)
        served = {"model": learner.names[state.leader], **answer}
        return self.json({"key": key, **where(self.app, key), **served})


class MetricsView(_Guarded):
    """`GET /metrics`: this worker's Prometheus metrics (scrape every worker)."""

    async def get(self, request: Any) -> Any:
        body = generate_latest(self.app.metrics.registry)
        return self.bytes(body, headers={"Content-Type": CONTENT_TYPE_LATEST})


class CountersView(_Guarded):
    """`GET /counters/`: this worker's counters as the log prints them."""

    async def get(self, request: Any) -> Any:
        return self.json(self.app.processor.counters.as_dict())


class DashboardPage(View):
    """`GET /dashboard`: the page; it holds no data, so it needs no token (see module doc)."""

    async def get(self, request: Any) -> Any:
        page = resources.files("streamlearn.serving").joinpath("static/dashboard.html")
        return self.html(page.read_text())


class WorkerSummaryView(_Guarded):
    """`GET /dashboard/worker.json`: this worker's share, for the dashboard."""

    async def get(self, request: Any) -> Any:
        return self.json(worker_summary(self.app))


class AppSummaryView(_Guarded):
    """`GET /dashboard/app.json`: every worker's summary, fetched from each now.

    The workers are the members Faust's assignor knows (each one's `--web-host`:`--web-port`),
    so the dashboard of any worker shows all of them, on any number of hosts.
    """

    async def get(self, request: Any) -> Any:
        here = str(self.app.conf.canonical_url)
        peers = sorted(set(self.app.assignor.tables_metadata()) | {here})
        headers = {}
        if "Authorization" in request.headers:
            headers["Authorization"] = request.headers["Authorization"]

        async def fetch(url: str) -> dict:
            if url == here:
                return worker_summary(self.app)
            try:
                async with self.app.http_client.get(
                    url.rstrip("/") + "/dashboard/worker.json",
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT),
                ) as reply:
                    reply.raise_for_status()
                    return await reply.json()
            except (TimeoutError, aiohttp.ClientError) as error:
                return {"worker": url, "error": f"{error!r:.200}"}

        return self.json({"workers": await asyncio.gather(*map(fetch, peers))})


def owner_of(app: Any, partition: int) -> str | None:
    """The URL of the worker that Faust assigned `partition` of the state table, if any."""
    changelog = app.intake.table.changelog_topic.get_topic_name()
    for url, topics in app.assignor.table_metadata(changelog).items():
        if partition in topics.get(changelog, ()):
            return str(url)
    return None


def where(app: Any, key: str) -> dict[str, Any]:
    """The key's partition and the worker that answered, for the JSON replies."""
    return {
        "partition": partition_for(key.encode(), app.settings.partitions),
        "worker": str(app.conf.canonical_url),
    }
