"""The logo.dev twin over plain HTTP, as an `<img src>` or a backend sees it.

logo.dev has no SDK: images are URLs (`GET /{domain}?token=pk_…`) and brand
search is `GET /search?q=…` with `Authorization: Bearer sk_…`. Pillow is not
installed, so the images are checked by parsing their own headers (PNG IHDR,
JPEG SOF, WebP VP8L) and PNG pixels by inflating IDAT with zlib.
"""

from __future__ import annotations

import json
import struct
import urllib.error
import urllib.parse
import urllib.request
import zlib

import pytest

import raw_http

PK = "pk_sdk_tests_publishable"
SK = "sk_sdk_tests_secret"


@pytest.fixture
def base(wt) -> str:
    return wt.base_url("logodev")


def fetch(base, path, headers=None, method="GET"):
    reply = raw_http.call(base + path, method, headers=headers)
    return reply.status, reply.headers, reply.data


def logo(base, target, **params):
    query = "&".join([f"token={PK}"] + [f"{k}={v}" for k, v in params.items()])
    return fetch(base, f"/{target}?{query}")


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def png_pixels(data: bytes) -> list[tuple[int, int, int]]:
    """Every pixel of an 8-bit RGB PNG without filters other than None/Sub/Up."""
    width, height = png_size(data)
    assert data[24:26] == b"\x08\x02", "8-bit RGB"
    idat, at = b"", 8
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        if kind == b"IDAT":
            idat += data[at + 8:at + 8 + length]
        at += 12 + length
    raw = zlib.decompress(idat)
    stride = width * 3 + 1
    pixels = []
    for y in range(height):
        row = raw[y * stride:(y + 1) * stride]
        assert row[0] == 0, "filter None"
        pixels += [tuple(row[1 + 3 * x:4 + 3 * x]) for x in range(width)]
    return pixels


