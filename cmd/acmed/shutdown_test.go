package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDrainFlags(t *testing.T) {
	file := filepath.Join(t.TempDir(), "acmed.yaml")
	if err := os.WriteFile(file, []byte("drain-delay: 7s\nshutdown-timeout: 1m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		args          []string
		env           map[string]string
		drain, finish time.Duration
	}{
		{"defaults", nil, nil, 5 * time.Second, 30 * time.Second},
		{"flags", []string{"--drain-delay", "0s", "--shutdown-timeout", "2s"}, nil, 0, 2 * time.Second},
		{"environment", nil, map[string]string{"ACMED_DRAIN_DELAY": "15s", "ACMED_SHUTDOWN_TIMEOUT": "45s"}, 15 * time.Second, 45 * time.Second},
		{"config file", []string{"--config", file}, nil, 7 * time.Second, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig("serve", tt.args, env(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if c.DrainDelay != tt.drain || c.ShutdownTimeout != tt.finish {
				t.Fatalf("drain delay %s, shutdown timeout %s; want %s, %s", c.DrainDelay, c.ShutdownTimeout, tt.drain, tt.finish)
			}
		})
	}
}

func TestDrainFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--drain-delay", "-1s"}, nil, "--drain-delay -1s: must not be negative"},
		{[]string{"--shutdown-timeout", "-5s"}, nil, "--shutdown-timeout -5s: must not be negative"},
		{nil, map[string]string{"ACMED_DRAIN_DELAY": "-2s"}, "--drain-delay -2s"},
		{[]string{"--drain-delay", "soon"}, nil, "-drain-delay"},
		{nil, map[string]string{"ACMED_SHUTDOWN_TIMEOUT": "later"}, "ACMED_SHUTDOWN_TIMEOUT"},
	}
	for _, tt := range tests {
		_, err := loadConfig("serve", tt.args, env(tt.env))
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("loadConfig(%q, %v) = %v; want a one-line error containing %q", tt.args, tt.env, err, tt.want)
		}
	}
}
