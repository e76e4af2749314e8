package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/acmed/acmed/storage/embedded"
)

// backupCommands is `acmed admin backup FILE`: the embedded store's file,
// copied by the running acmed (GET /admin/v1/backup) and checked here.
// On Redis the server answers which Redis mechanism to use instead, and
// the command exits 1 with that line.
func backupCommands() []adminCommand {
	return []adminCommand{{name: "backup", args: []string{"FILE"}, bind: func(*flag.FlagSet) adminRun { return runBackup }}}
}

// backupResult is what backup prints.
type backupResult struct {
	File  string `json:"file"`
	Bytes int64  `json:"bytes"`
}

// runBackup writes beside FILE, checks the copy is whole (its announced
// length) and a valid store (Open's checks), and only then renames it to
// FILE: a failed backup never leaves a FILE that looks like one.
func runBackup(ctx context.Context, cl *adminClient, args []string) (any, func(io.Writer), error) {
	dst := args[0]
	resp, err := cl.send(ctx, "GET", "/backup", nil)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), filepath.Base(dst)+".part-*")
	if err != nil {
		return nil, nil, fmt.Errorf("backup %s: %w", dst, err)
	}
	defer os.Remove(tmp.Name()) // nothing left to remove after the rename
	n, err := io.Copy(tmp, resp.Body)
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("got %d of %d bytes", n, resp.ContentLength)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, nil, fmt.Errorf("backup %s: the transfer was cut short: %w", dst, err)
	}
	if err := embedded.CheckBackup(tmp.Name()); err != nil {
		return nil, nil, fmt.Errorf("backup %s: the copy received is not a valid store: %w", dst, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return nil, nil, fmt.Errorf("backup %s: %w", dst, err)
	}
	res := backupResult{File: dst, Bytes: n}
	return res, func(w io.Writer) {
		fmt.Fprintf(w, "wrote %s (%d bytes); restore with: acmed restore --data DIR %s\n", dst, n, dst)
	}, nil
}

// runRestore is `acmed restore [--data DIR] [--store FILE] [--json] BACKUP`,
// with acmed stopped: it checks BACKUP is a valid store and puts it in
// place of the embedded store file, refusing while an acmed holds it.
func runRestore(args []string, stdout io.Writer, getenv func(string) string) error {
	var c config
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.Data, "data", "acmed-data", "acmed's data directory")
	fs.StringVar(&c.Store, "store", "", "the embedded store file to replace (default DATA/acmed.db)")
	asJSON := fs.Bool("json", false, "print JSON")
	positional, err := parseInterleaved(fs, args, 1)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errUsage{fs}
		}
		return fmt.Errorf("restore: %v", err)
	}
	if len(positional) != 1 {
		return errors.New("restore: want one argument, the backup file (acmed restore --data DIR BACKUP)")
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, name := range []string{"data", "store"} {
		if v := getenv("ACMED_" + map[string]string{"data": "DATA", "store": "STORE"}[name]); v != "" && !set[name] {
			_ = fs.Set(name, v)
		}
	}
	if isRedisURL(c.Store) {
		return errors.New("restore --store: a Redis store is restored with Redis's own tools (its RDB or AOF file), not acmed")
	}
	target := embeddedPath(c)
	if err := embedded.Restore(positional[0], target); err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(struct {
			File         string `json:"file"`
			RestoredFrom string `json:"restored_from"`
		}{target, positional[0]})
	}
	fmt.Fprintf(stdout, "restored %s from %s; start acmed with the same --data\n", target, positional[0])
	return nil
}
