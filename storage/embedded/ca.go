package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/acmed/acmed/storage"
)

// bucketCA holds the identity of the store's CA under caIdentityKey. The
// bucket is created with the record, by ClaimCA, not by Open: a bucket
// without it means the record was lost.
const (
	bucketCA      = "ca"
	caIdentityKey = "identity"
)

// ClaimCA records id in the file the first time and returns the record.
//
// A file that existed before Open and has no record was either written by
// an acmed from before CAs were recorded (it holds accounts, orders or
// certificates: its CA is taken to be id, as that acmed assumed) or it is
// not what acmed left there (it holds nothing: damaged, or replaced). The
// second is an error: starting afresh beside an existing CA would hide
// that the store lost everything.
func (s *Store) ClaimCA(ctx context.Context, id storage.CAIdentity) (storage.CAIdentity, error) {
	if err := ctx.Err(); err != nil {
		return storage.CAIdentity{}, err
	}
	if id.Root == "" || id.Intermediate == "" {
		return storage.CAIdentity{}, errors.New("embedded store: claim CA: identity has an empty fingerprint")
	}
	raw, err := json.Marshal(id)
	if err != nil {
		return storage.CAIdentity{}, fmt.Errorf("embedded store: claim CA: %w", err)
	}
	var got storage.CAIdentity
	adopted := false
	err = s.db.Update(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte(bucketCA)); b != nil {
			rec := b.Get([]byte(caIdentityKey))
			if err := json.Unmarshal(rec, &got); err != nil || got.Root == "" || got.Intermediate == "" {
				return damaged(s.path, "its CA record is missing or unreadable")
			}
			return nil
		}
		if s.existed {
			if !holdsRecords(tx) {
				return fmt.Errorf("embedded store %s records no CA and holds no records, yet the file was there before acmed started: it is not the store acmed left, or it is damaged; restore it from a backup, or delete it to start with an empty store", s.path)
			}
			adopted = true
		}
		b, err := tx.CreateBucket([]byte(bucketCA))
		if err != nil {
			return err
		}
		got = id
		return b.Put([]byte(caIdentityKey), raw)
	})
	if err != nil {
		return storage.CAIdentity{}, err
	}
	if adopted {
		s.log.Info("recorded the CA in a store written before acmed recorded it", "file", s.path,
			"root_sha256", id.Root, "intermediate_sha256", id.Intermediate)
	}
	return got, nil
}

// holdsRecords reports whether an earlier run stored anything a client was
// told about.
func holdsRecords(tx *bolt.Tx) bool {
	for _, name := range []string{bucketAccounts, bucketOrders, bucketAuthzs, bucketCerts} {
		if b := tx.Bucket([]byte(name)); b != nil {
			if k, _ := b.Cursor().First(); k != nil {
				return true
			}
		}
	}
	return false
}
