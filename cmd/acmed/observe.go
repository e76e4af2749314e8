package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/acmed/acmed/acme/alerts"
	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/acme/metrics"
	"github.com/acmed/acmed/storage"
)

// newMetrics builds the metrics when --metrics-listen is set, and returns
// store measured (its own methods all still reachable); without the flag
// it returns nil and store as it is.
func newMetrics(c config, store storage.Store, log *slog.Logger) (*metrics.Metrics, storage.Store) {
	if c.MetricsListen == "" {
		return nil, store
	}
	inv, _ := store.(storage.Inventory)
	jobs, _ := store.(metrics.JobStats)
	profiles, _ := c.profileSet()
	var names []string
	for name := range profiles.Directory() {
		names = append(names, name)
	}
	m := metrics.New(metrics.Config{Inventory: inv, Jobs: jobs, Logger: log, Limits: authority.LimitNames(), Profiles: names})
	return m, m.InstrumentStore(store)
}

// startAlerts runs the expiry alerts (alerts package) until the returned
// stop is called. A store without an inventory, outbox and leases has
// none: an error if --alert-webhook asks for them.
func startAlerts(c config, store storage.Store, m *metrics.Metrics, log *slog.Logger) (stop func(), err error) {
	s, ok := store.(alerts.Store)
	if !ok {
		if len(c.AlertWebhooks) > 0 {
			return nil, errors.New("--alert-webhook: this store keeps no certificate inventory to alert about")
		}
		log.Warn("expiry alerts off: this store keeps no certificate inventory")
		return func() {}, nil
	}
	holder, err := replicaID(c.ReplicaName)
	if err != nil {
		return nil, err
	}
	cfg := alerts.Config{Store: s, Webhooks: c.AlertWebhooks, Holder: holder, Interval: c.AlertInterval,
		CampaignGrace: c.AlertCampaignGrace, Logger: log}
	if m != nil {
		cfg.Hooks = m
	}
	a, err := alerts.New(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = a.Run(ctx)
	}()
	log.Info("expiry alerts", "replica", holder, "webhooks", len(c.AlertWebhooks), "interval", c.AlertInterval)
	return func() { cancel(); <-done }, nil
}

// replicaID names this process among the replicas: --replica-name or
// the host, and a random part, as two processes on one host are two
// replicas.
func replicaID(name string) (string, error) {
	host, err := name, error(nil)
	if host == "" {
		host, err = os.Hostname()
	}
	if err != nil || host == "" {
		host = "acmed"
	}
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("replica ID: %w", err)
	}
	return host + "-" + hex.EncodeToString(b), nil
}
