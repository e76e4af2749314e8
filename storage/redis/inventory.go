package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

var (
	_ storage.Inventory = (*Store)(nil)
	_ storage.Estate    = (*Store)(nil)
)

// The inventory (storage.Inventory) lives under one hash tag, {inv}, so
// that one script updates every index of a certificate at once, and on a
// single server the script that stores the certificate does: see
// luaInventory for the layout. On a Cluster the {inv} slot is one step
// after the certificate's own (PutCertificate).
const invTag = "{inv}"

func invKey(name string) string { return prefix + invTag + ":" + name }

var invNames = [...]string{"meta", "exp", "revoked", "names", "win", "due", "latest", "stats", "campcerts"}

// invKeys are the keys luaInventory's invkeys names, in its order: the
// inventory's and those of the account and profile a script may touch
// ("" for none).
func invKeys(account, profile string) []string {
	keys := make([]string, 0, invKeyCount)
	for _, n := range invNames {
		keys = append(keys, invKey(n))
	}
	return append(keys, invKey("acct:"+clean(account)), invKey("prof:"+clean(profile)))
}

// Positions of an entry's fields (luaInventory's M_*).
const (
	mNA = iota
	mNB
	mWS
	mAcct
	mProf
	mRev
	mRBy
	mRpl
	mRA
	mRB
	mCID
	mCSeq
	mIDs
	metaFields
)

// Budgets of one script call, so none holds the server long: entries a
// query reads, and what a trim or a promotion moves. A call that runs out
// returns where it stopped and the next goes on.
const (
	invBudget = 2000
	// invNamesMax is the most names a SAN suffix query reads and sorts at
	// once; a suffix matching more is answered by walking an index by
	// notAfter instead, which needs no sort.
	invNamesMax = 5000
)

// clean keeps the entry's separators out of a field.
func clean(s string) string {
	return strings.NewReplacer("\t", " ", "\n", " ").Replace(s)
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// packIDs is the identifier set of an entry: "type:value", sorted, so that
// the same set in another order is the same (replacement), once each.
func packIDs(ids []acme.Identifier) string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		v := strings.NewReplacer(" ", "", "\t", "", "\n", "").Replace(id.Value)
		out = append(out, string(id.Type)+":"+v)
	}
	slices.Sort(out)
	return strings.Join(slices.Compact(out), " ")
}

// cutoff is the notAfter at or before which a certificate's record is
// gone (Retention): its index entries go too.
func (s *Store) cutoff() time.Time { return s.now().Add(-s.retention()) }

// retention is how long a certificate is kept after notAfter.
func (s *Store) retention() time.Duration {
	return s.keep.CertificateUntil(&acme.Certificate{}).Sub(time.Time{})
}

// invOp adds to p the inventory operation for c: "add" when it is stored,
// "update" when it changes (revocation).
func (s *Store) invOp(p *plan, c *acme.Certificate, mode string) {
	start, _ := c.RenewalWindow()
	rev := ""
	if c.Revoked {
		// The reason is part of it, so a reason change (keyCompromise
		// after another) reaches the CRL as soon as a revocation does.
		rev = "r" + strconv.Itoa(c.Reason)
	}
	keys := invKeys(c.AccountID, c.Profile)
	p.ops = append(p.ops, planOp{name: "inv", key: keys[0], more: keys[1:], args: []any{
		mode, c.Serial, ms(c.NotAfter), ms(c.NotBefore), ms(start), clean(c.AccountID), clean(c.Profile),
		rev, c.Replaces, packIDs(c.Identifiers), s.ttlCert(c), ms(s.cutoff()), ms(s.now()),
	}})
}

// overlay merges into c what the inventory keeps of it and its record
// does not: what replaced it, what it replaced as the store found it, and
// a campaign's window (the record lies in another slot on a Cluster, so
// the scripts that change these write them to the entry only).
func overlay(c *acme.Certificate, entry string) {
	f := strings.Split(entry, "\t")
	if len(f) != metaFields {
		return
	}
	if f[mRBy] != "" {
		c.ReplacedBy = f[mRBy]
	}
	if c.Replaces == "" {
		c.Replaces = f[mRpl]
	}
	if f[mRA] != "" {
		c.RenewAfter, c.RenewBefore, c.CampaignID = nsTime(f[mRA]), nsTime(f[mRB]), f[mCID]
	}
}

