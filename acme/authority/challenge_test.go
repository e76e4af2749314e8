package authority_test

import (
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/authority"
)

var httpRecords = []acme.ValidationRecord{
	{URL: "http://a.example/.well-known/acme-challenge/x", Hostname: "a.example", Port: "80",
		AddressesResolved: []string{"192.0.2.1", "2001:db8::1"}, AddressUsed: "192.0.2.1"},
	{URL: "http://b.a.example/redirected", Hostname: "b.a.example", Port: "80",
		AddressesResolved: []string{"192.0.2.2"}, AddressUsed: "192.0.2.2"},
}

var dnsRecords = []acme.ValidationRecord{{Hostname: "_acme-challenge.a.example", Queries: []acme.DNSQuery{
	{Name: "_acme-challenge.a.example.", Type: "CNAME", Answers: []string{"a.validation.example."}},
	{Name: "a.validation.example.", Type: "TXT", Answers: []string{"digest"}},
}}}

// TestRespondChallenge: the client's response runs the validation; its
// outcome, with the records of what was checked, is recorded with the
// challenge and carried by the authorization's audit event. A validation
// the validator did not perform is asked again, and never fails the
// challenge.
func TestRespondChallenge(t *testing.T) {
	tests := []struct {
		name         string
		typ          acme.ChallengeType
		notPerformed int
		outcome      acme.Validation
		want         acme.Status
		wantProblem  *acme.Problem
	}{
		{"valid", acme.ChallengeHTTP01, 0, acme.Validation{Records: httpRecords}, acme.StatusValid, nil},
		{"dns-01 valid through a CNAME", acme.ChallengeDNS01, 0, acme.Validation{Records: dnsRecords}, acme.StatusValid, nil},
		{"invalid", acme.ChallengeHTTP01, 0,
			acme.Validation{Records: httpRecords, Problem: acme.IncorrectResponse("status 404, 19 bytes of text/plain")},
			acme.StatusInvalid, acme.ErrIncorrectResponse},
		{"not performed twice, then valid", acme.ChallengeHTTP01, 2, acme.Validation{Records: httpRecords}, acme.StatusValid, nil},
		{"not performed twice, then invalid", acme.ChallengeHTTP01, 2,
			acme.Validation{Problem: acme.Connection("connection refused")}, acme.StatusInvalid, acme.ErrConnection},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			acct := e.account(t)
			e.val.set(tt.notPerformed, tt.outcome)
			az := e.order(t, acct, "a.example").Authzs[0]
			if st := e.respond(t, acct, az, tt.typ).Status; st != acme.StatusPending && st != tt.want {
				t.Fatalf("authorization answered %s", st)
			}
			got := e.waitAuthz(t, acct, az.ID, tt.want)
			e.a.Drain()
			var ch *acme.Challenge
			for i := range got.Challenges {
				if got.Challenges[i].Type == tt.typ {
					ch = &got.Challenges[i]
				}
			}
			if ch.Status != tt.want {
				t.Fatalf("challenge %s, want %s", ch.Status, tt.want)
			}
			if n := e.val.callCount(); n != tt.notPerformed+1 {
				t.Fatalf("validator asked %d times, want %d", n, tt.notPerformed+1)
			}
			e.val.mu.Lock()
			keyAuth, accountID := e.val.keyAuths[0], e.val.accounts[0]
			e.val.mu.Unlock()
			if keyAuth != acme.KeyAuthorization(ch.Token, acct.KeyThumbprint) || accountID != acct.ID {
				t.Fatalf("validator got key authorization %q for account %q", keyAuth, accountID)
			}
			if tt.wantProblem != nil {
				if !errors.Is(ch.Error, tt.wantProblem) || ch.Error.Identifier == nil || ch.Error.Identifier.Value != "a.example" {
					t.Fatalf("challenge error %+v, want %s naming a.example", ch.Error, tt.wantProblem.Type)
				}
			} else if ch.Error != nil || ch.Validated.IsZero() {
				t.Fatalf("valid challenge: error %v, validated %v", ch.Error, ch.Validated)
			}
			if len(ch.ValidationRecords) != len(tt.outcome.Records) {
				t.Fatalf("challenge keeps %d validation records, want %d", len(ch.ValidationRecords), len(tt.outcome.Records))
			}
			checkAuditEvent(t, e, acct, got, ch, tt.outcome.Records)
		})
	}
}

