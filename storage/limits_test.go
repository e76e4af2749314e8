package storage_test

import (
	"testing"
	"time"

	"github.com/acmed/acmed/storage"
)

func TestGCRA(t *testing.T) {
	const s = int64(time.Second / time.Microsecond)
	tenPerMinute := storage.Limit{Count: 10, Period: time.Minute} // one every 6s
	now := 1000 * s
	for _, tc := range []struct {
		name      string
		l         storage.Limit
		tat, cost int64
		next      int64
		retry     int64
		ok        bool
	}{
		{"empty: first request", tenPerMinute, 0, 1, now + 6*s, 0, true},
		{"stale tat counts from now", tenPerMinute, now - 100*s, 1, now + 6*s, 0, true},
		{"burst of count at once", tenPerMinute, 0, 10, now + 60*s, 0, true},
		{"one over the burst", tenPerMinute, 0, 11, 0, 6 * s, false},
		{"bucket full", tenPerMinute, now + 60*s, 1, now + 60*s, 6 * s, false},
		{"bucket full, retry counts down", tenPerMinute, now + 58*s, 1, now + 58*s, 4 * s, false},
		{"room for exactly one", tenPerMinute, now + 54*s, 1, now + 60*s, 0, true},
		{"probe spends nothing", tenPerMinute, now + 54*s, 0, now + 54*s, 0, true},
		{"probe of a full bucket", tenPerMinute, now + 60*s, 0, now + 60*s, 6 * s, false},
		{"cost beyond room", tenPerMinute, now + 48*s, 3, now + 48*s, 6 * s, false},
		{"cap with one", storage.Limit{Count: 1, Period: time.Hour}, now + 1, 1, now + 1, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next, retry, ok := storage.GCRA(tc.l, tc.tat, now, tc.cost)
			if ok != tc.ok || retry != tc.retry {
				t.Fatalf("GCRA = (ok %v, retry %d), want (ok %v, retry %d)", ok, retry, tc.ok, tc.retry)
			}
			want := tc.next
			if !tc.ok {
				want = tc.tat
			}
			if next != want {
				t.Fatalf("next tat = %d, want %d", next, want)
			}
		})
	}
}

func TestLimitOff(t *testing.T) {
	for _, l := range []storage.Limit{{}, {Count: 0, Period: time.Hour}, {Count: 5}} {
		if !l.Off() {
			t.Errorf("%+v is not off", l)
		}
	}
	if (storage.Limit{Count: 1, Period: time.Second}).Off() {
		t.Error("1/1s is off")
	}
}

func TestGCRASpend(t *testing.T) {
	const s = int64(time.Second / time.Microsecond)
	l := storage.Limit{Count: 10, Period: time.Minute} // one every 6s
	now := 1000 * s
	for _, tc := range []struct {
		name      string
		tat, cost int64
		want      int64
	}{
		{"empty", 0, 1, now + 6*s},
		{"over the limit all the same", now + 60*s, 1, now + 66*s},
		{"give back", now + 12*s, -1, now + 6*s},
		{"never below now", now + 6*s, -3, now},
		{"stale tat gives back nothing", now - 60*s, -1, now},
	} {
		if got := storage.GCRASpend(l, tc.tat, now, tc.cost); got != tc.want {
			t.Errorf("%s: GCRASpend = %d, want %d", tc.name, got, tc.want)
		}
	}
}
