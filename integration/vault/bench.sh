# Sourced by integration/bench.sh (make bench): acmebench through
# --ca-backend vault, against a Vault dev server set up as the README's
# "CA backends" shows (root and intermediate mounts, role acmed, a token
# with only sign-verbatim and revoke). acmebench's server CPU is acmed's;
# Vault's own CPU per issuance is read from /proc beside it and written as
# a line of its own. Skipped without the Vault binary
# (integration/vault/build.sh). Uses bench.sh's work, n, results, pids,
# free_port, wait_for and bench_run.

vault_bench() {
  local vault_bin=${VAULT_BIN:-integration/vault/.bin/vault}
  if [ ! -x "$vault_bin" ]; then
    echo "bench: no Vault binary ($vault_bin; bash integration/vault/build.sh), skipping the vault backend" >&2
    return 0
  fi
  local vport vdir vpid
  vport=$(free_port); vdir="$work/vault"; mkdir -p "$vdir"
  HOME="$vdir" "$vault_bin" server -dev -dev-root-token-id=bench-root -dev-listen-address="127.0.0.1:$vport" \
    -dev-no-store-token -log-level=warn > "$vdir/vault.log" 2>&1 &
  vpid=$!
  pids+=($vpid)
  for _ in $(seq 600); do curl -sf "http://127.0.0.1:$vport/v1/sys/health" >/dev/null 2>&1 && break; sleep 0.1; done
  local v=(env HOME="$vdir" VAULT_ADDR="http://127.0.0.1:$vport" VAULT_TOKEN=bench-root "$vault_bin")
  "${v[@]}" secrets enable -path=pki_root -max-lease-ttl=87600h pki >/dev/null
  "${v[@]}" write -field=certificate pki_root/root/generate/internal common_name="bench root" ttl=87600h key_type=ec key_bits=384 > "$vdir/root.pem"
  "${v[@]}" secrets enable -path=pki -max-lease-ttl=43800h pki >/dev/null
  "${v[@]}" write -field=csr pki/intermediate/generate/internal common_name="bench intermediate" key_type=ec > "$vdir/int.csr"
  "${v[@]}" write -field=certificate pki_root/root/sign-intermediate csr=@"$vdir/int.csr" ttl=43800h format=pem > "$vdir/int.pem"
  { cat "$vdir/int.pem"; echo; cat "$vdir/root.pem"; echo; } > "$vdir/chain.pem"  # -field output ends without a newline
  "${v[@]}" write pki/intermediate/set-signed certificate=@"$vdir/chain.pem" >/dev/null
  "${v[@]}" write pki/config/urls crl_distribution_points="http://127.0.0.1:$vport/v1/pki/crl" >/dev/null
  "${v[@]}" write pki/roles/acmed key_type=any max_ttl=2160h >/dev/null
  printf 'path "pki/sign-verbatim/acmed" { capabilities = ["update"] }\npath "pki/revoke" { capabilities = ["update"] }\n' |
    "${v[@]}" policy write acmed - >/dev/null
  (umask 077; "${v[@]}" token create -policy=acmed -no-default-policy -ttl=2h -field=token > "$vdir/token")
  local flags=(--ca-backend vault --vault-addr "http://127.0.0.1:$vport" --vault-role acmed --vault-token-file "$vdir/token")

  local c before after
  for c in 1 8 32; do
    before=$(awk '{print $14+$15}' "/proc/$vpid/stat")
    bench_run vault '"store":"embedded","backend":"vault"' "$c" -- "${flags[@]}"
    after=$(awk '{print $14+$15}' "/proc/$vpid/stat")
    # Vault's CPU over the run includes the one signature of acmed's own
    # HTTPS certificate at start: 1 in n, within the noise.
    awk -v d="$((after - before))" -v hz="$(getconf CLK_TCK)" -v n="$n" -v c="$c" \
      'BEGIN { printf "{\"store\":\"embedded\",\"backend\":\"vault\",\"concurrency\":%d,\"vault_cpu_ms_per_issuance\":%.3f}\n", c, d * 1000 / hz / n }' |
      tee -a "$results"
  done
}
