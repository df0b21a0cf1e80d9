"""RFC 8620 §6: upload (durable before 201), download with Content-Disposition, Blob/copy,
and the upload limits."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from hirondelle.config import Settings
from tests.jmap.conftest import JmapClient, JmapNode, basic, message


@pytest.fixture
def jmap_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"limits": settings.limits.model_copy(update={"max_message_size": 100_000})}
    )


def upload(client: JmapClient, data: bytes, content_type: str = "text/plain") -> dict[str, object]:
    response = client.http.post(
        f"/jmap/upload/{client.account_id}/", content=data, headers={"Content-Type": content_type}
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def test_upload_then_download(node: JmapNode, client: JmapClient) -> None:
    data = "Bonjour, hirondelle ! Été".encode() * 100
    body = upload(client, data, "text/plain; charset=utf-8")
    assert body["accountId"] == client.account_id
    assert body["size"] == len(data)
    assert body["type"] == "text/plain; charset=utf-8"
    blob_id = str(body["blobId"])
    assert blob_id == "G" + hashlib.sha256(data).hexdigest()
    # Durable: the blob file exists once 201 is answered.
    assert node.run(node.services.blobs.exists(blob_id[1:]))
    response = client.http.get(
        f"/jmap/download/{client.account_id}/{blob_id}/r%C3%A9sum%C3%A9.txt",
        params={"type": "text/plain"},
    )
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"].startswith("text/plain")
    assert (
        response.headers["content-disposition"]
        == "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.txt"
    )
    # A type that is not a media type is not echoed back.
    response = client.http.get(
        f"/jmap/download/{client.account_id}/{blob_id}/x", params={"type": "text/html\r\nX: y"}
    )
    assert response.headers["content-type"] == "application/octet-stream"


def test_download_of_an_email_and_not_found(node: JmapNode, client: JmapClient) -> None:
    raw = message("downloadable")
    node.deliver(raw)
    stored = node.run(node.services.blobs.put(raw))  # same content, same address
    blob_id = "G" + stored.hash
    response = client.http.get(
        f"/jmap/download/{client.account_id}/{blob_id}/mail.eml", params={"type": "message/rfc822"}
    )
    assert response.status_code == 200
    assert response.content.startswith(b"From: Bob")
    for path in (
        f"/jmap/download/{client.account_id}/G{'0' * 64}/x",
        f"/jmap/download/{client.account_id}/nonsense/x",
        f"/jmap/download/A999999/{blob_id}/x",
    ):
        assert client.http.get(path).status_code == 404, path


def test_other_account_cannot_read_a_blob(node: JmapNode, client: JmapClient) -> None:
    body = upload(client, b"private bytes")
    bob_account = node.add_account("bob@example.test")
    bob = node.client(bob_account, address="bob@example.test")
    response = bob.http.get(f"/jmap/download/{bob.account_id}/{body['blobId']}/x")
    assert response.status_code == 404
    copied = bob.call(
        "Blob/copy",
        {"fromAccountId": bob.account_id, "blobIds": [body["blobId"]]},
    )
    assert copied["notCopied"] == {body["blobId"]: {"type": "notFound"}}
    # Uploading to another account's URL is refused.
    response = bob.http.post(f"/jmap/upload/{client.account_id}/", content=b"x")
    assert response.status_code == 404


def test_blob_copy(client: JmapClient) -> None:
    body = upload(client, b"copy me")
    copied = client.call(
        "Blob/copy", {"fromAccountId": client.account_id, "blobIds": [body["blobId"], "Gx"]}
    )
    assert copied["copied"] == {body["blobId"]: body["blobId"]}
    assert copied["notCopied"] == {"Gx": {"type": "notFound"}}
    client.error("Blob/copy", {"fromAccountId": "A999999", "blobIds": []}, "fromAccountNotFound")
    error = client.call(
        "Blob/copy",
        {"accountId": "A999999", "fromAccountId": client.account_id, "blobIds": []},
        expect="error",
        account=False,
    )
    assert error["type"] == "accountNotFound"


def test_upload_too_large(client: JmapClient) -> None:
    response = client.http.post(f"/jmap/upload/{client.account_id}/", content=b"x" * 100_001)
    assert response.status_code == 413
    assert response.json()["limit"] == "maxSizeUpload"

    # Without Content-Length (chunked), refused as soon as the limit is passed.
    def chunks() -> object:
        for _ in range(200):
            yield b"y" * 1000

    response = client.http.post(f"/jmap/upload/{client.account_id}/", content=chunks())
    assert response.status_code == 413
    upload(client, b"x" * 100_000)


def test_upload_needs_authentication(node: JmapNode) -> None:
    with httpx.Client(base_url=node.base_url) as anonymous:
        assert anonymous.post("/jmap/upload/A1/", content=b"x").status_code == 401
        response = anonymous.post(
            "/jmap/upload/A1/", content=b"x", headers={"Authorization": basic(password="nope")}
        )
        assert response.status_code == 401


def test_limit_max_concurrent_upload(node: JmapNode, client: JmapClient) -> None:
    """Five uploads whose bodies are still arriving: four hold the four slots, the fifth
    is refused with the limit problem; the four succeed once their bodies end."""
    release = threading.Event()
    started = threading.Semaphore(0)
    results: list[tuple[int, dict[str, object] | None]] = []

    def slow_body() -> Iterator[bytes]:
        yield b"first part "
        started.release()
        release.wait(120)
        yield b"last part"

    def slow_upload() -> None:
        with httpx.Client(base_url=node.base_url, headers=client.http.headers, timeout=60) as c:
            try:
                response = c.post(f"/jmap/upload/{client.account_id}/", content=slow_body())
            except httpx.TransportError:
                # The refused one is answered before its body is sent; the server may
                # close the connection while the client still writes.
                results.append((0, None))
                return
            results.append((response.status_code, response.json()))

    threads = [threading.Thread(target=slow_upload) for _ in range(5)]
    for thread in threads:
        thread.start()
    for _ in threads:
        assert started.acquire(timeout=60)
    # Every body has started; which request holds a slot is not visible from outside,
    # so the server is given a moment to read the five requests' headers and credentials
    # before the bodies end (a sync client reads the refusal only after its body).
    time.sleep(3)
    release.set()
    for thread in threads:
        thread.join(60)
    statuses = [status for status, _ in results]
    assert statuses.count(201) == 4, results
    assert [s for s in statuses if s != 201] in ([0], [400]), results
    refused = [body for status, body in results if status == 400]
    for body in refused:
        assert body is not None and body["limit"] == "maxConcurrentUpload"
    upload(client, b"after")