def jpeg_size(data: bytes) -> tuple[int, int]:
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    at = 2
    while at < len(data):
        assert data[at] == 0xFF
        marker, length = data[at + 1], struct.unpack(">H", data[at + 2:at + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            height, width = struct.unpack(">HH", data[at + 5:at + 9])
            return width, height
        at += 2 + length
    raise AssertionError("no SOF marker")


def webp_size(data: bytes) -> tuple[int, int]:
    assert data[:4] == b"RIFF" and data[8:16] == b"WEBPVP8L"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    assert data[20] == 0x2F
    bits = struct.unpack("<I", data[21:25])[0]
    return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1


def size_of(headers, data) -> tuple[int, int]:
    return {"image/png": png_size, "image/jpeg": jpeg_size, "image/webp": webp_size}[
        headers["Content-Type"]](data)


def test_default_is_a_128px_jpeg_with_cache_headers(base):
    status, headers, data = logo(base, "stripe.com")
    assert status == 200
    assert headers["Content-Type"] == "image/jpeg"
    assert jpeg_size(data) == (128, 128)
    assert headers["Cache-Control"] == "public, max-age=86400"
    assert headers["ETag"].startswith('"')
    assert int(headers["Content-Length"]) == len(data)


@pytest.mark.parametrize("params,mime,side", [
    ({"format": "png"}, "image/png", 128),
    ({"format": "jpg", "size": 256}, "image/jpeg", 256),
    ({"format": "webp", "size": 64}, "image/webp", 64),
    ({"format": "png", "size": 40, "retina": "true"}, "image/png", 80),
    ({"format": "webp", "size": 100, "retina": "true"}, "image/webp", 200),
    ({"size": 4000}, "image/jpeg", 800),
    ({"format": "png", "size": 800, "retina": "true"}, "image/png", 1600),
])
def test_formats_sizes_and_retina(base, params, mime, side):
    status, headers, data = logo(base, "github.com", **params)
    assert status == 200
    assert headers["Content-Type"] == mime
    assert size_of(headers, data) == (side, side)


def test_same_url_same_bytes_and_params_change_them(base):
    _, headers, first = logo(base, "shopify.com", format="png", size=64)
    _, again_headers, again = logo(base, "shopify.com", format="png", size=64)
    assert first == again and headers["ETag"] == again_headers["ETag"]
    variants = {first}
    for params in ({"theme": "dark"}, {"theme": "light"}, {"greyscale": "true"}, {"size": 65}):
        _, _, data = logo(base, "shopify.com", format="png", **({"size": 64} | params))
        assert data not in variants, params
        variants.add(data)


def test_themes_and_greyscale_pixels(base):
    def corner(**params):
        _, _, data = logo(base, "stripe.com", format="png", size=32, **params)
        return png_pixels(data)

    auto, light, dark = corner(), corner(theme="light"), corner(theme="dark")
    assert auto[0] == (0x63, 0x5B, 0xFF)  # Stripe's colour behind the mark
    assert light[0] == (255, 255, 255)
    assert max(dark[0]) < 40
    grey = corner(greyscale="true")
    assert all(r == g == b for r, g, b in grey)
    assert len(set(grey)) > 1, "the mark survives desaturation"


def test_known_brands_are_distinct_marks(base):
    seen = {}
    for domain in ("stripe.com", "github.com", "google.com", "apple.com", "microsoft.com", "openai.com"):
        _, _, data = logo(base, domain, format="png", size=64)
        assert data not in seen.values(), domain
        seen[domain] = data


def test_monogram_fallback_and_404(base):
    status, headers, data = logo(base, "acme-widgets.io", format="png", size=70)
    assert status == 200 and png_size(data) == (70, 70)
    pixels = png_pixels(data)
    background = pixels[0]
    letter = [p for p in pixels if p != background]
    assert letter and len(set(letter)) == 1, "one letter in one colour"
    # The same letter and a hash colour per domain: another a-domain differs.
    _, _, other = logo(base, "acme-gadgets.io", format="png", size=70)
    assert png_pixels(other)[0] != background
    assert logo(base, "ACME-widgets.io", format="png", size=70)[2] == data
    status, _, body = logo(base, "acme-widgets.io", fallback="404")
    assert status == 404 and "acme-widgets.io" in json.loads(body)["error"]
    assert logo(base, "stripe.com", fallback="404")[0] == 200


def test_etag_revalidation_and_head(base):
    _, headers, data = logo(base, "nike.com")
    status, _, body = fetch(base, f"/nike.com?token={PK}", headers={"If-None-Match": headers["ETag"]})
    assert (status, body) == (304, b"")
    status, head_headers, body = fetch(base, f"/nike.com?token={PK}", method="HEAD")
    assert status == 200 and body == b"" and head_headers["ETag"] == headers["ETag"]


def test_token_errors(base):
    for path, fragment in [
        ("/stripe.com", "publishable key"),
        ("/stripe.com?token=", "publishable key"),
        (f"/stripe.com?token={SK}", "Secret keys"),
        ("/stripe.com?token=not-a-key", "Invalid"),
    ]:
        status, headers, body = fetch(base, path)
        assert status == 401, path
        assert headers["Content-Type"] == "application/json"
        assert fragment in json.loads(body)["error"], path
    status, _, body = logo(base, "stripe.com", format="svg")
    assert status == 403 and "Enterprise" in json.loads(body)["error"]


def test_lookup_by_name_and_ticker(base):
    by_domain = logo(base, "microsoft.com", format="png")[2]
    assert logo(base, "ticker/MSFT", format="png")[2] == by_domain
    assert logo(base, "name/microsoft", format="png")[2] == by_domain
    assert logo(base, "ticker/NOPE", fallback="404")[0] == 404


def test_search(base):
    status, _, body = fetch(base, "/search?q=goo", headers={"Authorization": f"Bearer {SK}"})
    assert status == 200
    results = json.loads(body)
    assert results[0] == {"name": "Google", "domain": "google.com", "logo_url": f"{base}/google.com"}
    # logo_url points back at the twin and serves the logo.
    status, headers, _ = fetch(base, urllib.parse.urlsplit(results[0]["logo_url"]).path + f"?token={PK}")
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    status, _, body = fetch(base, "/search?q=git&strategy=match", headers={"Authorization": f"Bearer {SK}"})
    assert json.loads(body) == []
    status, _, body = fetch(base, "/search?q=github&strategy=match", headers={"Authorization": f"Bearer {SK}"})
    assert [r["domain"] for r in json.loads(body)] == ["github.com"]
    status, _, body = fetch(base, "/search?q=goo")
    assert status == 401 and "secret key" in json.loads(body)["error"]
    status, _, body = fetch(base, "/search?q=goo", headers={"Authorization": f"Bearer {PK}"})
    assert status == 401
    status, _, body = fetch(base, "/search", headers={"Authorization": f"Bearer {SK}"})
    assert status == 400


def test_seeded_brands(wt, base):
    wt.reset("logodev")
    before = logo(base, "seeded-co.dev", format="png")[2]
    state = wt.control("GET", "twins/logodev/state")
    state["entries"].append({"key": "brands/seeded-co.dev",
                             "text": json.dumps({"name": "Seeded Co", "color": "#00ff00", "shape": "ring"})})
    wt.control("PUT", "twins/logodev/state", state)
    try:
        status, _, after = logo(base, "seeded-co.dev", format="png", size=32)
        assert status == 200 and after != before
        assert png_pixels(after)[0] == (0, 255, 0)
        assert logo(base, "seeded-co.dev", fallback="404")[0] == 200
        status, _, body = fetch(base, "/search?q=seeded", headers={"Authorization": f"Bearer {SK}"})
        assert [r["domain"] for r in json.loads(body)] == ["seeded-co.dev"]
        status, _, body = fetch(base, "/describe/seeded-co.dev", headers={"Authorization": f"Bearer {SK}"})
        assert status == 200 and json.loads(body)["colors"][0]["hex"] == "#00ff00"
    finally:
        wt.reset("logodev")
    assert logo(base, "seeded-co.dev", fallback="404")[0] == 404