func nsTime(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func nsString(t time.Time) string { return strconv.FormatInt(t.UnixNano(), 10) }

// invPos is a place in the inventory's order: notAfter (Unix ms), serial.
type invPos struct {
	na     int64
	serial string
}

func (p *invPos) cursor() string { return strconv.FormatInt(p.na, 10) + ":" + p.serial }

func parseCursor(cursor string) (*invPos, error) {
	if cursor == "" {
		return nil, nil
	}
	na, serial, ok := strings.Cut(cursor, ":")
	n, err := strconv.ParseInt(na, 10, 64)
	if !ok || err != nil || serial == "" {
		return nil, fmt.Errorf("%w: certificate list cursor %q", storage.ErrNotFound, cursor)
	}
	return &invPos{n, serial}, nil
}

// invMatch is a certificate a query found: its place and its entry.
type invMatch struct {
	pos   invPos
	entry string
}

// invScan returns up to need certificates matching f after pos, in order,
// calling invQueryScript until it has them or the index is exhausted;
// more reports that it stopped at need. campaign narrows f to what a
// campaign matches.
func (s *Store) invScan(ctx context.Context, f storage.CertFilter, pos *invPos, need int, campaign bool) (found []invMatch, more bool, err error) {
	now := f.Now
	if now.IsZero() {
		now = s.now()
	}
	args := []any{ms(now), ms(s.cutoff()), 0, invBudget, "", "", string(f.Status), "", "", clean(strings.ToLower(f.SANSuffix)),
		clean(f.Account), clean(f.Profile), "", "", invNamesMax}
	if f.ExpiringWithin > 0 {
		args[7] = ms(now.Add(f.ExpiringWithin))
	}
	if f.NotRenewed {
		args[8] = "1"
	}
	if !f.IssuedBefore.IsZero() {
		args[12] = ms(f.IssuedBefore)
	}
	if campaign {
		args[13] = "1"
	}
	for _, serial := range f.Serials {
		args = append(args, serial)
	}
	keys := invKeys(f.Account, f.Profile)
	for need > 0 {
		args[2] = need
		if pos != nil {
			args[4], args[5] = strconv.FormatInt(pos.na, 10), pos.serial
		}
		res, err := invQueryScript.Run(ctx, s.rdb, keys, args...).StringSlice()
		if err != nil {
			return nil, false, fail(ctx, "list certificates", err)
		}
		if len(res) < 1 || (res[0] != "more" && len(res) < 3) || len(res)%2 == 0 {
			return nil, false, fmt.Errorf("redis: list certificates: unexpected script result %q", res)
		}
		for i := 3; i+1 < len(res); i += 2 {
			na, err := entryNA(res[i+1])
			if err != nil {
				return nil, false, err
			}
			found = append(found, invMatch{invPos{na, res[i]}, res[i+1]})
			need--
		}
		switch res[0] {
		case "full":
			return found, true, nil
		case "done":
			return found, false, nil
		case "more":
			if len(res) >= 3 && res[1] != "" {
				na, err := strconv.ParseFloat(res[1], 64)
				if err != nil {
					return nil, false, fmt.Errorf("redis: list certificates: position %q", res[1])
				}
				pos = &invPos{int64(na), res[2]}
			}
		default:
			return nil, false, fmt.Errorf("redis: list certificates: unexpected script state %q", res[0])
		}
	}
	return found, true, nil
}

func entryNA(entry string) (int64, error) {
	na, _, _ := strings.Cut(entry, "\t")
	n, err := strconv.ParseInt(na, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("redis: inventory entry %q: %w", entry, err)
	}
	return n, nil
}

// ListCertificates pages through the inventory (see invQueryScript),
// reading the records of what it found in one pipeline. A record that is
// gone (expired before its entry was trimmed) has its entry dropped, and
// the page is filled from further on.
func (s *Store) ListCertificates(ctx context.Context, f storage.CertFilter, cursor string, limit int) ([]*acme.Certificate, string, error) {
	if limit <= 0 {
		return nil, "", fmt.Errorf("redis: list certificates: limit %d is not positive", limit)
	}
	pos, err := parseCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	var (
		out    []*acme.Certificate
		places []invPos
	)
	for {
		found, more, err := s.invScan(ctx, f, pos, limit+1-len(out), false)
		if err != nil {
			return nil, "", err
		}
		certs, gone, err := s.readCerts(ctx, found)
		if err != nil {
			return nil, "", err
		}
		if len(gone) > 0 {
			// Tidying, and no client's write: no WAIT. The records are gone
			// either way.
			_ = invDropScript.Run(ctx, s.rdb, invKeys("", ""), dropArgs(false, gone)...).Err()
		}
		for i, c := range certs {
			if c != nil {
				out, places = append(out, c), append(places, found[i].pos)
			}
		}
		if len(out) > limit {
			return out[:limit], places[limit-1].cursor(), nil
		}
		if !more {
			return out, "", nil
		}
		pos = &found[len(found)-1].pos
	}
}

// readCerts reads the records of found, with their entries merged in:
// nil, and its serial in gone, for each record that is gone.
func (s *Store) readCerts(ctx context.Context, found []invMatch) ([]*acme.Certificate, []string, error) {
	if len(found) == 0 {
		return nil, nil, nil
	}
	cmds := make([]*goredis.StringCmd, len(found))
	_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, m := range found {
			cmds[i] = p.Get(ctx, certKey(m.pos.serial))
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, nil, fail(ctx, "list certificates", err)
	}
	list := make([]*acme.Certificate, len(found))
	var gone []string
	for i, m := range found {
		raw, err := cmds[i].Bytes()
		if errors.Is(err, goredis.Nil) {
			gone = append(gone, m.pos.serial)
			continue
		}
		if err != nil {
			return nil, nil, fail(ctx, "list certificates", err)
		}
		c, err := decode(certs, m.pos.serial, raw)
		if err != nil {
			return nil, nil, err
		}
		overlay(c, m.entry)
		list[i] = c
	}
	return list, gone, nil
}

// invDrop drops serials from the inventory (invDropScript); account and
// profile, when known, let it drop their entries there too.
func (s *Store) invDrop(ctx context.Context, account, profile string, unreplace bool, serials ...string) error {
	if _, err := s.evalDurably(ctx, invDropScript, invKeys(account, profile), dropArgs(unreplace, serials)...).Result(); err != nil {
		return fail(ctx, "drop from inventory", err)
	}
	return nil
}

func dropArgs(unreplace bool, serials []string) []any {
	args := make([]any, 0, len(serials)+1)
	if unreplace {
		args = append(args, "1")
	} else {
		args = append(args, "")
	}
	for _, serial := range serials {
		args = append(args, serial)
	}
	return args
}

// CountCertificates answers from index counts (ZCOUNT, logarithmic in
// the estate) after the same bounded trimming and promotion as queries.
func (s *Store) CountCertificates(ctx context.Context, now time.Time, expiringWithin []time.Duration) (storage.CertCounts, error) {
	args := []any{ms(now), ms(s.cutoff()), invBudget}
	for _, d := range expiringWithin {
		args = append(args, ms(now.Add(d)))
	}
	keys := invKeys("", "")
	for {
		res, err := invCountScript.Run(ctx, s.rdb, keys, args...).Slice()
		if err != nil {
			return storage.CertCounts{}, fail(ctx, "count certificates", err)
		}
		if len(res) > 0 && res[0] == "more" {
			continue
		}
		n := make([]int64, 0, len(res))
		for _, v := range res[1:] {
			i, ok := v.(int64)
			if !ok {
				return storage.CertCounts{}, fmt.Errorf("redis: count certificates: unexpected script result %v", res)
			}
			n = append(n, i)
		}
		if len(n) != 4+len(expiringWithin) {
			return storage.CertCounts{}, fmt.Errorf("redis: count certificates: unexpected script result %v", res)
		}
		c := storage.CertCounts{Valid: n[0], Revoked: n[1], Expired: n[2], NotRenewed: n[3], Expiring: map[time.Duration]int64{}}
		for i, d := range expiringWithin {
			c.Expiring[d] = n[4+i]
		}
		return c, nil
	}
}

// newInvScript is a script with the inventory's Lua.
func newInvScript(body string) *goredis.Script {
	return goredis.NewScript(luaExtend + luaInventory + body)
}
