"""The HTTP plumbing the provider emulators share (local/http_emulator.py), over a real loopback connection."""

from __future__ import annotations

import http.client
import json
from typing import Any

from local.http_emulator import JsonHttpEmulator, Reply, header
from local.model_emulator import ModelEmulator


class Echo(JsonHttpEmulator):
    """Answers with what it was sent; a body of ``boom`` raises."""

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        if body == b"boom":
            raise RuntimeError("boom")
        return 201, {"X-Seen": header(headers, "x-probe")}, {"method": method, "path": path, "body": body.decode()}

    def crashed(self, error: Exception) -> Reply:
        return 500, {}, {"crashed": str(error)}

    def reply_headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json"}


def request(port: int, method: str, path: str, body: bytes = b"", **headers: str) -> tuple[int, Any, dict[str, str]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read(), dict(response.getheaders())
    finally:
        connection.close()


def test_a_post_is_answered_with_the_subclass_reply_as_json_with_its_headers() -> None:
    with Echo() as echo:
        status, payload, headers = request(echo.port, "POST", "/x?y=1", b"hello", **{"X-PROBE": "seen"})
    assert status == 201
    assert json.loads(payload) == {"method": "POST", "path": "/x?y=1", "body": "hello"}
    assert headers["Content-Type"] == "application/json" and headers["X-Seen"] == "seen"
    assert headers["Content-Length"] == str(len(payload))


def test_an_error_in_the_double_is_answered_as_its_server_error_not_a_hang() -> None:
    with Echo() as echo:
        status, payload, _ = request(echo.port, "POST", "/", b"boom")
    assert (status, json.loads(payload)) == (500, {"crashed": "boom"})


def test_a_method_the_double_does_not_serve_gets_501() -> None:
    with Echo() as echo:
        assert request(echo.port, "GET", "/")[0] == 501
        assert echo.endpoint_url == f"http://127.0.0.1:{echo.port}"


def test_header_names_match_in_any_letter_case() -> None:
    assert header({"X-Amz-Target": "Textract.AnalyzeExpense"}, "x-amz-target") == "Textract.AnalyzeExpense"
    assert header({}, "Authorization") == ""


def test_a_refused_key_does_not_leave_the_body_on_a_kept_alive_connection() -> None:
    # The model emulator used to answer 401 before reading the body, which the next request on the same
    # connection then read as its request line.
    with ModelEmulator(api_key="sk-right") as model:
        connection = http.client.HTTPConnection("127.0.0.1", model.port, timeout=10)
        try:
            body = json.dumps({"model": "gpt-4o", "messages": []})
            connection.request("POST", "/v1/chat/completions", body=body, headers={"Authorization": "Bearer sk-no"})
            refused = connection.getresponse()
            assert (refused.status, json.loads(refused.read())["error"]["code"]) == (401, "invalid_api_key")
            connection.request("GET", "/v1/models/gpt-4o", headers={"Authorization": "Bearer sk-right"})
            retrieved = connection.getresponse()
            assert (retrieved.status, json.loads(retrieved.read())["id"]) == (200, "gpt-4o")
        finally:
            connection.close()
