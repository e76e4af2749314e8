module github.com/acmed/acmed/integration/interop

go 1.26.8

require github.com/acmed/acmed v0.0.0

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/miekg/dns v1.1.73 // indirect
	github.com/redis/go-redis/v9 v9.23.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)

replace github.com/acmed/acmed => ../..
