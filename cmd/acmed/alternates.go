package main

import (
	"crypto/x509"
	"flag"
	"log/slog"

	"github.com/acmed/acmed/ca"
)

// alternateFlags configure alternate chains (RFC 8555 §7.4.2): bundles
// whose first certificate is an issuer cross-signed by another root.
type alternateFlags struct {
	AlternateChains stringList
}

func addAlternateFlags(fs *flag.FlagSet, a *alternateFlags) {
	fs.Var(&a.AlternateChains, "alternate-chain",
		"serve: PEM bundle offered to clients as an alternate chain: a cross-signed version of the intermediate (same subject and key, signed by another root), then the certificates above it; repeatable")
}

// loadAlternates checks the --alternate-chain bundles against the
// issuers l signs with, before anything is served: a bundle that does
// not fit would hand clients a chain that does not verify.
func loadAlternates(c config, issuers []*x509.Certificate, log *slog.Logger) (*ca.Alternates, error) {
	alts, err := ca.LoadAlternates(c.AlternateChains, issuers, ca.Config{})
	if err != nil {
		return nil, err
	}
	for _, f := range c.AlternateChains {
		log.Info("serving an alternate chain", "file", f)
	}
	return alts, nil
}
