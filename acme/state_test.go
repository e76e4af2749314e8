package acme

import (
	"errors"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func authz(status Status, expires time.Time, chStatus Status) *Authorization {
	return &Authorization{ID: "a", Status: status, Expires: expires,
		Challenges: []Challenge{{ID: "c", Type: ChallengeHTTP01, Token: "t", Status: chStatus}}}
}

func TestAuthzStatus(t *testing.T) {
	tests := []struct {
		name   string
		status Status
		expiry time.Duration
		want   Status
	}{
		{"pending", StatusPending, time.Hour, StatusPending},
		{"pending expired", StatusPending, 0, StatusExpired},
		{"valid", StatusValid, time.Hour, StatusValid},
		{"valid expired", StatusValid, -time.Hour, StatusExpired},
		{"invalid stays invalid after expiry", StatusInvalid, -time.Hour, StatusInvalid},
		{"deactivated", StatusDeactivated, -time.Hour, StatusDeactivated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AuthzStatus(authz(tt.status, t0.Add(tt.expiry), StatusPending), t0); got != tt.want {
				t.Fatalf("AuthzStatus = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestStartChallenge(t *testing.T) {
	tests := []struct {
		name        string
		authz       Status
		expiry      time.Duration
		challenge   Status
		id          string
		wantStarted bool
		wantErr     error
		wantStatus  Status
	}{
		{"pending starts", StatusPending, time.Hour, StatusPending, "c", true, nil, StatusProcessing},
		{"processing is idempotent", StatusPending, time.Hour, StatusProcessing, "c", false, nil, StatusProcessing},
		{"valid is idempotent", StatusValid, time.Hour, StatusValid, "c", false, nil, StatusValid},
		{"invalid refused", StatusInvalid, time.Hour, StatusInvalid, "c", false, ErrMalformed, StatusInvalid},
		{"expired authz refused", StatusPending, -time.Second, StatusPending, "c", false, ErrMalformed, StatusPending},
		{"deactivated authz refused", StatusDeactivated, time.Hour, StatusPending, "c", false, ErrMalformed, StatusPending},
		{"unknown challenge", StatusPending, time.Hour, StatusPending, "x", false, ErrMalformed, StatusPending},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := authz(tt.authz, t0.Add(tt.expiry), tt.challenge)
			started, err := StartChallenge(a, tt.id, t0)
			if started != tt.wantStarted || !errors.Is(err, tt.wantErr) && (err != nil || tt.wantErr != nil) {
				t.Fatalf("StartChallenge = %v, %v; want %v, %v", started, err, tt.wantStarted, tt.wantErr)
			}
			if got := a.Challenges[0].Status; got != tt.wantStatus {
				t.Fatalf("challenge status %s, want %s", got, tt.wantStatus)
			}
		})
	}
}

func TestFinishChallenge(t *testing.T) {
	validUntil := t0.Add(30 * 24 * time.Hour)
	records := []ValidationRecord{{URL: "http://a.example/.well-known/acme-challenge/t", Hostname: "a.example", Port: "80",
		AddressesResolved: []string{"192.0.2.1"}, AddressUsed: "192.0.2.1"}}
	tests := []struct {
		name       string
		authz      Status
		challenge  Status
		expiry     time.Duration
		prob       *Problem
		applied    bool
		wantAuthz  Status
		wantCh     Status
		wantExpiry time.Time
	}{
		{"success", StatusPending, StatusProcessing, time.Hour, nil, true, StatusValid, StatusValid, validUntil},
		{"failure", StatusPending, StatusProcessing, time.Hour, IncorrectResponse("no"), true, StatusInvalid, StatusInvalid, t0.Add(time.Hour)},
		{"expired during validation", StatusPending, StatusProcessing, -time.Second, nil, true, StatusInvalid, StatusInvalid, t0.Add(-time.Second)},
		{"stale job on valid", StatusValid, StatusValid, time.Hour, IncorrectResponse("no"), false, StatusValid, StatusValid, t0.Add(time.Hour)},
		{"stale job on deactivated", StatusDeactivated, StatusProcessing, time.Hour, nil, false, StatusDeactivated, StatusProcessing, t0.Add(time.Hour)},
		{"stale job on pending challenge", StatusPending, StatusPending, time.Hour, nil, false, StatusPending, StatusPending, t0.Add(time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := authz(tt.authz, t0.Add(tt.expiry), tt.challenge)
			if got := FinishChallenge(a, "c", Validation{Records: records, Problem: tt.prob}, t0, validUntil); got != tt.applied {
				t.Fatalf("applied = %v, want %v", got, tt.applied)
			}
			ch := a.Challenges[0]
			if a.Status != tt.wantAuthz || ch.Status != tt.wantCh || !a.Expires.Equal(tt.wantExpiry) {
				t.Fatalf("got authz %s challenge %s expires %s; want %s %s %s", a.Status, ch.Status, a.Expires, tt.wantAuthz, tt.wantCh, tt.wantExpiry)
			}
			if tt.applied && tt.wantCh == StatusInvalid && ch.Error == nil {
				t.Fatal("invalid challenge carries no error")
			}
			// The records are kept with every outcome recorded, and
			// only then: a stale job's records are not this challenge's.
			if got := len(ch.ValidationRecords); tt.applied != (got == len(records)) || !tt.applied && got != 0 {
				t.Fatalf("challenge keeps %d validation records, applied %v", got, tt.applied)
			}
		})
	}
}

func TestDeactivateAuthz(t *testing.T) {
	tests := []struct {
		status  Status
		expiry  time.Duration
		wantErr bool
	}{
		{StatusPending, time.Hour, false},
		{StatusValid, time.Hour, false},
		{StatusValid, -time.Hour, true},
		{StatusInvalid, time.Hour, true},
		{StatusDeactivated, time.Hour, true},
	}
	for _, tt := range tests {
		a := authz(tt.status, t0.Add(tt.expiry), StatusPending)
		err := DeactivateAuthz(a, t0)
		if (err != nil) != tt.wantErr {
			t.Errorf("DeactivateAuthz(%s, %s) = %v", tt.status, tt.expiry, err)
		}
		if err == nil && a.Status != StatusDeactivated {
			t.Errorf("status %s after deactivation", a.Status)
		}
	}
}

func TestOrderStatus(t *testing.T) {
	future, past := t0.Add(time.Hour), t0.Add(-time.Hour)
	tests := []struct {
		name   string
		stored Status
		expiry time.Time
		authzs []*Authorization
		want   Status
	}{
		{"all pending", StatusPending, future, []*Authorization{authz(StatusPending, future, StatusPending)}, StatusPending},
		{"one of two valid", StatusPending, future, []*Authorization{authz(StatusValid, future, StatusValid), authz(StatusPending, future, StatusPending)}, StatusPending},
		{"all valid is ready", StatusPending, future, []*Authorization{authz(StatusValid, future, StatusValid), authz(StatusValid, future, StatusValid)}, StatusReady},
		{"one invalid", StatusPending, future, []*Authorization{authz(StatusValid, future, StatusValid), authz(StatusInvalid, future, StatusInvalid)}, StatusInvalid},
		{"one deactivated", StatusPending, future, []*Authorization{authz(StatusDeactivated, future, StatusPending)}, StatusInvalid},
		{"authz expired", StatusPending, future, []*Authorization{authz(StatusValid, past, StatusValid)}, StatusInvalid},
		{"order expired", StatusPending, past, []*Authorization{authz(StatusValid, future, StatusValid)}, StatusInvalid},
		{"processing", StatusProcessing, past, nil, StatusProcessing},
		{"valid survives expiry", StatusValid, past, []*Authorization{authz(StatusValid, past, StatusValid)}, StatusValid},
		{"invalid", StatusInvalid, future, nil, StatusInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := &Order{Status: tt.stored, Expires: tt.expiry}
			if got := OrderStatus(o, tt.authzs, t0); got != tt.want {
				t.Fatalf("OrderStatus = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestFinalizeTransitions(t *testing.T) {
	future := t0.Add(time.Hour)
	ready := []*Authorization{authz(StatusValid, future, StatusValid)}
	o := &Order{Status: StatusPending, Expires: future}
	if err := BeginFinalize(o, ready, []byte("csr"), t0); err != nil || o.Status != StatusProcessing {
		t.Fatalf("BeginFinalize on ready order: %v, status %s", err, o.Status)
	}
	if err := BeginFinalize(o, ready, []byte("csr"), t0); !errors.Is(err, ErrOrderNotReady) {
		t.Fatalf("second BeginFinalize = %v, want orderNotReady", err)
	}
	if string(o.CSR) != "csr" {
		t.Fatalf("CSR not kept: %q", o.CSR)
	}
	if err := FinishFinalize(o, "abc", nil); err != nil || o.Status != StatusValid || o.CertSerial != "abc" || o.CSR != nil {
		t.Fatalf("FinishFinalize: %v, %+v", err, o)
	}
	if err := FinishFinalize(o, "def", nil); !errors.Is(err, ErrOrderNotReady) {
		t.Fatalf("FinishFinalize on valid order = %v", err)
	}
	pending := &Order{Status: StatusPending, Expires: future}
	if err := BeginFinalize(pending, []*Authorization{authz(StatusPending, future, StatusPending)}, nil, t0); !errors.Is(err, ErrOrderNotReady) {
		t.Fatalf("BeginFinalize on pending order = %v", err)
	}
	failed := &Order{Status: StatusProcessing}
	if err := FinishFinalize(failed, "", ServerInternal("x")); err != nil || failed.Status != StatusInvalid || failed.Error == nil {
		t.Fatalf("FinishFinalize with problem: %v %+v", err, failed)
	}
}

func TestAccountAndRevocation(t *testing.T) {
	a := &Account{Status: StatusValid}
	if err := DeactivateAccount(a); err != nil || a.Status != StatusDeactivated {
		t.Fatalf("DeactivateAccount: %v", err)
	}
	if err := DeactivateAccount(a); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("second DeactivateAccount = %v", err)
	}
	c := &Certificate{Serial: "1"}
	if err := Revoke(c, 1, t0); err != nil || !c.Revoked || c.Reason != 1 {
		t.Fatalf("Revoke: %v %+v", err, c)
	}
	if err := Revoke(c, 0, t0); !errors.Is(err, ErrAlreadyRevoked) {
		t.Fatalf("second Revoke = %v", err)
	}
}
