package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/acmed/acmed/acme/admin"
)

// caCommands are `acmed admin ca list` and `acmed admin ca rotate`: the
// CA's intermediates (issue 17's rotation).
func caCommands() []adminCommand {
	return []adminCommand{
		{name: "ca list", bind: func(*flag.FlagSet) adminRun { return caList }},
		{name: "ca rotate", bind: bindCARotate},
	}
}

func caList(ctx context.Context, cl *adminClient, _ []string) (any, func(io.Writer), error) {
	var l admin.IssuerList
	if err := cl.do(ctx, "GET", "/ca/issuers", nil, &l); err != nil {
		return nil, nil, err
	}
	return l, func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSTATE\tNOT BEFORE\tNOT AFTER\tKEY\tSUBJECT\tCRL\tSHA-256")
		for _, i := range l.Issuers {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", i.Name, i.State, i.NotBefore.Format(time.RFC3339),
				i.NotAfter.Format(time.RFC3339), i.Key, i.Subject, i.CRL, colonHex(i.Fingerprint))
		}
		tw.Flush()
	}, nil
}

// bindCARotate: with no flag a new key and intermediate signed with
// --data's root.key on the server; --cert and --key install one signed
// elsewhere (an offline root); --key-label names the key in a PKCS#11
// token.
func bindCARotate(fs *flag.FlagSet) adminRun {
	certFile := fs.String("cert", "", "PEM file of an intermediate signed by the root elsewhere, to install (with --key, or --key-label for pkcs11)")
	keyFile := fs.String("key", "", "PEM file of --cert's private key (ECDSA or RSA; PKCS#8, SEC1 or PKCS#1), file backend")
	keyLabel := fs.String("key-label", "", "pkcs11 backend: the token label of --cert's key, or of the key to generate (default --pkcs11-key-label-N)")
	return func(ctx context.Context, cl *adminClient, _ []string) (any, func(io.Writer), error) {
		var req admin.RotateRequest
		switch {
		case *keyFile != "" && *certFile == "":
			return nil, nil, fmt.Errorf("admin ca rotate: --key %s: needs --cert (the intermediate signed for it)", *keyFile)
		case *certFile != "" && *keyFile == "" && *keyLabel == "":
			return nil, nil, fmt.Errorf("admin ca rotate: --cert %s: needs --key (or --key-label with --ca-backend pkcs11)", *certFile)
		}
		for _, f := range []struct {
			flag, path string
			into       *string
		}{{"--cert", *certFile, &req.CertPEM}, {"--key", *keyFile, &req.KeyPEM}} {
			if f.path == "" {
				continue
			}
			b, err := os.ReadFile(f.path)
			if err != nil {
				return nil, nil, fmt.Errorf("admin ca rotate: %s: %v", f.flag, err)
			}
			*f.into = string(b)
		}
		req.KeyLabel = *keyLabel
		body, err := json.Marshal(req)
		if err != nil {
			return nil, nil, err
		}
		var i admin.Issuer
		if err := cl.doBody(ctx, "POST", "/ca/rotate", nil, body, &i); err != nil {
			return nil, nil, err
		}
		return i, func(w io.Writer) {
			fmt.Fprintf(w, "issuer %s is active: %s, valid until %s, key %s\n", i.Name, i.Subject, i.NotAfter.Format(time.RFC3339), i.Key)
			fmt.Fprintf(w, "every replica signs with it within %s; the previous issuer's certificates keep their CRL and OCSP answers\n", issuerPoll)
			if i.CRL != "" {
				fmt.Fprintf(w, "CRL: %s\n", i.CRL)
			}
		}, nil
	}
}
