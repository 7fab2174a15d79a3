"""moto in server mode: S3, SQS and Secrets Manager on one loopback port, reached through AWS_ENDPOINT_URL."""

from __future__ import annotations

import logging
import os
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from moto.server import ThreadedMotoServer

from local.postgres import free_port

REGION = "us-east-1"


class MotoServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        """What points boto3 (and the handlers) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
        }

    def reset(self) -> None:
        """Forget every bucket, queue and secret (between tests)."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def start(self) -> MotoServer:
        # The embedded HTTP server logs every request; the demo's output and test logs do not want them.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def patched_environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the block and restore the previous values afterwards."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def reset_client_caches() -> None:
    """Forget what outlives a handler's runtime in this process: Powertools' secret providers and their boto3 clients.

    Each handler builds its settings, pool and clients into a runtime once per container (``consumer.runtime()``);
    a local "container" is a fresh copy of the handler module (:func:`local.event_source.fresh_handler`), so it
    starts with a fresh runtime. Powertools keeps its parameter providers per process, so a test run or a demo
    that starts moto on a new port must drop them before the secrets are read again.
    """
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()  # drops the providers, and with them their boto3 clients
