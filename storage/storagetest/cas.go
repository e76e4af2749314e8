package storagetest

import (
	"errors"
	"sync"
	"testing"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// testCompareAndSet races finalizations of one order: the update that only
// moves a pending order to processing must win exactly once (decision 2).
func testCompareAndSet(t *testing.T, open func(*testing.T) storage.Store) {
	s, ctx := open(t), t.Context()
	mustNot(t, "CreateOrder", s.CreateOrder(ctx, newOrder("order-1", "acct-1"), nil))
	errNotPending := errors.New("order is not pending")

	const racers = 50
	errs := make(chan error, racers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range racers {
		wg.Go(func() {
			<-start
			_, err := s.UpdateOrder(ctx, "order-1", func(o *acme.Order) error {
				if o.Status != acme.StatusPending {
					return errNotPending
				}
				o.Status = acme.StatusProcessing
				return nil
			})
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)

	won := 0
	for err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, errNotPending):
			t.Errorf("UpdateOrder: %v", err)
		}
	}
	mustEqual(t, "updates that won", won, 1)
	got, err := s.Order(ctx, "order-1")
	mustNot(t, "Order", err)
	mustEqual(t, "final status", got.Status, acme.StatusProcessing)
}
