.PHONY: run test vet interop bench
run:
	go run ./cmd/acmed
test:
	go test -count=1 ./...
vet:
	gofmt -l . && go vet ./...
# real clients (certbot, lego, Caddy, cert-manager's ACME client) against acmed;
# tools.sh installs or builds the client programs first
interop:
	bash integration/interop/tools.sh
	cd integration/interop && go test -count=1 -timeout 20m ./...
	cd integration/certmanager && go test -count=1 -timeout 10m ./...
# benchmarks: Go hot paths and crypto floor, then acmebench (embedded and Redis, c=1/8/32;
# embedded with the CA key in SoftHSM2, --ca-backend pkcs11) -> bench-results/
bench:
	bash integration/bench.sh
