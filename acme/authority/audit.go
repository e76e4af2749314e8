package authority

import (
	"context"
	"log/slog"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/audit"
)

// AuditSink receives each audit event as a record of its own, besides
// its log line; *audit.Log keeps them in a hash chain (--audit-log).
// Append returns once the record is durable.
type AuditSink interface {
	Append(ctx context.Context, e audit.Entry) error
}

// audit records an event operators must be able to reconstruct: issuance,
// revocation, account changes, admin actions. The log line always; the
// chained record too when a sink is configured. The action has happened
// when this is called, so a record the sink cannot write is an error in
// the log, not the request's: a sink that loses its chain's end says so
// itself (audit.Log.Broken), and acmed stops.
func (a *Authority) audit(ctx context.Context, event string, attrs ...any) {
	a.log.InfoContext(ctx, "audit", append([]any{"event", event}, attrs...)...)
	if a.cfg.Audit == nil {
		return
	}
	if err := a.cfg.Audit.Append(context.WithoutCancel(ctx), auditEntry(a.now(), event, attrs)); err != nil {
		a.log.ErrorContext(ctx, "audit record not written", "event", event, "err", err)
	}
}

// actorIsEAB lists the events whose actor is the EAB key that authorized
// them rather than the account they name.
var actorIsEAB = map[string]bool{"account.create": true}

// subjectKeys are the attributes that name an event's subject, the first
// one present winning: an issuance is about its certificate, not its
// order; an admin action on an account about that account.
var subjectKeys = []struct{ key, kind string }{
	{"serial", "certificate"},
	{"authz", "authorization"},
	{"order", "order"},
	{"campaign", "campaign"},
	{"eab_kid", "eab"},
	{"account", "account"},
}

// auditEntry maps an event's attributes by name: the admin caller, the
// EAB key or the account is the actor; the first subjectKeys attribute
// the subject; the rest are details. Serials are in acme.SerialHex form.
func auditEntry(now time.Time, event string, attrs []any) audit.Entry {
	details := attrMap(attrs)
	for _, k := range []string{"serial", "replaces"} {
		if s, ok := details[k].(string); ok {
			if canonical, ok := acme.NormalizeSerial(s); ok {
				details[k] = canonical
			}
		}
	}
	e := audit.Entry{Time: now, Event: event, Details: details}
	take := func(key string) (string, bool) {
		s, ok := details[key].(string)
		if !ok || s == "" {
			return "", false
		}
		delete(details, key)
		return s, true
	}
	caller, _ := details["caller"].(string)
	kid, _ := details["eab_kid"].(string)
	account, _ := details["account"].(string)
	switch {
	case caller != "":
		e.Actor = audit.Party{Kind: audit.KindAdmin, ID: caller}
		delete(details, "caller")
	case actorIsEAB[event] && kid != "":
		e.Actor = audit.Party{Kind: audit.KindEAB, ID: kid}
		delete(details, "eab_kid")
	case account != "":
		// Left in details until the subject is chosen: an account acting
		// on itself is also the subject.
		e.Actor = audit.Party{Kind: audit.KindAccount, ID: account}
	case details["requester"] == ByKey:
		// revokeCert signed by the certificate's own key: no account.
		e.Actor = audit.Party{Kind: audit.KindCertKey}
	}
	for _, s := range subjectKeys {
		if id, ok := take(s.key); ok {
			e.Subject = &audit.Party{Kind: s.kind, ID: id}
			break
		}
	}
	if e.Actor.Kind == audit.KindAccount {
		delete(details, "account")
	}
	return e
}

// attrMap is attrs (slog's key, value pairs or slog.Attrs) as a map.
func attrMap(attrs []any) map[string]any {
	m := make(map[string]any, len(attrs)/2)
	for len(attrs) > 0 {
		switch k := attrs[0].(type) {
		case slog.Attr:
			m[k.Key] = k.Value.Resolve().Any()
			attrs = attrs[1:]
		case string:
			if len(attrs) == 1 {
				m["!BADKEY"] = k
				return m
			}
			v := attrs[1]
			if lv, ok := v.(slog.LogValuer); ok {
				v = slog.AnyValue(lv).Resolve().Any()
			}
			m[k] = v
			attrs = attrs[2:]
		default:
			m["!BADKEY"] = k
			attrs = attrs[1:]
		}
	}
	return m
}

// identifierValues are ids as audit events list them.
func identifierValues(ids []acme.Identifier) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.Value
	}
	return out
}
