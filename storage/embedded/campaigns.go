package embedded

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// Campaigns (storage.Campaigns) keep their records as JSON: they are few
// and read by operators only.
const (
	bucketCampaigns     = "campaigns"      // ID → campaign (JSON)
	bucketCampaignOrder = "campaign-order" // createdAt, ID: newest last
	// campaign ID, 0, notAfter, serial: the campaign's certificates not
	// yet replaced, entered and left with the certificate's CampaignID and
	// ReplacedBy (certEntries). A certificate a later campaign matches
	// again is the later one's to track.
	bucketCampaignPending = "campaign-pending"
)

// CreateCampaign moves every match's window in one transaction with the
// campaign's record, so a campaign is recorded with all its certificates
// moved or not at all. The matches are found as ListCertificates finds
// them, restricted to valid (unexpired, unrevoked) ones.
func (s *Store) CreateCampaign(ctx context.Context, c *acme.Campaign, f storage.CertFilter) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	switch f.Status {
	case "":
		f.Status = acme.CertValid // lets the index skip expired ones
	case acme.CertValid:
	default:
		c.Matched = 0
		return 0, nil
	}
	var n int
	err := s.db.Update(func(tx *bolt.Tx) error {
		n = 0
		b := tx.Bucket([]byte(bucketCampaigns))
		if b.Get([]byte(c.ID)) != nil {
			return conflict("campaign", c.ID)
		}
		// Serials only, then each record again: a campaign may match the
		// estate, whose records need not all be in memory at once.
		var matched []string
		err := scan(tx, f, nil, func(cert *acme.Certificate) bool {
			if cert.ReplacedBy == "" {
				matched = append(matched, cert.Serial)
			}
			return true
		})
		if err != nil || len(matched) == 0 {
			return err
		}
		now := s.now()
		for _, serial := range matched {
			cert, err := load(tx, certs, serial)
			if err != nil {
				return err
			}
			was := *cert
			cert.RenewAfter, cert.RenewBefore, cert.CampaignID = c.WindowStart, c.WindowEnd, c.ID
			if err := putCert(tx, &was, cert, now); err != nil {
				return err
			}
		}
		rec := *c
		rec.Matched = len(matched)
		raw, err := json.Marshal(&rec)
		if err != nil {
			return fmt.Errorf("embedded store: encode campaign %q: %w", c.ID, err)
		}
		if err := b.Put([]byte(c.ID), raw); err != nil {
			return err
		}
		if err := tx.Bucket([]byte(bucketCampaignOrder)).Put(append(appendTime(nil, c.CreatedAt), c.ID...), nil); err != nil {
			return err
		}
		n = len(matched)
		return nil
	})
	if err != nil {
		return 0, err
	}
	c.Matched = n
	return n, nil
}

func loadCampaign(tx *bolt.Tx, id string) (*acme.Campaign, error) {
	raw := tx.Bucket([]byte(bucketCampaigns)).Get([]byte(id))
	if raw == nil {
		return nil, notFound("campaign", id)
	}
	var c acme.Campaign
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("embedded store: decode campaign %q: %w", id, err)
	}
	return &c, nil
}

func (s *Store) Campaign(ctx context.Context, id string) (*acme.Campaign, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var c *acme.Campaign
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		c, err = loadCampaign(tx, id)
		return err
	})
	return c, err
}

// ListCampaigns walks campaign-order backwards: newest first.
func (s *Store) ListCampaigns(ctx context.Context) ([]*acme.Campaign, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var list []*acme.Campaign
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte(bucketCampaignOrder)).Cursor()
		for k, _ := c.Last(); k != nil; k, _ = c.Prev() {
			camp, err := loadCampaign(tx, string(k[8:]))
			if err != nil {
				return err
			}
			list = append(list, camp)
		}
		return nil
	})
	return list, err
}

// CampaignPending walks the campaign's range of campaign-pending from the
// store's now on (the unexpired ones), counting it whole: its cost is the
// pending certificates. They come ordered by notAfter then serial; the
// cursor is the hex of the last one's order key.
func (s *Store) CampaignPending(ctx context.Context, id, cursor string, limit int) ([]string, string, int, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", 0, err
	}
	if limit <= 0 {
		return nil, "", 0, fmt.Errorf("embedded store: campaign pending: limit %d is not positive", limit)
	}
	after, err := hex.DecodeString(cursor)
	if err != nil || (cursor != "" && len(after) <= 8) {
		return nil, "", 0, fmt.Errorf("%w: campaign pending cursor %q", storage.ErrNotFound, cursor)
	}
	var serials []string
	var next string
	pending := 0
	err = s.db.View(func(tx *bolt.Tx) error {
		if _, err := loadCampaign(tx, id); err != nil {
			return err
		}
		prefix := []byte(id + "\x00")
		var last []byte
		c := tx.Bucket([]byte(bucketCampaignPending)).Cursor()
		for k, _ := c.Seek(appendKey(bytes.Clone(prefix), inc(timeKey(s.now())))); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			pending++
			key := k[len(prefix):]
			if len(key) <= 8 || bytes.Compare(key, after) <= 0 {
				continue
			}
			switch {
			case len(serials) < limit:
				serials = append(serials, string(key[8:]))
				last = bytes.Clone(key)
			case next == "":
				next = hex.EncodeToString(last)
			}
		}
		return nil
	})
	if err != nil {
		return nil, "", 0, err
	}
	return serials, next, pending, nil
}
