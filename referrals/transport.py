"""Delivering a package: to a drop folder, or by HTTPS POST (I/O only).

The HTTPS request carries the package as its body, the manifest (base64
JSON) and its HMAC in headers, and the run id as ``Idempotency-Key`` so a
partner that already stored a package can ignore a repeated delivery.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import tempfile
from pathlib import Path
from urllib.parse import urlsplit


class DeliveryError(Exception):
    """The endpoint did not take the package; the message is for the run row."""


def deliver_to_folder(*, folder: str, file_name: str, content: bytes, manifest: dict) -> None:
    """Write package and manifest atomically (temp file + rename), manifest
    last, so a partner polling the folder never reads half a file."""
    target = Path(folder)
    try:
        target.mkdir(parents=True, exist_ok=True)
        _atomic_write(target / file_name, content)
        manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=2).encode("utf-8")
        _atomic_write(target / f"{file_name}.manifest.json", manifest_bytes)
    except OSError as exc:
        raise DeliveryError(f"folder: {type(exc).__name__}: {exc.strerror or exc}") from exc


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def ssl_context(ca_pem: str = "") -> ssl.SSLContext:
    """Verified TLS; a partner on a private CA supplies its certificate."""
    ctx = ssl.create_default_context()
    if ca_pem.strip():
        ctx.load_verify_locations(cadata=ca_pem)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def deliver_https(
    *,
    url: str,
    content: bytes,
    content_type: str,
    manifest: dict,
    idempotency_key: str,
    ca_pem: str = "",
    timeout: float = 30,
) -> int:
    """POST the package over verified TLS; returns the HTTP status, raises
    DeliveryError on anything but 2xx (including TLS and connection failures).
    Only ``https://`` endpoints are accepted (http.client.HTTPSConnection)."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise DeliveryError("endpoint is not https")
    manifest_b64 = base64.b64encode(
        json.dumps(manifest, ensure_ascii=False, sort_keys=True).encode("utf-8")
    ).decode("ascii")
    headers = {
        "Content-Type": content_type,
        "Content-Length": str(len(content)),
        "X-JFT-Manifest": manifest_b64,
        "X-JFT-Signature": manifest.get("hmac", ""),
        "X-JFT-Key-Id": manifest.get("key_id", ""),
        "Idempotency-Key": idempotency_key,
        "User-Agent": "jingfangtong-exchange/1",
    }
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    connection = http.client.HTTPSConnection(
        parts.hostname, parts.port or 443, timeout=timeout, context=ssl_context(ca_pem)
    )
    try:
        connection.request("POST", path, body=content, headers=headers)
        response = connection.getresponse()
        response.read()
        status = response.status
    except (OSError, http.client.HTTPException) as exc:  # ssl.SSLError is an OSError
        raise DeliveryError(f"{type(exc).__name__}: {exc}"[:300]) from exc
    finally:
        connection.close()
    if not 200 <= status < 300:
        raise DeliveryError(f"HTTP {status}")
    return status
