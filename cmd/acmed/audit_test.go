package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acmed/acmed/acme/audit"
)

// writeChain writes a chain of n records to a new file.
func writeChain(t *testing.T, n int) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.Open(file, audit.Options{Replica: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := l.Append(context.Background(), audit.Entry{Event: "e"}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	return file
}

// TestAuditVerifyCommand: `acmed admin audit verify` needs no admin flag,
// variable or server; its verdict is one line.
func TestAuditVerifyCommand(t *testing.T) {
	file := writeChain(t, 3)
	var out bytes.Buffer
	if err := run(t.Context(), []string{"admin", "audit", "verify", file}, &out, &out, env(nil)); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "intact: 3 records, replica r1, last seq 3, last hash ") || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("verify printed %q", out.String())
	}
	hash := strings.TrimSpace(out.String()[strings.LastIndex(out.String(), " "):])

	out.Reset()
	if err := run(t.Context(), []string{"admin", "audit", "verify", "--json", file}, &out, &out, env(nil)); err != nil {
		t.Fatal(err)
	}
	var v struct {
		Intact   bool   `json:"intact"`
		Records  int    `json:"records"`
		LastHash string `json:"last_hash"`
	}
	if err := json.Unmarshal(out.Bytes(), &v); err != nil || !v.Intact || v.Records != 3 || v.LastHash != hash {
		t.Fatalf("verify --json printed %s (%v)", out.String(), err)
	}

	raw, _ := os.ReadFile(file)
	cut := filepath.Join(t.TempDir(), "cut.log")
	lines := strings.SplitAfter(string(raw), "\n")
	if err := os.WriteFile(cut, []byte(lines[0]+lines[1]), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"anchor holds", []string{file, "--anchor", "3:" + hash}, ""},
		{"last record removed", []string{cut, "--anchor", "3:" + hash}, cut + ": broken: line 2: the chain ends at seq 2, before the anchor's seq 3"},
		{"bad anchor", []string{file, "--anchor", "3"}, `--anchor "3": want SEQ:HASH`},
		{"no file", []string{filepath.Join(t.TempDir(), "none")}, "no such file"},
		{"no argument", nil, "want 1 argument(s) (FILE)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(t.Context(), append([]string{"admin", "audit", "verify"}, tc.args...), &bytes.Buffer{}, &bytes.Buffer{}, env(nil))
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n")) {
				t.Fatalf("verify %v: %v, want %q", tc.args, err, tc.want)
			}
		})
	}
}

func TestConfigReplicaName(t *testing.T) {
	for _, tc := range []struct {
		name, want string
	}{
		{"ca-1", ""},
		{"a\tb", "--replica-name: replica name"},
		{strings.Repeat("x", 256), "--replica-name: replica name"},
	} {
		_, err := loadConfig("serve", []string{"--replica-name", tc.name}, env(nil))
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)) {
			t.Errorf("--replica-name %q: %v, want %q", tc.name, err, tc.want)
		}
	}
}
