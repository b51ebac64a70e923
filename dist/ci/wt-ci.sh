#!/bin/sh
# Twins for a CI job: what the GitHub Action (action.yml) and the GitLab
# snippet (README, "In CI") run.
#
#   wt-ci.sh start [TWIN...]   install registry twins named (not .wasm paths),
#                              start wt-host in the background (wt-host up),
#                              and export WT_URL and WT_<TWIN>_URL
#   wt-ci.sh stop              stop it (wt-host down)
#
# The variables go to $GITHUB_ENV when it is set (GitHub Actions), and to
# stdout as KEY=VALUE lines otherwise (a GitLab `dotenv` report, or `eval`).
# With no TWIN, the twins of ./wt.toml. Needs wt-host on PATH.
set -eu

fail() { echo "wt-ci.sh: $*" >&2; exit 1; }
command -v wt-host >/dev/null 2>&1 || fail "wt-host is not on PATH (install.sh installs it)"

export_var() { # NAME VALUE
  if [ -n "${GITHUB_ENV:-}" ]; then
    printf '%s=%s\n' "$1" "$2" >> "$GITHUB_ENV"
  else
    printf '%s=%s\n' "$1" "$2"
  fi
}

case "${1:-}" in
  start)
    shift
    names=""
    for twin in "$@"; do
      case "$twin" in
        *.wasm | */*.wasm) ;;
        *) names="$names $twin" ;;
      esac
    done
    if [ -n "$names" ]; then
      # shellcheck disable=SC2086
      wt-host install $names >&2
    elif [ "$#" -eq 0 ] && [ -f wt.toml ]; then
      wt-host install >&2 || true
    fi
    # Twins on free ports of their own: a CI runner may run other services.
    ports=""
    for twin in "$@"; do
      name=$(basename "$twin" .wasm)
      name=${name%%@*}
      ports="$ports --port $name=0"
    done
    # shellcheck disable=SC2086
    wt-host up "$@" $ports >&2
    url=$(cat .wt/host.url)
    export_var WT_URL "$url"
    # `status` prints "NAME VERSION HEALTH OWN_URL PREFIXED_URL" per twin.
    wt-host status --url "$url" | while read -r name _version _health own prefixed; do
      case "$name" in up | tenants:) continue ;; esac
      var=$(printf '%s' "$name" | tr 'a-z-' 'A-Z_')
      if [ "$own" = "-" ]; then own="$prefixed"; fi
      export_var "WT_${var}_URL" "$own"
    done
    ;;
  stop)
    wt-host down >&2
    ;;
  *)
    fail "usage: wt-ci.sh start [TWIN...] | stop"
    ;;
esac
