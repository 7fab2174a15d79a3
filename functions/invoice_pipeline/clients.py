"""A container's AWS clients: each made on first use and kept while the container is warm.

Creating a boto3 client costs tens of milliseconds, so a handler's runtime holds one :class:`AwsClients` and every
part of it (S3 fetches, visibility changes, the AWS model providers, the producer's sends) asks it for theirs.
Nothing is kept at module level: a new runtime (a new container, or the local stack pointing boto3 at a new
endpoint) starts with none. boto3 is imported on the first client, not at cold start.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ClientConfig:
    """How a client connects and retries (botocore's standard mode: throttling and 5xx are retried)."""

    read_timeout: int = 20
    connect_timeout: int = 5
    attempts: int = 3  # in all, the first included
    max_pool_connections: int = 10


class AwsClients:
    """boto3 clients by service and :class:`ClientConfig`; thread-safe (the local stack runs containers as threads)."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, ClientConfig], Any] = {}
        self._lock = threading.Lock()

    def get(self, service: str, config: ClientConfig | None = None) -> Any:
        config = config or ClientConfig()
        key = (service, config)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                import boto3
                from botocore.config import Config

                client = boto3.client(
                    service,
                    config=Config(
                        retries={"mode": "standard", "total_max_attempts": config.attempts},
                        connect_timeout=config.connect_timeout,
                        read_timeout=config.read_timeout,
                        max_pool_connections=config.max_pool_connections,
                    ),
                )
                self._clients[key] = client
            return client
