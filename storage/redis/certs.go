package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/record"
)

var certs = resource[acme.Certificate]{
	name: "certificate",
	key:  certKey,
	id:   func(c *acme.Certificate) string { return c.Serial },
}

// PutCertificate keeps c until Retention after it expires: long enough to
// answer revocation and lookups for it, not for ever. It enters c in the
// inventory, and records what c replaces, in the same script on a single
// server; on a Cluster in a second step, once the record is written.
func (s *Store) PutCertificate(ctx context.Context, c *acme.Certificate) error {
	raw, err := encode(certs, c)
	if err != nil {
		return err
	}
	var p plan
	p.absent(certKey(c.Serial))
	p.set(certKey(c.Serial), raw, s.ttlCert(c))
	s.invOp(&p, c, "add")
	res, err := s.run(ctx, "put certificate", p)
	switch {
	case err != nil:
		return err
	case res.res == casTaken:
		return conflict("certificate", c.Serial)
	case res.res != casWritten:
		return fmt.Errorf("redis: put certificate %q: unexpected script result %d", c.Serial, res.res)
	}
	return nil
}

// Certificate reads the record and its inventory entry in one pipeline,
// and merges the entry in (overlay).
func (s *Store) Certificate(ctx context.Context, serial string) (*acme.Certificate, error) {
	raw, entry, err := s.readCert(ctx, serial)
	if err != nil {
		return nil, err
	}
	c, err := decode(certs, serial, raw)
	if err != nil {
		return nil, err
	}
	overlay(c, entry)
	return c, nil
}

func (s *Store) readCert(ctx context.Context, serial string) (raw []byte, entry string, err error) {
	var get, meta *goredis.StringCmd
	_, err = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		get = p.Get(ctx, certKey(serial))
		meta = p.HGet(ctx, invKey("meta"), serial)
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, "", fail(ctx, "get certificate", err)
	}
	raw, err = get.Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, "", notFound("certificate", serial)
	}
	if err != nil {
		return nil, "", fail(ctx, "get certificate", err)
	}
	entry, err = meta.Result()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, "", fail(ctx, "get certificate", err)
	}
	return raw, entry, nil
}

// UpdateCertificate is the compare-and-set loop of update, for a record
// fn sees with its inventory entry merged in. What fn leaves of the
// merged fields stays in the entry, not the record, so an update that
// changes nothing else writes nothing. The write updates the inventory
// (revocation), and blocks the key BlockingKey names, in the same script
// (on a Cluster, steps after); a record the inventory lacks (stored by an
// older acmed) enters it then.
func (s *Store) UpdateCertificate(ctx context.Context, serial string, fn func(*acme.Certificate) error, opts ...storage.Option) (*acme.Certificate, error) {
	o := storage.Apply(opts)
	for range maxTries {
		raw, entry, err := s.readCert(ctx, serial)
		if err != nil {
			return nil, err
		}
		cur, err := decode(certs, serial, raw)
		if err != nil {
			return nil, err
		}
		was, err := record.Baseline(raw, cur)
		if err != nil {
			return nil, fmt.Errorf("redis: encode certificate %q: %w", serial, err)
		}
		merged := *cur
		overlay(&merged, entry)
		view := merged
		if err := fn(&view); err != nil {
			return nil, err
		}
		if view.Serial != serial {
			return nil, fmt.Errorf("redis: update certificate %q: fn changed its serial to %q", serial, view.Serial)
		}
		rec := unoverlay(view, merged, cur)
		next, err := encode(certs, &rec)
		if err != nil {
			return nil, err
		}
		if bytes.Equal(next, was) && entry != "" {
			return &view, nil
		}
		var p plan
		p.compare(certKey(serial), raw)
		p.set(certKey(serial), next, s.ttlCert(&rec))
		// Always, though only revocation changes an entry: it also mends
		// one a Cluster's second step failed to update last time.
		s.invOp(&p, &rec, "update")
		if o.BlockKey != nil {
			if err := p.blockKey(*o.BlockKey); err != nil {
				return nil, err
			}
		}
		res, err := s.run(ctx, "update certificate", p)
		switch {
		case err != nil:
			return nil, err
		case res.res == casWritten:
			return &view, nil
		case res.res == casGone:
			return nil, notFound("certificate", serial)
		case res.res != casChanged:
			return nil, fmt.Errorf("redis: update certificate %q: unexpected script result %d", serial, res.res)
		}
	}
	return nil, fmt.Errorf("redis: update certificate %q: %w: lost %d races in a row", serial, storage.ErrUnavailable, maxTries)
}

// unoverlay is the record to write for view, which fn changed from merged
// (cur with its entry merged in): the fields fn left as the entry had
// them keep cur's values.
func unoverlay(view, merged acme.Certificate, cur *acme.Certificate) acme.Certificate {
	if view.ReplacedBy == merged.ReplacedBy {
		view.ReplacedBy = cur.ReplacedBy
	}
	if view.Replaces == merged.Replaces {
		view.Replaces = cur.Replaces
	}
	if view.RenewAfter.Equal(merged.RenewAfter) && view.RenewBefore.Equal(merged.RenewBefore) && view.CampaignID == merged.CampaignID {
		view.RenewAfter, view.RenewBefore, view.CampaignID = cur.RenewAfter, cur.RenewBefore, cur.CampaignID
	}
	return view
}
