#!/usr/bin/env bash
# Builds HashiCorp Vault (v1.21.1, this module's main: Vault's own CLI and
# server) for the tests of acmed's Vault CA backend, into $VAULT_BIN
# (default integration/vault/.bin/vault), where ca/vaulttest looks for it.
# Skips the build when that binary is newer than this module's files.
# Needs no network but the Go module proxy. Cold: ~7 min and ~640 MB of
# modules; warm: ~40 s.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${VAULT_BIN:-$here/.bin/vault}
export PATH="$PATH:/usr/local/go/bin"

if [ -x "$out" ] && [ -z "$(find "$here/go.mod" "$here/go.sum" "$here/main.go" -newer "$out")" ]; then
  echo "vault: present ($out)"
  exit 0
fi
echo "vault: building github.com/hashicorp/vault v1.21.1 into $out"
start=$SECONDS
mkdir -p "$(dirname "$out")"
(cd "$here" && GOTOOLCHAIN=local go build -trimpath -ldflags='-s -w' -o "$out.tmp" .)
mv "$out.tmp" "$out"
"$out" version
echo "vault: built in $((SECONDS - start))s"