// checkAuditEvent: one authorization.validate event, naming the account,
// authorization, identifier, challenge type, outcome and every record.
func checkAuditEvent(t *testing.T, e *env, acct *acme.Account, az *acme.Authorization, ch *acme.Challenge, records []acme.ValidationRecord) {
	t.Helper()
	events := e.logs.events(t, "authorization.validate")
	if len(events) != 1 {
		t.Fatalf("%d authorization.validate audit events, want 1", len(events))
	}
	ev := events[0]
	for k, want := range map[string]string{"account": acct.ID, "authz": az.ID, "identifier": "a.example",
		"type": string(ch.Type), "outcome": string(ch.Status)} {
		if ev[k] != want {
			t.Errorf("audit event %s = %v, want %q", k, ev[k], want)
		}
	}
	if (ch.Error != nil) != (ev["problem"] != nil) {
		t.Errorf("audit event problem %v, challenge error %v", ev["problem"], ch.Error)
	}
	recs, _ := ev["records"].([]any)
	if len(recs) != len(records) {
		t.Fatalf("audit event carries %d records, want %d: %v", len(recs), len(records), ev["records"])
	}
	for i, r := range records {
		got := recs[i].(map[string]any)
		if r.URL != "" && got["url"] != r.URL || got["hostname"] != r.Hostname {
			t.Errorf("audit record %d = %v, want %+v", i, got, r)
		}
		if r.AddressUsed != "" && got["addressUsed"] != r.AddressUsed {
			t.Errorf("audit record %d = %v, want address used %s", i, got, r.AddressUsed)
		}
		if qs, _ := got["dnsQueries"].([]any); len(qs) != len(r.Queries) {
			t.Errorf("audit record %d has %d DNS queries, want %d", i, len(qs), len(r.Queries))
		}
	}
}

// TestValidationNotPerformedBeforeTheDeadline: a validator that cannot
// perform the validation within the job's deadline leaves the challenge
// processing and the job in the store, never invalid; the store hands
// the job out again (here, on the next start) and the validation ends
// valid.
func TestValidationNotPerformedBeforeTheDeadline(t *testing.T) {
	e := newEnv(t, func(c *authority.Config) { c.JobTimeout = 50 * time.Millisecond; c.ValidationWait = -1 })
	acct := e.account(t)
	e.val.set(-1, acme.Validation{})
	az := e.order(t, acct, "a.example").Authzs[0]
	e.respond(t, acct, az, acme.ChallengeHTTP01)
	e.a.Drain() // the job gave up at its deadline

	got, err := e.a.Authorization(t.Context(), authority.CallerOf(acct), az.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != acme.StatusPending || got.Challenges[0].Status != acme.StatusProcessing || got.Challenges[0].Error != nil {
		t.Fatalf("after a validation not performed: authorization %s, challenge %s, error %v; want pending, processing, none",
			got.Status, got.Challenges[0].Status, got.Challenges[0].Error)
	}
	if n := e.val.callCount(); n < 2 {
		t.Fatalf("validator asked %d times before the deadline, want retries", n)
	}
	if ev := e.logs.events(t, "authorization.validate"); len(ev) != 0 {
		t.Fatalf("audit events for a validation that did not happen: %v", ev)
	}
	// Asking again changes nothing and queues nothing.
	if st := e.respond(t, acct, got, acme.ChallengeHTTP01).Challenges[0].Status; st != acme.StatusProcessing {
		t.Fatalf("challenge %s after a second response", st)
	}

	e.val.set(0, acme.Validation{Records: httpRecords})
	e.restart(t)
	e.run(t)
	done := e.waitAuthz(t, acct, az.ID, acme.StatusValid)
	if len(done.Challenges[0].ValidationRecords) != len(httpRecords) {
		t.Fatalf("records %v", done.Challenges[0].ValidationRecords)
	}
}

// TestValidationNotPerformedIsHandedOutAgain: on the embedded store too,
// a job whose validation was not performed by its deadline is released
// and handed out again by the running worker, until it is performed; no
// restart needed.
func TestValidationNotPerformedIsHandedOutAgain(t *testing.T) {
	e := newEnv(t, func(c *authority.Config) {
		// One try per job: the wait before a second outlasts the job.
		c.JobTimeout, c.RetryBackoff, c.ValidationWait = 50*time.Millisecond, time.Hour, -1
	})
	e.run(t)
	acct := e.account(t)
	e.val.set(2, acme.Validation{Records: httpRecords}) // each try outlasts its job's deadline
	az := e.order(t, acct, "a.example").Authzs[0]
	e.respond(t, acct, az, acme.ChallengeHTTP01)
	e.waitAuthz(t, acct, az.ID, acme.StatusValid)
	if n := e.val.callCount(); n != 3 {
		t.Fatalf("validator asked %d times, want 3 (two not performed, then valid)", n)
	}
}

// TestRespondChallengeRefusals: what a response may not do.
func TestRespondChallengeRefusals(t *testing.T) {
	e := newEnv(t, nil)
	acct, other := e.account(t), e.account(t)
	e.val.set(0, acme.Validation{Problem: acme.IncorrectResponse("no")})
	failed := e.order(t, acct, "failed.example").Authzs[0]
	e.respond(t, acct, failed, acme.ChallengeHTTP01)
	e.waitAuthz(t, acct, failed.ID, acme.StatusInvalid)
	az := e.order(t, acct, "a.example").Authzs[0]

	tests := []struct {
		name        string
		by          *acme.Account
		authz, chID string
		want        *acme.Problem
	}{
		{"another account's authorization", other, az.ID, az.Challenges[0].ID, acme.ErrUnauthorized},
		{"no such challenge", acct, az.ID, "nope", acme.ErrMalformed},
		{"no such authorization", acct, acct.ID + ".nope", "nope", acme.ErrMalformed},
		{"an invalid challenge", acct, failed.ID, failed.Challenges[0].ID, acme.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.a.RespondChallenge(t.Context(), authority.CallerOf(tt.by), tt.authz, tt.chID)
			wantProblem(t, "RespondChallenge", err, tt.want)
		})
	}
}

