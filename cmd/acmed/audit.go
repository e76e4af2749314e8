package main

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/acmed/acmed/acme/audit"
	"github.com/acmed/acmed/acme/profile"
)

// The hash-chained audit log (--audit-log, acme/audit): opened before the
// authority, fed by it, and checked by `acmed admin audit verify`.

// openAudit opens --audit-log: a file, whose chain continues, or "-",
// standard output, where each run starts a chain of its own. The replica
// is --replica-name, else the name the file's chain already carries, else
// the host's name. nil when the flag is unset.
func openAudit(c config, stdout io.Writer) (*audit.Log, error) {
	if c.AuditLog == "" {
		return nil, nil
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "acmed"
	}
	o := audit.Options{Replica: c.ReplicaName, Fallback: host}
	var l *audit.Log
	if c.AuditLog == "-" {
		l, err = audit.New(stdout, o)
	} else {
		l, err = audit.Open(c.AuditLog, o)
	}
	if err != nil {
		if c.AuditLog != "-" && !strings.HasPrefix(err.Error(), c.AuditLog) {
			err = fmt.Errorf("%s: %w", c.AuditLog, err)
		}
		return nil, fmt.Errorf("--audit-log %w", err)
	}
	return l, nil
}

// auditServer records acmed's own start and stop in the chain, with the
// log line the authority's events have. The start carries the policy in
// force (EAB mode, identifier policy, profiles, rate limits): policy is
// configuration, so a changed policy is a start whose record differs.
type auditServer struct {
	log   *audit.Log
	slog  *slog.Logger
	start map[string]any
}

func newAuditServer(l *audit.Log, log *slog.Logger, c config, profiles *profile.Set) *auditServer {
	if l == nil {
		return nil
	}
	return &auditServer{log: l, slog: log, start: policyDetails(c, profiles)}
}

func (s *auditServer) record(ctx context.Context, event string, details map[string]any) {
	if s == nil {
		return
	}
	attrs := []any{"event", event, "replica", s.log.Replica()}
	for _, k := range sortedKeys(details) {
		attrs = append(attrs, k, details[k])
	}
	s.slog.InfoContext(ctx, "audit", attrs...)
	err := s.log.Append(ctx, audit.Entry{Event: event, Actor: audit.Party{Kind: audit.KindSystem, ID: s.log.Replica()}, Details: details})
	if err != nil {
		s.slog.ErrorContext(ctx, "audit record not written", "event", event, "err", err)
	}
}

// started records the start; seq and hash say where the chain was
// continued from (0: a new chain).
func (s *auditServer) started(ctx context.Context) {
	if s == nil {
		return
	}
	seq, hash := s.log.Head()
	s.start["continues_seq"] = seq
	if seq > 0 {
		s.start["continues_hash"] = hash
	}
	s.record(ctx, "server.start", s.start)
}

func (s *auditServer) stopped(ctx context.Context, err error) {
	d := map[string]any{}
	if err != nil {
		d["err"] = err
	}
	s.record(ctx, "server.stop", d)
}

// broken is closed if the chain can no longer be written; nil without one.
func (s *auditServer) broken() <-chan struct{} {
	if s == nil {
		return nil
	}
	return s.log.Broken()
}

// policyDetails is the policy a server.start record carries.
func policyDetails(c config, set *profile.Set) map[string]any {
	profiles := map[string]any{}
	for name := range set.Directory() {
		p := set.Get(name)
		profiles[name] = map[string]any{
			"default_validity": p.DefaultValidity.String(), "max_validity": p.MaxValidity.String(),
			"backdate": p.Backdate.String(), "key_types": p.KeyTypes, "usages": usageNames(p.ExtKeyUsage, p.KeyUsage), "max_identifiers": p.MaxIdentifiers, "identifier_types": p.IdentifierTypes,
			"common_name": p.CommonName, "spiffe": p.SPIFFE,
		}
	}
	d := map[string]any{
		"eab": c.EAB, "allow_identifiers": []string(c.AllowIdentifiers), "deny_identifiers": []string(c.DenyIdentifiers),
		"default_profile": set.Default(), "profiles": profiles, "rate_limits": c.RateLimits.String(),
		"authz_reuse": c.AuthzReuse, "cert_validity": c.certValidity().String(),
	}
	if d["eab"] == "" {
		d["eab"] = "optional"
	}
	return d
}

// usageNames are a profile's key usages in its config file's words.
func usageNames(ext []x509.ExtKeyUsage, ku x509.KeyUsage) []string {
	var out []string
	for _, name := range []string{"serverAuth", "clientAuth"} {
		if u, _ := extKeyUsage(name); slices.Contains(ext, u) {
			out = append(out, name)
		}
	}
	for _, name := range []string{"digitalSignature", "keyEncipherment", "keyAgreement"} {
		if u, _ := keyUsage(name); ku&u != 0 {
			out = append(out, name)
		}
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// auditCommands are `acmed admin audit …`: offline, on a file alone.
func auditCommands() []adminCommand {
	return []adminCommand{{name: "audit verify", args: []string{"FILE"}, bind: bindAuditVerify, offline: true}}
}

// verdict is what `audit verify --json` prints for an intact chain.
type verdict struct {
	Intact bool `json:"intact"`
	audit.Summary
}

func bindAuditVerify(fs *flag.FlagSet) adminRun {
	var anchor string
	fs.StringVar(&anchor, "anchor", "", "SEQ:HASH of a record kept elsewhere (a last hash this command printed): the chain must still hold it, which catches its last records removed or rewritten")
	return func(_ context.Context, _ *adminClient, args []string) (any, func(io.Writer), error) {
		var anchors []audit.Anchor
		if anchor != "" {
			a, err := parseAnchor(anchor)
			if err != nil {
				return nil, nil, err
			}
			anchors = append(anchors, a)
		}
		f, err := os.Open(args[0])
		if err != nil {
			return nil, nil, err
		}
		defer f.Close()
		sum, err := audit.Verify(f, anchors...)
		var le *audit.LineError
		if errors.As(err, &le) {
			return nil, nil, fmt.Errorf("%s: broken: %w", args[0], err)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", args[0], err)
		}
		return verdict{Intact: true, Summary: sum}, func(w io.Writer) {
			if sum.Records == 0 {
				fmt.Fprintf(w, "intact: 0 records (empty file)\n")
				return
			}
			fmt.Fprintf(w, "intact: %d records, replica %s, last seq %d, last hash %s\n", sum.Records, sum.Replica, sum.LastSeq, sum.LastHash)
		}, nil
	}
}

func parseAnchor(s string) (audit.Anchor, error) {
	seq, hash, ok := strings.Cut(s, ":")
	n, err := strconv.ParseUint(seq, 10, 64)
	if b, herr := hex.DecodeString(hash); !ok || err != nil || n == 0 || herr != nil || len(b) != sha256.Size {
		return audit.Anchor{}, fmt.Errorf("--anchor %q: want SEQ:HASH, e.g. 42:%s", s, strings.Repeat("ab", sha256.Size))
	}
	return audit.Anchor{Seq: n, Hash: strings.ToLower(hash)}, nil
}
