package challenges

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// snapshot renders g's state: global slots running, the global queue (by
// account, in order), and per account "held/waiting".
func (g *gate) snapshot() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var q []string
	for _, w := range g.slots.waiting {
		q = append(q, w.account)
	}
	s := fmt.Sprintf("run=%d q=[%s]", g.slots.held, strings.Join(q, " "))
	names := make([]string, 0, len(g.accounts))
	for n := range g.accounts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		a := g.accounts[n]
		s += fmt.Sprintf(" %s:%d/%d", n, a.held, len(a.waiting))
	}
	return s
}

// gateJobs drives jobs through a gate, one goroutine each; a job's account
// is its name's first letter.
type gateJobs struct {
	t      *testing.T
	g      *gate
	mu     sync.Mutex
	admit  map[string]func() // admitted, not released: the release
	failed map[string]error
	cancel map[string]context.CancelFunc
}

func (j *gateJobs) acquire(job string) {
	ctx, cancel := context.WithCancel(j.t.Context())
	j.cancel[job] = cancel
	go func() {
		release, err := j.g.acquire(ctx, job[:1])
		j.mu.Lock()
		defer j.mu.Unlock()
		if err != nil {
			j.failed[job] = err
			return
		}
		j.admit[job] = release
	}()
}

func (j *gateJobs) release(job string) {
	j.mu.Lock()
	release := j.admit[job]
	delete(j.admit, job)
	j.mu.Unlock()
	if release == nil {
		j.t.Fatalf("release %s: not admitted", job)
	}
	release()
}

// state is the gate's snapshot, then "adm" and the admitted jobs, then
// "fail" and the failed ones.
func (j *gateJobs) state() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	adm := make([]string, 0, len(j.admit))
	for n := range j.admit {
		adm = append(adm, n)
	}
	failed := make([]string, 0, len(j.failed))
	for n := range j.failed {
		failed = append(failed, n)
	}
	sort.Strings(adm)
	sort.Strings(failed)
	return fmt.Sprintf("%s adm=%v fail=%v", j.g.snapshot(), adm, failed)
}

