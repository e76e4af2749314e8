module github.com/acmed/acmed/integration/certmanager

go 1.26.8

replace github.com/acmed/acmed => ../..

require github.com/cert-manager/cert-manager v1.21.2 // indirect
