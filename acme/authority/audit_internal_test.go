package authority

import (
	"errors"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/acmed/acmed/acme/audit"
)

// TestAuditEntry: the attributes audit events carry map to actor,
// subject and details by name.
func TestAuditEntry(t *testing.T) {
	acct := func(id string) audit.Party { return audit.Party{Kind: audit.KindAccount, ID: id} }
	subj := func(kind, id string) *audit.Party { return &audit.Party{Kind: kind, ID: id} }
	boom := errors.New("boom")
	for _, tc := range []struct {
		event   string
		attrs   []any
		actor   audit.Party
		subject *audit.Party
		details map[string]any
	}{
		{"account.create", []any{"account", "a1", "contact", []string{"mailto:x@example"}, "key", "tp"},
			acct("a1"), subj("account", "a1"), map[string]any{"contact": []string{"mailto:x@example"}, "key": "tp"}},
		{"account.create", []any{"account", "a1", "key", "tp", "eab_kid", "k1", "eab_name", "team"},
			audit.Party{Kind: audit.KindEAB, ID: "k1"}, subj("account", "a1"), map[string]any{"key": "tp", "eab_name": "team"}},
		{"account.keychange", []any{"account", "a1", "old_key", "o", "new_key", "n"},
			acct("a1"), subj("account", "a1"), map[string]any{"old_key": "o", "new_key": "n"}},
		{"order.create", []any{"account", "a1", "order", "o1", "identifiers", []string{"a.example"}},
			acct("a1"), subj("order", "o1"), map[string]any{"identifiers": []string{"a.example"}}},
		{"authorization.prevalidate", []any{"account", "a1", "authz", "z1", "eab_kid", "k1"},
			acct("a1"), subj("authorization", "z1"), map[string]any{"eab_kid": "k1"}},
		{"certificate.issue", []any{"account", "a1", "order", "o1", "serial", "a0b", "replaces", "F00D"},
			acct("a1"), subj("certificate", "0a0b"), map[string]any{"order": "o1", "replaces": "f00d"}},
		{"certificate.revoke", []any{"serial", "0a0b", "reason", 1, "requester", ByAccount, "account", "a1"},
			acct("a1"), subj("certificate", "0a0b"), map[string]any{"reason": 1, "requester": ByAccount}},
		{"certificate.revoke", []any{"serial", "0a0b", "reason", 1, "requester", ByAuthorizations, "account", "a2"},
			acct("a2"), subj("certificate", "0a0b"), map[string]any{"reason": 1, "requester": ByAuthorizations}},
		{"certificate.revoke", []any{"serial", "0a0b", "reason", 1, "requester", ByKey, "blocked_key", "h"},
			audit.Party{Kind: audit.KindCertKey}, subj("certificate", "0a0b"), map[string]any{"reason": 1, "requester": ByKey, "blocked_key": "h"}},
		{"admin.accounts.deactivate", []any{"caller", "token", "account", "a1", "changed", true},
			audit.Party{Kind: audit.KindAdmin, ID: "token"}, subj("account", "a1"), map[string]any{"changed": true}},
		{"admin.eab.create", []any{"caller", "CN=ops", "eab_kid", "k1", "name", "team"},
			audit.Party{Kind: audit.KindAdmin, ID: "CN=ops"}, subj("eab", "k1"), map[string]any{"name": "team"}},
		{"admin.backup", []any{"caller", "token", "err", boom, slog.Int("bytes", 3)},
			audit.Party{Kind: audit.KindAdmin, ID: "token"}, nil, map[string]any{"err": boom, "bytes": int64(3)}},
		{"odd", []any{"lonely"}, audit.Party{}, nil, map[string]any{"!BADKEY": "lonely"}},
	} {
		t.Run(tc.event, func(t *testing.T) {
			now := time.Unix(1, 0)
			e := auditEntry(now, tc.event, tc.attrs)
			want := audit.Entry{Time: now, Event: tc.event, Actor: tc.actor, Subject: tc.subject, Details: tc.details}
			if !reflect.DeepEqual(e, want) {
				t.Errorf("auditEntry(%v)\n= %+v %+v\nwant %+v %+v", tc.attrs, e, e.Subject, want, want.Subject)
			}
		})
	}
}