// await polls until the state is want; goroutines wake asynchronously
// after a hand-off.
func (j *gateJobs) await(step, want string) {
	j.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := j.state()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			j.t.Fatalf("after %s:\n got %s\nwant %s", step, got, want)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestGate(t *testing.T) {
	type step struct {
		do   string // "acquire JOB", "release JOB" or "cancel JOB"
		want string // state after it (see gateJobs.state)
	}
	tests := []struct {
		name              string
		total, perAccount int
		steps             []step
	}{
		{
			name: "over its limit an account waits without a slot", total: 2, perAccount: 1,
			steps: []step{
				{"acquire a1", "run=1 q=[] a:1/0 adm=[a1] fail=[]"},
				{"acquire a2", "run=1 q=[] a:1/1 adm=[a1] fail=[]"},
				{"acquire b1", "run=2 q=[] a:1/1 b:1/0 adm=[a1 b1] fail=[]"},
				{"release a1", "run=2 q=[] a:1/0 b:1/0 adm=[a2 b1] fail=[]"},
			},
		},
		{
			// a holds every slot; its third job waits for a's token, not
			// for a slot, so b is first when a slot frees.
			name: "an account at its limit queues no more for slots", total: 2, perAccount: 2,
			steps: []step{
				{"acquire a1", "run=1 q=[] a:1/0 adm=[a1] fail=[]"},
				{"acquire a2", "run=2 q=[] a:2/0 adm=[a1 a2] fail=[]"},
				{"acquire a3", "run=2 q=[] a:2/1 adm=[a1 a2] fail=[]"},
				{"acquire b1", "run=2 q=[b] a:2/1 b:1/0 adm=[a1 a2] fail=[]"},
				{"release a1", "run=2 q=[a] a:2/0 b:1/0 adm=[a2 b1] fail=[]"},
				{"release a2", "run=2 q=[] a:1/0 b:1/0 adm=[a3 b1] fail=[]"},
			},
		},
		{
			name: "slots go to waiters first come, first served", total: 1, perAccount: 1,
			steps: []step{
				{"acquire a1", "run=1 q=[] a:1/0 adm=[a1] fail=[]"},
				{"acquire b1", "run=1 q=[b] a:1/0 b:1/0 adm=[a1] fail=[]"},
				{"acquire c1", "run=1 q=[b c] a:1/0 b:1/0 c:1/0 adm=[a1] fail=[]"},
				{"acquire a2", "run=1 q=[b c] a:1/1 b:1/0 c:1/0 adm=[a1] fail=[]"},
				{"release a1", "run=1 q=[c a] a:1/0 b:1/0 c:1/0 adm=[b1] fail=[]"},
				{"release b1", "run=1 q=[a] a:1/0 c:1/0 adm=[c1] fail=[]"},
				{"release c1", "run=1 q=[] a:1/0 adm=[a2] fail=[]"},
			},
		},
		{
			name: "canceled waiting for the account's token", total: 2, perAccount: 1,
			steps: []step{
				{"acquire a1", "run=1 q=[] a:1/0 adm=[a1] fail=[]"},
				{"acquire a2", "run=1 q=[] a:1/1 adm=[a1] fail=[]"},
				{"cancel a2", "run=1 q=[] a:1/0 adm=[a1] fail=[a2]"},
				{"release a1", "run=0 q=[] adm=[] fail=[a2]"},
			},
		},
		{
			name: "canceled waiting for a slot", total: 1, perAccount: 1,
			steps: []step{
				{"acquire a1", "run=1 q=[] a:1/0 adm=[a1] fail=[]"},
				{"acquire b1", "run=1 q=[b] a:1/0 b:1/0 adm=[a1] fail=[]"},
				{"acquire c1", "run=1 q=[b c] a:1/0 b:1/0 c:1/0 adm=[a1] fail=[]"},
				{"cancel b1", "run=1 q=[c] a:1/0 c:1/0 adm=[a1] fail=[b1]"},
				{"release a1", "run=1 q=[] c:1/0 adm=[c1] fail=[b1]"},
			},
		},
		{
			name: "no caps", total: 0, perAccount: 0,
			steps: []step{
				{"acquire a1", "run=1 q=[] a:1/0 adm=[a1] fail=[]"},
				{"acquire a2", "run=2 q=[] a:2/0 adm=[a1 a2] fail=[]"},
				{"acquire a3", "run=3 q=[] a:3/0 adm=[a1 a2 a3] fail=[]"},
			},
		},
		{
			name: "no per-account cap", total: 2, perAccount: 0,
			steps: []step{
				{"acquire a1", "run=1 q=[] a:1/0 adm=[a1] fail=[]"},
				{"acquire a2", "run=2 q=[] a:2/0 adm=[a1 a2] fail=[]"},
				{"acquire a3", "run=2 q=[a] a:3/0 adm=[a1 a2] fail=[]"},
				{"acquire b1", "run=2 q=[a b] a:3/0 b:1/0 adm=[a1 a2] fail=[]"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := &gateJobs{t: t, g: newGate(tc.total, tc.perAccount),
				admit: map[string]func(){}, failed: map[string]error{}, cancel: map[string]context.CancelFunc{}}
			for _, s := range tc.steps {
				op, job, _ := strings.Cut(s.do, " ")
				switch op {
				case "acquire":
					j.acquire(job)
				case "release":
					j.release(job)
				case "cancel":
					j.cancel[job]()
				default:
					t.Fatalf("bad step %q", s.do)
				}
				j.await(s.do, s.want)
			}
			// Everything released, nothing is left of any account.
			for {
				j.mu.Lock()
				var next string
				for n := range j.admit {
					next = n
					break
				}
				j.mu.Unlock()
				if next == "" {
					break
				}
				j.release(next)
				j.awaitSettled()
			}
			if got := j.g.snapshot(); got != "run=0 q=[]" {
				t.Errorf("all released: %s, want run=0 q=[]", got)
			}
		})
	}
}

// awaitSettled polls until no job is between a hand-off and recording
// its admission: every granted waiter has returned.
func (j *gateJobs) awaitSettled() {
	j.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		j.g.mu.Lock()
		inGate := j.g.slots.held
		j.g.mu.Unlock()
		j.mu.Lock()
		admitted := len(j.admit)
		j.mu.Unlock()
		if inGate == admitted {
			return
		}
		if time.Now().After(deadline) {
			j.t.Fatalf("gate runs %d, %d jobs admitted", inGate, admitted)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestGateConcurrent hammers a gate from many goroutines, some canceled
// while they wait, and checks the caps held throughout and nothing is left
// after (go test -race checks the locking).
func TestGateConcurrent(t *testing.T) {
	const total, perAccount, accounts, jobs = 4, 2, 5, 400
	g := newGate(total, perAccount)
	var (
		mu       sync.Mutex
		running  int
		byAcct   = map[string]int{}
		overflow []string
	)
	var wg sync.WaitGroup
	for i := range jobs {
		account := fmt.Sprintf("acct%d", i%accounts)
		ctx, cancel := context.WithCancel(t.Context())
		if rand.IntN(4) == 0 {
			go cancel() // some give up, waiting or not
		}
		wg.Go(func() {
			defer cancel()
			release, err := g.acquire(ctx, account)
			if err != nil {
				return
			}
			mu.Lock()
			running++
			byAcct[account]++
			if running > total || byAcct[account] > perAccount {
				overflow = append(overflow, fmt.Sprintf("%d running, %d of %s", running, byAcct[account], account))
			}
			mu.Unlock()
			runtime.Gosched() // let others try while this one runs
			mu.Lock()
			running--
			byAcct[account]--
			mu.Unlock()
			release()
		})
	}
	wg.Wait()
	if len(overflow) > 0 {
		t.Errorf("caps exceeded: %v", slices.Compact(overflow))
	}
	if got := g.snapshot(); got != "run=0 q=[]" {
		t.Errorf("after all jobs: %s, want run=0 q=[]", got)
	}
}
