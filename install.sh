#!/bin/sh
# Installs wt-host from a GitHub release:
#
#   curl -fsSL https://github.com/wondertwin/wt/releases/latest/download/install.sh | sh
#
# Detects the OS and CPU, downloads the matching archive and checksums.txt,
# verifies the archive's sha256 before unpacking anything, and installs the
# binary to $WT_BIN_DIR, else /usr/local/bin when writable, else ~/.local/bin.
#
#   WT_VERSION=0.1.0        a version instead of the latest release
#   WT_BIN_DIR=DIR          where to put wt-host
#   WT_DOWNLOAD_URL=URL     the releases URL (default https://github.com/wondertwin/wt/releases)
set -eu

base="${WT_DOWNLOAD_URL:-https://github.com/wondertwin/wt/releases}"
version="${WT_VERSION:-latest}"

fail() { echo "install.sh: $*" >&2; exit 1; }

case "$(uname -s)" in
  Linux) os=linux ;;
  Darwin) os=darwin ;;
  *) fail "unsupported OS $(uname -s) (wt-host ships for Linux and macOS)" ;;
esac
case "$(uname -m)" in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) fail "unsupported CPU $(uname -m) (wt-host ships for amd64 and arm64)" ;;
esac

if [ "$version" = latest ]; then
  url="$base/latest/download"
else
  url="$base/download/v${version#v}"
fi

fetch() { # URL FILE
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL --proto '=http,https' -o "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then
    wget -q -O "$2" "$1"
  else
    fail "needs curl or wget"
  fi
}

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then
    shasum -a 256 "$1" | cut -d' ' -f1
  else
    fail "needs sha256sum or shasum to verify the download"
  fi
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT INT TERM

fetch "$url/checksums.txt" "$tmp/checksums.txt" || fail "cannot download $url/checksums.txt"
line="$(grep "wt-host_.*_${os}_${arch}\.tar\.gz\$" "$tmp/checksums.txt" | head -n 1 || true)"
[ -n "$line" ] || fail "no wt-host archive for ${os}/${arch} in $url/checksums.txt"
expected="$(echo "$line" | cut -d' ' -f1)"
archive="$(echo "$line" | awk '{print $2}')"

fetch "$url/$archive" "$tmp/$archive" || fail "cannot download $url/$archive"
actual="$(sha256 "$tmp/$archive")"
[ "$actual" = "$expected" ] || fail "checksum mismatch for $archive: expected $expected, got $actual; nothing was installed"

mkdir -p "$tmp/unpacked"
tar -xzf "$tmp/$archive" -C "$tmp/unpacked" wt-host || fail "$archive does not contain wt-host"

if [ -n "${WT_BIN_DIR:-}" ]; then
  dir="$WT_BIN_DIR"
elif [ -w /usr/local/bin ]; then
  dir=/usr/local/bin
else
  dir="$HOME/.local/bin"
fi
mkdir -p "$dir"
# Copy then rename, so a running wt-host is never left half-written.
cp "$tmp/unpacked/wt-host" "$dir/.wt-host.new"
chmod 755 "$dir/.wt-host.new"
mv -f "$dir/.wt-host.new" "$dir/wt-host"
echo "installed $("$dir/wt-host" version | head -n 1) to $dir/wt-host"
case ":$PATH:" in
  *":$dir:"*) ;;
  *) echo "note: $dir is not on your PATH" ;;
esac
