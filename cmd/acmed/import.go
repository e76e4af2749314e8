package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/acmed/acmed/ca"
)

func (c config) importing() bool {
	return !c.installing() && (c.ImportRoot != "" || c.ImportIntermediate != "" || c.ImportKey != "")
}

// installing is the offline-root flow's second step: --intermediate-cert
// with --import-root, the key being the one --intermediate-csr made.
func (c config) installing() bool { return c.IntermediateCert != "" }

// checkImport refuses a partial import: a root without its intermediate,
// or an intermediate without its key, is not a CA acmed can issue from.
// It also keeps the offline-root flow's two steps apart from each other
// and from a full import.
func (c config) checkImport() error {
	switch {
	case c.IntermediateCSR != "" && (c.installing() || c.ImportRoot != "" || c.ImportIntermediate != "" || c.ImportKey != ""):
		return errors.New("--intermediate-csr: not with --intermediate-cert or --import-*; it is the first step, before the root has signed")
	case c.installing() && c.ImportRoot == "":
		return errors.New("--import-root: missing; --intermediate-cert needs the root that signed it")
	case c.installing() && (c.ImportIntermediate != "" || c.ImportKey != ""):
		return errors.New("--intermediate-cert: not with --import-intermediate or --import-key; its key is the one --intermediate-csr made")
	}
	if !c.importing() {
		return nil
	}
	for _, f := range []struct{ name, value string }{
		{"--import-root", c.ImportRoot},
		{"--import-intermediate", c.ImportIntermediate},
		{"--import-key", c.ImportKey},
	} {
		if f.value == "" {
			return fmt.Errorf("%s: missing; --import-root, --import-intermediate and --import-key go together", f.name)
		}
	}
	return nil
}

// importCA installs an existing CA into --data (ca.Import checks it).
func importCA(c config, stdout io.Writer) error {
	err := ca.Import(c.Data, ca.ImportFiles{Root: c.ImportRoot, Intermediate: c.ImportIntermediate, Key: c.ImportKey}, ca.Config{})
	if errors.Is(err, ca.ErrExists) && c.ExistOK {
		fmt.Fprintf(stdout, "CA already imported in %s\n", c.Data)
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "imported CA into %s (root certificate %s)\n", c.Data, filepath.Join(c.Data, ca.RootCertFile))
	return nil
}

// intermediateCSR is the offline-root flow's first step: the
// intermediate's key (a file in --data, or in the token) and a CSR for it.
func intermediateCSR(c config, stdout io.Writer) error {
	var err error
	where := filepath.Join(c.Data, ca.IntermediateKeyFile)
	if c.CABackend == backendPKCS11 {
		err = ca.PKCS11IntermediateCSR(c.Data, ca.Config{}, c.PKCS11, c.IntermediateCSR)
		where = fmt.Sprintf("%q in token %q", c.PKCS11.KeyLabel, c.PKCS11.TokenLabel)
	} else {
		err = ca.IntermediateCSR(c.Data, ca.Config{}, c.IntermediateCSR)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote the intermediate's CSR to %s (key %s); have your root sign it as a CA with certSign, then run acmed init --intermediate-cert CERT --import-root ROOT\n",
		c.IntermediateCSR, where)
	return nil
}

// installIntermediate is the second step: the signed intermediate and its
// root go into --data once ca.InstallIntermediate has checked them.
func installIntermediate(c config, stdout io.Writer) error {
	files := ca.InstallFiles{Root: c.ImportRoot, Intermediate: c.IntermediateCert}
	var err error
	if c.CABackend == backendPKCS11 {
		signer, oerr := ca.OpenPKCS11(c.PKCS11)
		if oerr != nil {
			return oerr
		}
		defer signer.Close()
		err = ca.InstallIntermediate(c.Data, files, signer, fmt.Sprintf("--pkcs11-key-label %q", c.PKCS11.KeyLabel), ca.Config{})
	} else {
		err = ca.InstallIntermediate(c.Data, files, nil, "", ca.Config{})
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "installed intermediate %s under root %s in %s\n", c.IntermediateCert, c.ImportRoot, c.Data)
	return nil
}
