#!/usr/bin/env bash
# make bench: Go benchmarks of the hot paths and the crypto floor, then
# acmebench against a freshly started acmed with the embedded store and with
# Redis, at c=1, 8 and 32, and with the embedded store and the CA key in a
# SoftHSM2 token (--ca-backend pkcs11). Results go to bench-results/ (JSON lines for
# acmebench, benchmark text for Go).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${BENCH_OUT:-bench-results}
n=${BENCH_N:-200}
mkdir -p "$out"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/acmed" ./cmd/acmed
go build -o "$work/acmebench" ./cmd/acmebench

echo "== Go benchmarks -> $out/go-bench.txt"
go test -run XXX -bench 'CryptoFloor|ParseAndVerifyJWS|Nonce|NewOrder|Finalize|Record' -benchtime 2s ./ca/ ./acme/... ./storage/record/ | tee "$out/go-bench.txt"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# wait_for FILE PATTERN: poll a log until the pattern appears (30 s at most).
wait_for() {
  for _ in $(seq 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "bench: timed out waiting for '$2' in $1" >&2; cat "$1" >&2; return 1
}

results="$out/acmebench.jsonl"
: > "$results"

# bench_run NAME TAG C SERVE_FLAG... -- CA_FLAG...: init a CA with the
# CA flags (serve never creates one for a Redis store), serve with both,
# run acmebench at concurrency C and append its JSON line, prefixed by TAG
# ("store":…,"backend":…), to the results; then stop acmed.
bench_run() {
  local name=$1 tag=$2 c=$3; shift 3
  local serve_flags=() ca_flags=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do serve_flags+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  ca_flags=("$@")
  local data="$work/data-$name-$c" http tls dns apid dir
  http=$(free_port); tls=$(free_port); dns=$(free_port)
  "$work/acmed" init --data "$data" "${ca_flags[@]}" >/dev/null
  "$work/acmed" serve --data "$data" --listen 127.0.0.1:0 "${serve_flags[@]}" "${ca_flags[@]}" \
    --resolver "127.0.0.1:$dns" --http01-port "$http" --tlsalpn01-port "$tls" \
    > "$work/acmed-$name-$c.out" 2> "$work/acmed-$name-$c.log" &
  apid=$!
  pids+=($apid)
  wait_for "$work/acmed-$name-$c.out" "directory:"
  dir=$(awk '/directory:/ {print $2}' "$work/acmed-$name-$c.out")
  echo "== acmebench $name c=$c n=$n"
  "$work/acmebench" -dir "$dir" -ca-root "$data/root.pem" -n "$n" -c "$c" -challenge http-01 \
    -http-port "$http" -tls-port "$tls" -dns-addr "127.0.0.1:$dns" -server-pid "$apid" -timeout 5m \
    2> "$work/bench-$name-$c.err" | sed "s/^{/{$tag,/" | tee -a "$results"
  kill "$apid"; wait "$apid" 2>/dev/null || true
}

for store in embedded redis; do
  store_flag=()
  if [ "$store" = redis ]; then
    command -v redis-server >/dev/null || { echo "bench: redis-server not found, skipping Redis runs" >&2; continue; }
    rport=$(free_port)
    redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no > "$work/redis.log" 2>&1 &
    pids+=($!)
    wait_for "$work/redis.log" "Ready to accept connections"
    store_flag=(--store "redis://127.0.0.1:$rport/0")
  fi
  for c in 1 8 32; do
    [ "$store" = redis ] && redis-cli -p "$rport" flushall >/dev/null
    bench_run "$store" "\"store\":\"$store\"" "$c" "${store_flag[@]}"
  done
done

# PKCS#11: the embedded-store runs again with the intermediate's key in a
# SoftHSM2 token (--ca-backend pkcs11), beside the file key above. Their
# lines carry "backend":"pkcs11"; the lines without a backend are the file
# key's. SoftHSM2 runs inside acmed's process, so its CPU is in acmed's.
softhsm_module=/usr/lib/softhsm/libsofthsm2.so
if command -v softhsm2-util >/dev/null && [ -e "$softhsm_module" ]; then
  hsm="$work/softhsm"
  mkdir -p "$hsm/tokens"
  printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$hsm/tokens" > "$hsm/softhsm2.conf"
  export SOFTHSM2_CONF="$hsm/softhsm2.conf"
  softhsm2-util --init-token --free --label acmed-bench --pin 1234 --so-pin 5678 >/dev/null
  (umask 077; echo 1234 > "$hsm/pin")
  for c in 1 8 32; do
    bench_run pkcs11 '"store":"embedded","backend":"pkcs11"' "$c" -- \
      --ca-backend pkcs11 --pkcs11-module "$softhsm_module" --pkcs11-token-label acmed-bench \
      --pkcs11-pin-file "$hsm/pin" --pkcs11-key-label "bench-$c"
  done
else
  echo "bench: SoftHSM2 not installed (apt-get install softhsm2), skipping the PKCS#11 runs" >&2
fi

# The Vault CA backend (integration/vault/bench.sh), when Vault is built.
source integration/vault/bench.sh
vault_bench
echo "== results in $results and $out/go-bench.txt"
