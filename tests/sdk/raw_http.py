"""Plain HTTP calls, for what a vendor SDK cannot express or hides.

Every suite needs a few: a malformed key the SDK refuses to send, a header
it does not expose, the exact error body. This is the one place they are
made; each suite wraps it in the shape its tests read.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from email.message import Message
from typing import NamedTuple


class Reply(NamedTuple):
    status: int
    headers: Message
    data: bytes

    @property
    def json(self):
        """The body as JSON, or None when it is empty."""
        return json.loads(self.data) if self.data else None


def call(
    url: str,
    method: str = "GET",
    *,
    bearer: str | None = None,
    basic: tuple[str, str] | None = None,
    json_body=None,
    form: dict | str | None = None,
    data: bytes | None = None,
    headers: dict | None = None,
) -> Reply:
    """One request; an HTTP error status is a Reply too, never an exception.

    The body is `json_body` (sent as JSON), `form` (a dict or an encoded
    string, sent form-encoded) or `data` (sent as is, with whatever
    Content-Type `headers` gives).
    """
    content_type = None
    if json_body is not None:
        data, content_type = json.dumps(json_body).encode(), "application/json"
    elif form is not None:
        encoded = form if isinstance(form, str) else urllib.parse.urlencode(form)
        data, content_type = encoded.encode(), "application/x-www-form-urlencoded"
    request = urllib.request.Request(url, data=data, method=method)
    if bearer is not None:
        request.add_header("Authorization", f"Bearer {bearer}")
    if basic is not None:
        token = base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    if content_type is not None:
        request.add_header("Content-Type", content_type)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as err:
        return Reply(err.code, err.headers, err.read())
