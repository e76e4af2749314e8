package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage/embedded"
)

// scriptedValidator answers "not performed" notPerformed times, then its
// outcome: the network stays out of these tests.
type scriptedValidator struct {
	notPerformed int32
	calls        atomic.Int32
	outcome      acme.Validation
}

func (v *scriptedValidator) Validate(ctx context.Context, accountID string, typ acme.ChallengeType, id acme.Identifier, token, keyAuth string) (acme.Validation, error) {
	if v.calls.Add(1) <= v.notPerformed {
		return acme.Validation{}, context.DeadlineExceeded
	}
	return v.outcome, nil
}

func fakeEnv(t *testing.T, v *scriptedValidator) *env {
	t.Helper()
	store, err := embedded.Open(filepath.Join(t.TempDir(), "acmed.db"), embedded.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := startEnv(t, store, nil, nil, v)
	e.store = store
	return e
}

// TestChallengeValidationRecord: a challenge's JSON shows what its
// validation checked, as Let's Encrypt does (validationRecord), with the
// DNS questions asked and their answers (dnsQueries); a validation not
// performed at first shows processing with Retry-After, then the outcome.
func TestChallengeValidationRecord(t *testing.T) {
	tests := []struct {
		name    string
		outcome acme.Validation
		status  string
		want    string // the validationRecord JSON
	}{
		{"http-01 with a redirect", acme.Validation{Records: []acme.ValidationRecord{
			{URL: "http://a.example/.well-known/acme-challenge/t", Hostname: "a.example", Port: "80",
				AddressesResolved: []string{"192.0.2.1", "2001:db8::1"}, AddressUsed: "192.0.2.1"},
			{URL: "https://a.example/t", Hostname: "a.example", Port: "443",
				AddressesResolved: []string{"192.0.2.1"}, AddressUsed: "192.0.2.1"},
		}}, "valid", `[
			{"url":"http://a.example/.well-known/acme-challenge/t","hostname":"a.example","port":"80","addressesResolved":["192.0.2.1","2001:db8::1"],"addressUsed":"192.0.2.1"},
			{"url":"https://a.example/t","hostname":"a.example","port":"443","addressesResolved":["192.0.2.1"],"addressUsed":"192.0.2.1"}]`},
		{"dns-01 through a CNAME, failed", acme.Validation{Records: []acme.ValidationRecord{{Hostname: "_acme-challenge.a.example",
			Queries: []acme.DNSQuery{
				{Name: "_acme-challenge.a.example.", Type: "CNAME", Answers: []string{"v.example."}},
				{Name: "v.example.", Type: "TXT"},
			}}}, Problem: acme.IncorrectResponse("no TXT record at v.example.")}, "invalid", `[
			{"hostname":"_acme-challenge.a.example","dnsQueries":[
				{"name":"_acme-challenge.a.example.","type":"CNAME","answers":["v.example."]},
				{"name":"v.example.","type":"TXT","answers":[]}]}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &scriptedValidator{notPerformed: 2, outcome: tt.outcome}
			e := fakeEnv(t, v)
			c := e.newClient()
			c.register()
			o := c.newOrder("a.example")
			var az authz
			c.must(http.StatusOK, o.Authorizations[0], nil, &az)
			ch := az.Challenges[0]
			c.must(http.StatusOK, ch.URL, map[string]any{}, nil)

			deadline := time.Now().Add(10 * time.Second)
			var got struct {
				Status           string          `json:"status"`
				ValidationRecord json.RawMessage `json:"validationRecord"`
			}
			for {
				r := c.must(http.StatusOK, ch.URL, nil, &got)
				if got.Status != "processing" {
					break
				}
				if r.header.Get("Retry-After") == "" {
					t.Fatal("processing challenge without Retry-After")
				}
				if time.Now().After(deadline) {
					t.Fatal("challenge still processing")
				}
				time.Sleep(10 * time.Millisecond)
			}
			if got.Status != tt.status {
				t.Fatalf("challenge %s, want %s", got.Status, tt.status)
			}
			var have, want any
			if err := json.Unmarshal(got.ValidationRecord, &have); err != nil {
				t.Fatalf("validationRecord %s: %v", got.ValidationRecord, err)
			}
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(have, want) {
				t.Fatalf("validationRecord\n %s\nwant\n %s", got.ValidationRecord, tt.want)
			}
			if n := v.calls.Load(); n != 3 {
				t.Fatalf("validator asked %d times, want 3", n)
			}
		})
	}
}