// TestAuditRecordsInTextLog: under the text handler acmed logs with, the
// audit event's records are JSON text with their field names, not Go's
// rendering of a struct.
func TestAuditRecordsInTextLog(t *testing.T) {
	logs := &syncBuffer{}
	e := newEnv(t, func(c *authority.Config) { c.Logger = slog.New(slog.NewTextHandler(logs, nil)) })
	acct := e.account(t)
	e.val.set(0, acme.Validation{Records: httpRecords})
	az := e.order(t, acct, "a.example").Authzs[0]
	e.respond(t, acct, az, acme.ChallengeHTTP01)
	e.waitAuthz(t, acct, az.ID, acme.StatusValid)
	e.a.Drain()
	logs.mu.Lock()
	text := logs.buf.String()
	logs.mu.Unlock()
	want := `records="[{\"url\":\"http://a.example/.well-known/acme-challenge/x\",\"hostname\":\"a.example\",\"port\":\"80\",\"addressesResolved\":[\"192.0.2.1\",\"2001:db8::1\"],\"addressUsed\":\"192.0.2.1\"}`
	if !strings.Contains(text, "event=authorization.validate") || !strings.Contains(text, want) {
		t.Fatalf("text log lacks the audit event with its records (%s):\n%s", want, text)
	}
}

// TestValidationNeverPerformedEndsAtExpiry: a job whose validation was
// never performed, handed out after its authorization expired, records
// the expiry without asking the validator, so it is not handed out for
// ever.
func TestValidationNeverPerformedEndsAtExpiry(t *testing.T) {
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	e := newEnv(t, func(c *authority.Config) {
		c.JobTimeout, c.ValidationWait, c.Now = 20*time.Millisecond, -1, now
	})
	acct := e.account(t)
	e.val.set(-1, acme.Validation{})
	az := e.order(t, acct, "a.example").Authzs[0]
	e.respond(t, acct, az, acme.ChallengeHTTP01)
	e.a.Drain()

	offset.Store(int64(25 * time.Hour)) // past the authorization's expiry
	e.val.set(0, acme.Validation{Records: httpRecords})
	e.restart(t)
	e.run(t)
	deadline := time.Now().Add(waitFor)
	for {
		stored, err := e.store.Authorization(t.Context(), az.ID)
		if err != nil {
			t.Fatal(err)
		}
		if stored.Status != acme.StatusPending {
			if stored.Status != acme.StatusInvalid || !errors.Is(stored.Challenges[0].Error, acme.ErrMalformed) {
				t.Fatalf("authorization %s, challenge error %v; want invalid, expired", stored.Status, stored.Challenges[0].Error)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("authorization still pending after %v", waitFor)
		}
		time.Sleep(time.Millisecond)
	}
	if n := e.val.callCount(); n != 0 {
		t.Fatalf("the validator was asked %d times about an expired authorization", n)
	}
}
