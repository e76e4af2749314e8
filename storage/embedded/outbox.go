package embedded

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

const (
	bucketLeases = "leases" // name → lease (JSON)
	// sequence → delivery (JSON): alerts not yet delivered to a webhook.
	bucketAlerts = "alerts"
	// due, sequence: the deliveries in the order they fall due.
	bucketAlertsDue = "alerts-due"
	// event, 0, serial: alerts queued once, kept as long as the
	// certificate (deleteCert) so an event is never queued twice.
	bucketAlertsSent = "alerts-sent"
)

type lease struct {
	Holder string
	Until  time.Time
}

// TryLease judges expiry by the store's clock: one process holds the
// file, so every caller shares it.
func (s *Store) TryLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	var got bool
	err := s.db.Update(func(tx *bolt.Tx) error {
		got = false
		b := tx.Bucket([]byte(bucketLeases))
		now := s.now()
		if raw := b.Get([]byte(name)); raw != nil {
			var l lease
			if err := json.Unmarshal(raw, &l); err != nil {
				return fmt.Errorf("embedded store: decode lease %q: %w", name, err)
			}
			if l.Holder != holder && now.Before(l.Until) {
				return nil
			}
		}
		raw, err := json.Marshal(lease{Holder: holder, Until: now.Add(ttl)})
		if err != nil {
			return err
		}
		got = true
		return b.Put([]byte(name), raw)
	})
	return got, err
}

func alertSentKey(event, serial string) []byte { return []byte(event + "\x00" + serial) }

// delivery IDs are the hex of the alerts bucket's sequence.
func deliveryKey(id string) ([]byte, bool) {
	k, err := hex.DecodeString(id)
	return k, err == nil && len(k) == 8
}

func dueKey(d *storage.AlertDelivery, k []byte) []byte { return append(appendTime(nil, d.Due), k...) }

func (s *Store) QueueAlert(ctx context.Context, a acme.Alert, urls []string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	var queued bool
	err := s.db.Batch(func(tx *bolt.Tx) error {
		queued = false
		sent := tx.Bucket([]byte(bucketAlertsSent))
		if sent.Get(alertSentKey(a.Event, a.Serial)) != nil {
			return nil
		}
		if err := sent.Put(alertSentKey(a.Event, a.Serial), nil); err != nil {
			return err
		}
		b := tx.Bucket([]byte(bucketAlerts))
		for _, url := range urls {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			k := seqKey(seq)
			d := storage.AlertDelivery{ID: hex.EncodeToString(k), URL: url, Alert: a, Due: a.DetectedAt}
			if err := putDelivery(tx, k, &d); err != nil {
				return err
			}
		}
		queued = true
		return nil
	})
	return queued, err
}

func putDelivery(tx *bolt.Tx, k []byte, d *storage.AlertDelivery) error {
	raw, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("embedded store: encode alert delivery: %w", err)
	}
	if err := tx.Bucket([]byte(bucketAlerts)).Put(k, raw); err != nil {
		return err
	}
	return tx.Bucket([]byte(bucketAlertsDue)).Put(dueKey(d, k), nil)
}

func loadDelivery(tx *bolt.Tx, k []byte) (*storage.AlertDelivery, error) {
	raw := tx.Bucket([]byte(bucketAlerts)).Get(k)
	if raw == nil {
		return nil, notFound("alert delivery", hex.EncodeToString(k))
	}
	var d storage.AlertDelivery
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("embedded store: decode alert delivery %x: %w", k, err)
	}
	return &d, nil
}

// DueAlerts walks alerts-due up to now: what it returns, and no more.
func (s *Store) DueAlerts(ctx context.Context, now time.Time, limit int) ([]storage.AlertDelivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var list []storage.AlertDelivery
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte(bucketAlertsDue)).Cursor()
		for k, _ := c.First(); k != nil && len(list) < limit && binary.BigEndian.Uint64(k) <= timeKey(now); k, _ = c.Next() {
			d, err := loadDelivery(tx, k[8:])
			if err != nil {
				return err
			}
			list = append(list, *d)
		}
		return nil
	})
	return list, err
}

func (s *Store) AlertDelivered(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k, ok := deliveryKey(id)
	if !ok {
		return nil // never handed out, so not there
	}
	return s.db.Batch(func(tx *bolt.Tx) error {
		d, err := loadDelivery(tx, k)
		if errors.Is(err, storage.ErrNotFound) {
			return nil // delivered before
		}
		if err != nil {
			return err
		}
		if err := tx.Bucket([]byte(bucketAlertsDue)).Delete(dueKey(d, k)); err != nil {
			return err
		}
		return tx.Bucket([]byte(bucketAlerts)).Delete(k)
	})
}

func (s *Store) AlertRetry(ctx context.Context, id string, at time.Time, attempts int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k, ok := deliveryKey(id)
	if !ok {
		return notFound("alert delivery", id)
	}
	return s.db.Batch(func(tx *bolt.Tx) error {
		d, err := loadDelivery(tx, k)
		if err != nil {
			return err
		}
		if err := tx.Bucket([]byte(bucketAlertsDue)).Delete(dueKey(d, k)); err != nil {
			return err
		}
		d.Due, d.Attempts = at, attempts
		return putDelivery(tx, k, d)
	})
}
