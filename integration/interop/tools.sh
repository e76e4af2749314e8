#!/usr/bin/env bash
# Installs the real ACME clients the interop tests drive, when missing:
#   certbot, caddy (Debian's 2.6.2), redis-server, curl   from apt
#   lego 4.35.2, Caddy 2.11.9                             built from the Go module proxy into .bin/
# Idempotent: a tool that is there (with the right version) is left alone.
# Needs no network but Debian's mirrors and the Go module proxy.
# INTEROP_BIN (an absolute path) puts the built clients elsewhere than .bin;
# the tests read it too.
set -euo pipefail

LEGO_VERSION=v4.35.2
CADDY_VERSION=v2.11.9

here=$(cd "$(dirname "$0")" && pwd)
BIN=${INTEROP_BIN:-$here/.bin}
mkdir -p "$BIN"
export PATH="$PATH:/usr/local/go/bin"

# --- apt -------------------------------------------------------------------
missing=()
for pair in certbot:certbot caddy:caddy redis-server:redis-server redis-cli:redis-tools curl:curl; do
  cmd=${pair%%:*} pkg=${pair#*:}
  if command -v "$cmd" >/dev/null 2>&1; then
    echo "tools: $cmd: present ($(command -v "$cmd"))"
  else
    echo "tools: $cmd: missing, installing Debian package $pkg"
    missing+=("$pkg")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "tools: need root for apt-get install ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  start=$SECONDS
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
  # Debian's caddy package starts a systemd service where systemd runs; the
  # tests run their own Caddy, so a packaged one must not hold the ports.
  echo "tools: apt-get install ${missing[*]}: $((SECONDS - start))s"
fi

# --- Go builds -------------------------------------------------------------
# Each is built in a scratch module in a temp dir, so the project's go.mod
# never sees the clients' dependencies. What go prints goes to a log that is
# shown only if the build fails.

# go_build NAME OUTPUT MODULE@VERSION PACKAGE WANT-REGEX MAIN-GO VERSION-ARGS...
# builds PACKAGE of MODULE@VERSION, or with MAIN-GO set, a main package of
# that text in the scratch module (PACKAGE "."), unless OUTPUT exists and
# `OUTPUT VERSION-ARGS` prints something matching WANT-REGEX.
go_build() {
  local name=$1 out=$2 modver=$3 pkg=$4 want=$5 main=$6
  shift 6
  if [ -x "$out" ] && "$out" "$@" 2>/dev/null | grep -Eq "$want"; then
    echo "tools: $name: present ($out)"
    return
  fi
  echo "tools: $name: building $modver into $out"
  local start=$SECONDS scratch
  scratch=$(mktemp -d)
  if ! (
    cd "$scratch"
    export GOFLAGS=-mod=mod GOTOOLCHAIN=local
    go mod init interop-tools-scratch
    if [ -n "$main" ]; then printf '%s\n' "$main" > main.go; fi
    go get "$modver"
    go build -trimpath -o "$out.tmp" "$pkg"
  ) > "$scratch.log" 2>&1; then
    cat "$scratch.log" >&2
    rm -rf "$scratch" "$scratch.log" "$out.tmp"
    echo "tools: $name: build failed" >&2
    exit 1
  fi
  rm -rf "$scratch" "$scratch.log"
  mv "$out.tmp" "$out"
  if ! "$out" "$@" 2>&1 | grep -Eq "$want"; then
    echo "tools: $name: built, but '$out $*' does not match $want:" >&2
    "$out" "$@" >&2 || true
    exit 1
  fi
  echo "tools: $name: built in $((SECONDS - start))s"
}

go_build lego "$BIN/lego" "github.com/go-acme/lego/v4/cmd/lego@$LEGO_VERSION" \
  github.com/go-acme/lego/v4/cmd/lego "version ${LEGO_VERSION}([+ ]|$)" "" --version

# Caddy takes its version from the build info of the caddy module as a
# dependency: built as the main module (go build .../cmd/caddy@v2.11.9) it
# says "unknown". So, as xcaddy does, a main package of our own runs it.
CADDY_MAIN='package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func main() { caddycmd.Main() }'
go_build caddy-2.11 "$BIN/caddy-2.11" "github.com/caddyserver/caddy/v2@$CADDY_VERSION" \
  . "^${CADDY_VERSION}( |$)" "$CADDY_MAIN" version

# --- versions --------------------------------------------------------------
echo "tools: versions:"
echo "  certbot      $(certbot --version 2>&1 | head -1)"
echo "  caddy        $(caddy version 2>&1 | head -1)"
echo "  caddy-2.11   $("$BIN/caddy-2.11" version 2>&1 | head -1)"
echo "  lego         $("$BIN/lego" --version 2>&1 | head -1)"
echo "  redis-server $(redis-server --version 2>&1 | head -1)"
echo "  curl         $(curl --version 2>&1 | head -1)"
