package storagetest

import (
	"fmt"
	"testing"

	"github.com/acmed/acmed/storage"
)

// testListAccounts pages through every account exactly once, in ID order,
// whatever the page size.
func testListAccounts(t *testing.T, open func(*testing.T) storage.Store) {
	s, ctx := open(t), t.Context()
	ids, next, err := s.ListAccounts(ctx, "", 10)
	mustNot(t, "ListAccounts on an empty store", err)
	if len(ids) != 0 || next != "" {
		t.Fatalf("ListAccounts on an empty store = %q, %q; want nothing", ids, next)
	}
	var want []string
	for i := range 7 {
		id := fmt.Sprintf("acct-%02d", i)
		want = append(want, id)
		mustNot(t, "CreateAccount", s.CreateAccount(ctx, newAccount(id, "key-"+id)))
	}
	for _, limit := range []int{1, 3, 7, 100} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			var got []string
			cursor := ""
			for pages := 0; ; pages++ {
				if pages > len(want) {
					t.Fatalf("ListAccounts did not end after %d pages", pages)
				}
				ids, next, err := s.ListAccounts(ctx, cursor, limit)
				mustNot(t, "ListAccounts", err)
				if len(ids) > limit {
					t.Fatalf("ListAccounts(limit %d) returned %d IDs", limit, len(ids))
				}
				got = append(got, ids...)
				if next == "" {
					break
				}
				cursor = next
			}
			mustEqual(t, "listed IDs", got, want)
		})
	}
}
