module github.com/acmed/acmed/integration/interop

go 1.26.8

require github.com/acmed/acmed v0.0.0

replace github.com/acmed/acmed => ../..
