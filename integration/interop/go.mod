module github.com/acmed/acmed/integration/interop

go 1.26.8

require github.com/acmed/acmed v0.0.0

require (
	github.com/miekg/dns v1.1.73 // indirect
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)

replace github.com/acmed/acmed => ../..
