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

// Campaigns (storage.Campaigns) live under {inv} with the inventory: a
// hash per campaign, a list of them by creation time, and their members
// in the inventory's campcerts (see luaInventory), which a replacement
// leaves in the script that records it.
func campaignKey(id string) string { return invKey("camp:" + id) }

var campaignListKey = invKey("camps")

// campaignBatch is how many serials one campApplyScript call moves.
const campaignBatch = 500

// campaignMaxSeq keeps a campaign's scores (sequence × 2³²) exact in a
// double: 2²¹ campaigns.
const campaignMaxSeq = 1 << 21

// CreateCampaign finds what f matches with the inventory's query (plus
// unexpired, unrevoked, unreplaced), then records the campaign and moves
// the windows in batches, each one script that checks every certificate
// again: Matched counts what was moved. A certificate replaced or revoked
// in between is not; a failure half way leaves a campaign recording what
// it moved so far.
func (s *Store) CreateCampaign(ctx context.Context, c *acme.Campaign, f storage.CertFilter) (int, error) {
	if c.ID == "" {
		return 0, errors.New("redis: create campaign: no ID")
	}
	if f.Now.IsZero() {
		f.Now = s.now()
	}
	var (
		serials []string
		last    int64 // the latest notAfter matched, for the campaign's TTL
		pos     *invPos
	)
	for {
		found, more, err := s.invScan(ctx, f, pos, 1000, true)
		if err != nil {
			return 0, err
		}
		for _, m := range found {
			serials = append(serials, m.pos.serial)
			last = max(last, m.pos.na)
		}
		if !more {
			break
		}
		pos = &found[len(found)-1].pos
	}
	c.Matched = 0
	if len(serials) == 0 {
		return 0, nil
	}
	ttl := s.ttlUntil(time.UnixMilli(last).Add(s.retention()))
	ttl = max(ttl, s.ttlUntil(s.now().Add(s.retention())))
	seq, err := s.evalDurably(ctx, campCreateScript, []string{campaignKey(c.ID), campaignListKey, invKey("stats")},
		c.ID, nsString(c.CreatedAt), ms(c.CreatedAt), c.CreatedBy, c.Filter, c.ExplanationURL,
		nsString(c.WindowStart), nsString(c.WindowEnd), ttl).Int64()
	switch {
	case err != nil:
		return 0, fail(ctx, "create campaign", err)
	case seq == 0:
		return 0, conflict("campaign", c.ID)
	case seq >= campaignMaxSeq:
		return 0, fmt.Errorf("redis: create campaign: sequence %d exhausted", seq)
	}
	keys := append(invKeys("", ""), campaignKey(c.ID))
	n := 0
	for batch := range slices.Chunk(serials, campaignBatch) {
		args := []any{c.ID, seq, ms(f.Now), nsString(c.WindowStart), nsString(c.WindowEnd), ms(c.WindowStart), ttl}
		for _, serial := range batch {
			args = append(args, serial)
		}
		got, err := s.evalDurably(ctx, campApplyScript, keys, args...).Int64()
		if err != nil {
			return n, fail(ctx, "create campaign", err)
		}
		n += int(got)
	}
	if n == 0 {
		// All of them replaced or revoked since: nothing to record.
		_ = s.deleteCampaign(context.WithoutCancel(ctx), c.ID)
	}
	c.Matched = n
	return n, nil
}

func (s *Store) deleteCampaign(ctx context.Context, id string) error {
	_, err := s.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.Del(ctx, campaignKey(id))
		p.ZRem(ctx, campaignListKey, id)
		return nil
	})
	return err
}

func (s *Store) Campaign(ctx context.Context, id string) (*acme.Campaign, error) {
	h, err := s.rdb.HGetAll(ctx, campaignKey(id)).Result()
	if err != nil {
		return nil, fail(ctx, "get campaign", err)
	}
	if len(h) == 0 {
		return nil, notFound("campaign", id)
	}
	return decodeCampaign(id, h)
}

func decodeCampaign(id string, h map[string]string) (*acme.Campaign, error) {
	matched, err := strconv.Atoi(h["matched"])
	if err != nil {
		return nil, fmt.Errorf("redis: campaign %q: matched %q", id, h["matched"])
	}
	return &acme.Campaign{
		ID: h["id"], CreatedAt: nsTime(h["created"]), CreatedBy: h["by"], Filter: h["filter"],
		ExplanationURL: h["url"], WindowStart: nsTime(h["ws"]), WindowEnd: nsTime(h["we"]), Matched: matched,
	}, nil
}

// ListCampaigns reads the list, newest first, and each campaign in one
// pipeline; a campaign gone (expired) leaves the list.
func (s *Store) ListCampaigns(ctx context.Context) ([]*acme.Campaign, error) {
	ids, err := s.rdb.ZRevRange(ctx, campaignListKey, 0, -1).Result()
	if err != nil {
		return nil, fail(ctx, "list campaigns", err)
	}
	if len(ids) == 0 {
		return []*acme.Campaign{}, nil
	}
	cmds := make([]*goredis.MapStringStringCmd, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, campaignKey(id))
		}
		return nil
	})
	if err != nil {
		return nil, fail(ctx, "list campaigns", err)
	}
	out := make([]*acme.Campaign, 0, len(ids))
	var gone []any
	for i, id := range ids {
		h := cmds[i].Val()
		if len(h) == 0 {
			gone = append(gone, id)
			continue
		}
		c, err := decodeCampaign(id, h)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(gone) > 0 {
		_ = s.rdb.ZRem(ctx, campaignListKey, gone...).Err() // tidying
	}
	return out, nil
}

// CampaignPending pages through the campaign's members in campcerts, by
// notAfter: a cursor is the score and member of the last handed out.
func (s *Store) CampaignPending(ctx context.Context, id, cursor string, limit int) ([]string, string, int, error) {
	if limit <= 0 {
		return nil, "", 0, fmt.Errorf("redis: campaign pending: limit %d is not positive", limit)
	}
	score, member := "", ""
	if cursor != "" {
		var ok bool
		score, member, ok = strings.Cut(cursor, "/")
		if _, err := strconv.ParseInt(score, 10, 64); !ok || err != nil || member == "" {
			return nil, "", 0, fmt.Errorf("%w: campaign cursor %q", storage.ErrNotFound, cursor)
		}
	}
	keys := append(invKeys("", ""), campaignKey(id))
	res, err := campPendingScript.Run(ctx, s.rdb, keys, ms(s.now()), limit, score, member).Slice()
	if err != nil {
		return nil, "", 0, fail(ctx, "campaign pending", err)
	}
	if len(res) == 1 {
		return nil, "", 0, notFound("campaign", id)
	}
	count, ok := res[0].(int64)
	if !ok || len(res) < 3 {
		return nil, "", 0, fmt.Errorf("redis: campaign pending: unexpected script result %v", res)
	}
	next := ""
	if sc, _ := res[1].(string); sc != "" {
		m, _ := res[2].(string)
		f, err := strconv.ParseFloat(sc, 64)
		if err != nil {
			return nil, "", 0, fmt.Errorf("redis: campaign pending: position %q", sc)
		}
		next = strconv.FormatInt(int64(f), 10) + "/" + m
	}
	serials := make([]string, 0, len(res)-3)
	for _, v := range res[3:] {
		serial, _ := v.(string)
		serials = append(serials, serial)
	}
	return serials, next, int(count), nil
}
