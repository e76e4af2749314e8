// Package ca holds acmed's certificate authority: the built-in CA whose root
// and issuing intermediate live as PEM files in a directory, and the
// certificate templates it signs with. It knows nothing about ACME accounts
// or orders; the ACME layer hands it a checked request and gets a chain back.
package ca
