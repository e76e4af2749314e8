.PHONY: run test vet
run:
	go run ./cmd/acmed
test:
	go test -count=1 ./...
vet:
	gofmt -l . && go vet ./...
