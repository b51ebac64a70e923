"""Builds the `wondertwin` wheel for this platform, with the standard
library only (no network, no build backend): the package, a `wt-host`
binary and the twins' components, tagged `py3-none-<platform>` because of
the binary (the pattern of ruff and uv).

    python3 dist/python/build_wheel.py --binary target/release/wt-host \
        --twins target/twins --out target/dist/python

Prints the wheel's path.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import pathlib
import sysconfig
import zipfile

HERE = pathlib.Path(__file__).resolve().parent
NAME = "wondertwin"


def platform_tag() -> str:
    # `linux-x86_64` -> `linux_x86_64`, `macosx-11.0-arm64` -> `macosx_11_0_arm64`.
    return sysconfig.get_platform().replace("-", "_").replace(".", "_")


def record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True, type=pathlib.Path, help="the wt-host to bundle")
    parser.add_argument("--twins", required=True, type=pathlib.Path, help="a folder of twin .wasm files")
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument("--version", default="0.1.0")
    parser.add_argument("--skip", action="append", default=["hello"], help="twins not to bundle")
    args = parser.parse_args()

    dist_info = f"{NAME}-{args.version}.dist-info"
    wheel_name = f"{NAME}-{args.version}-py3-none-{platform_tag()}.whl"
    files: list[tuple[str, bytes, int]] = []  # (name in the wheel, bytes, unix mode)
    for source in sorted((HERE / NAME).glob("*.py")):
        files.append((f"{NAME}/{source.name}", source.read_bytes(), 0o644))
    files.append((f"{NAME}/bin/wt-host", args.binary.read_bytes(), 0o755))
    twins = sorted(p for p in args.twins.glob("*.wasm") if p.stem not in args.skip)
    if not twins:
        raise SystemExit(f"build_wheel.py: no twins in {args.twins}")
    for twin in twins:
        files.append((f"{NAME}/twins/{twin.name}", twin.read_bytes(), 0o644))
    metadata = (
        "Metadata-Version: 2.1\n"
        f"Name: {NAME}\n"
        f"Version: {args.version}\n"
        "Summary: Behavioral API twins (Stripe, Twilio, Clerk, Resend, PostHog, logo.dev) for tests\n"
        "License: Apache-2.0\n"
        "Requires-Python: >=3.9\n"
    )
    files.append((f"{dist_info}/METADATA", metadata.encode(), 0o644))
    wheel = (
        "Wheel-Version: 1.0\n"
        "Generator: wondertwin build_wheel.py\n"
        "Root-Is-Purelib: false\n"
        f"Tag: py3-none-{platform_tag()}\n"
    )
    files.append((f"{dist_info}/WHEEL", wheel.encode(), 0o644))
    entry_points = "[pytest11]\nwondertwin = wondertwin.pytest_plugin\n"
    files.append((f"{dist_info}/entry_points.txt", entry_points.encode(), 0o644))
    record = [record_line(name, data) for name, data, _ in files]
    record.append(f"{dist_info}/RECORD,,")
    files.append((f"{dist_info}/RECORD", ("\n".join(record) + "\n").encode(), 0o644))

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / wheel_name
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, data, mode in files:
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    print(path)


if __name__ == "__main__":
    main()
