package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/acmed/acmed/ca"
)

func (c config) importing() bool {
	return c.ImportRoot != "" || c.ImportIntermediate != "" || c.ImportKey != ""
}

// checkImport refuses a partial import: a root without its intermediate,
// or an intermediate without its key, is not a CA acmed can issue from.
func (c config) checkImport() error {
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
