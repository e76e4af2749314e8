package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/storage"
)

// --rate-limit changes the defaults one limit at a time, from a flag, the
// environment (comma-separated) or the file (a list).
func TestConfigRateLimits(t *testing.T) {
	file := filepath.Join(t.TempDir(), "acmed.yaml")
	if err := os.WriteFile(file, []byte("rate-limit: [new-orders-per-account=300/3h, certificates-per-identifier-set=off]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	withDefaults := func(change func(*authority.Limits)) authority.Limits {
		l := authority.DefaultLimits()
		change(&l)
		return l
	}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want authority.Limits
	}{
		{"defaults", nil, nil, authority.DefaultLimits()},
		{"flags", []string{"--rate-limit", "new-accounts-per-ip=10/1m", "--rate-limit", "pending-authorizations-per-account=50"}, nil,
			withDefaults(func(l *authority.Limits) {
				l.NewAccountsPerIP = storage.Limit{Count: 10, Period: time.Minute}
				l.PendingAuthorizationsPerAccount = 50
			})},
		{"environment", nil, map[string]string{"ACMED_RATE_LIMIT": "failed-validations-per-account-identifier=0, new-orders-per-account=5/1s"},
			withDefaults(func(l *authority.Limits) {
				l.FailedValidationsPerAccountIdentifier = storage.Limit{}
				l.NewOrdersPerAccount = storage.Limit{Count: 5, Period: time.Second}
			})},
		{"file", []string{"--config", file}, nil,
			withDefaults(func(l *authority.Limits) {
				l.NewOrdersPerAccount = storage.Limit{Count: 300, Period: 3 * time.Hour}
				l.CertificatesPerIdentifierSet = storage.Limit{}
			})},
		{"all off", []string{"--rate-limit", "off"}, nil, authority.Limits{}},
		{"all off, then one", []string{"--rate-limit", "off,new-orders-per-account=1/1h"}, nil,
			authority.Limits{NewOrdersPerAccount: storage.Limit{Count: 1, Period: time.Hour}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadConfig("serve", tc.args, env(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.RateLimits.get(); got != tc.want {
				t.Fatalf("limits %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestConfigRateLimitErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--rate-limit", "orders-per-day=1/24h"}, nil, `"orders-per-day=1/24h"`},
		{[]string{"--rate-limit", "new-orders-per-account"}, nil, "-rate-limit"},
		{[]string{"--rate-limit", "new-orders-per-account=many/1h"}, nil, `count "many"`},
		{[]string{"--rate-limit", "new-orders-per-account=-1/1h"}, nil, `count "-1"`},
		{[]string{"--rate-limit", "new-orders-per-account=10/fortnight"}, nil, `period "fortnight"`},
		{[]string{"--rate-limit", "new-orders-per-account=10/1ms"}, nil, `period "1ms"`},
		{[]string{"--rate-limit", "new-orders-per-account=10"}, nil, "is a rate"},
		{[]string{"--rate-limit", "pending-authorizations-per-account=10/1h"}, nil, "is a cap"},
		{nil, map[string]string{"ACMED_RATE_LIMIT": "new-accounts-per-ip=1/1h,bogus"}, `ACMED_RATE_LIMIT`},
	} {
		_, err := loadConfig("serve", tc.args, env(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") ||
			(tc.env == nil && !strings.Contains(err.Error(), "rate-limit")) {
			t.Errorf("loadConfig(%q, %v) = %v; want a one-line error naming the flag and containing %q", tc.args, tc.env, err, tc.want)
		}
	}
}
