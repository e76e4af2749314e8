package audit_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acmed/acmed/acme/audit"
)

var ctx = context.Background()

// fixedClock returns times one second apart from a fixed start.
func fixedClock() func() time.Time {
	t := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	var mu sync.Mutex
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

// openLog opens path as replica, failing the test on error, and closes
// it at the end.
func openLog(t *testing.T, path, replica string) *audit.Log {
	t.Helper()
	l, err := audit.Open(path, audit.Options{Replica: replica, Fallback: "host-a", Now: fixedClock()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// appendN appends n issuance-like records.
func appendN(t *testing.T, l *audit.Log, n int) {
	t.Helper()
	for i := range n {
		err := l.Append(ctx, audit.Entry{
			Event:   "certificate.issue",
			Actor:   audit.Party{Kind: audit.KindAccount, ID: "acct1"},
			Subject: &audit.Party{Kind: "certificate", ID: fmt.Sprintf("%02x", i+1)},
			Details: map[string]any{"order": "o1", "identifiers": []string{"a.example"}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func verifyFile(t *testing.T, path string) (audit.Summary, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return audit.Verify(f)
}

func hashOf(line string) string {
	h := sha256.Sum256([]byte(line))
	return hex.EncodeToString(h[:])
}

func TestRecordFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path, "")
	err := l.Append(ctx, audit.Entry{
		Time: time.Date(2025, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600)), Event: "account.create",
		Actor: audit.Party{Kind: audit.KindEAB, ID: "kid1"}, Subject: &audit.Party{Kind: "account", ID: "a1"},
		Details: map[string]any{
			"err": errors.New("boom"), "at": time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), "took": 1500 * time.Millisecond,
			"n": 3, "odd": make(chan int), "line": "a\nb",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append(ctx, audit.Entry{Event: "server.stop"}); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), raw)
	}
	wantPrefix := `{"v":1,"seq":1,"time":"2025-01-02T02:04:05.000000006Z","replica":"host-a","event":"account.create",` +
		`"actor":{"kind":"eab","id":"kid1"},"subject":{"kind":"account","id":"a1"},"details":{`
	if !strings.HasPrefix(lines[0], wantPrefix) {
		t.Errorf("first record\n%s\nwant it to start\n%s", lines[0], wantPrefix)
	}
	var first struct {
		Details map[string]any
		Prev    string
	}
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	wantDetails := map[string]any{"err": "boom", "at": "2025-01-02T03:04:05.000000000Z", "took": "1.5s", "n": 3.0, "line": "a\nb"}
	for k, v := range wantDetails {
		if first.Details[k] != v {
			t.Errorf("details.%s = %#v, want %#v", k, first.Details[k], v)
		}
	}
	if s, ok := first.Details["odd"].(string); !ok || !strings.HasPrefix(s, "0x") {
		t.Errorf("details.odd = %#v, want fmt's text for a channel", first.Details["odd"])
	}
	if first.Prev != strings.Repeat("0", 64) {
		t.Errorf("first prev %s, want zeros", first.Prev)
	}
	var second struct {
		Seq     int
		Actor   audit.Party
		Subject *audit.Party
		Prev    string
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	if second.Seq != 2 || second.Prev != hashOf(lines[0]) {
		t.Errorf("second record seq %d prev %s, want 2 and %s", second.Seq, second.Prev, hashOf(lines[0]))
	}
	if second.Actor != (audit.Party{Kind: audit.KindSystem, ID: "host-a"}) || second.Subject != nil {
		t.Errorf("second record actor %+v subject %+v, want the system replica and none", second.Actor, second.Subject)
	}
	if !strings.Contains(lines[1], `"subject":null,"details":{}`) {
		t.Errorf("second record %s: want an explicit null subject and empty details", lines[1])
	}
	sum, err := verifyFile(t, path)
	if err != nil {
		t.Fatal(err)
	}
	want := audit.Summary{Records: 2, Replica: "host-a", LastSeq: 2, LastHash: hashOf(lines[1])}
	if sum != want {
		t.Errorf("summary %+v, want %+v", sum, want)
	}
	if seq, h := l.Head(); seq != 2 || h != want.LastHash {
		t.Errorf("Head %d %s, want 2 %s", seq, h, want.LastHash)
	}
}

// TestRestartContinues: a reopened file continues its chain under the
// name its records carry.
func TestRestartContinues(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path, "replica-1")
	appendN(t, l, 3)
	l.Close()

	for _, name := range []string{"", "replica-1"} {
		l := openLog(t, path, name)
		if l.Replica() != "replica-1" {
			t.Errorf("reopened as %q: replica %q, want the file's replica-1", name, l.Replica())
		}
		appendN(t, l, 2)
		l.Close()
	}
	sum, err := verifyFile(t, path)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Records != 7 || sum.LastSeq != 7 || sum.Replica != "replica-1" {
		t.Errorf("summary %+v, want 7 records of replica-1", sum)
	}
}

func TestOpenRefuses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		damage  func(lines []string) string
		replica string
		want    string
	}{
		{"truncated last line", func(l []string) string { return join(l)[:len(join(l))-10] }, "", "line 4: truncated: no newline at its end"},
		{"last line not JSON", func(l []string) string { l[3] = "garbage"; return join(l) }, "", "line 4: not JSON"},
		{"last line's prev changed", func(l []string) string { l[3] = changePrev(l[3]); return join(l) }, "", "line 4: prev does not match line 3's hash"},
		{"last line deleted twice over", func(l []string) string { return join(append(l[:2], l[3])) }, "", "line 3: seq 4 after 2"},
		{"line before the last not JSON", func(l []string) string { l[2] = "{"; return join(l) }, "", "line 3: not JSON"},
		{"another replica's file", func(l []string) string { return join(l) }, "replica-2", `line 4 was written by replica "replica-1", not "replica-2"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			l := openLog(t, path, "replica-1")
			appendN(t, l, 4)
			l.Close()
			raw, _ := os.ReadFile(path)
			if err := os.WriteFile(path, []byte(tc.damage(split(string(raw)))), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := audit.Open(path, audit.Options{Replica: tc.replica, Fallback: "x"})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), path+": ") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Open: %v\nwant one line starting with the file and holding %q", err, tc.want)
			}
		})
	}
}

// changePrev changes the first hex digit of a record's prev.
func changePrev(line string) string {
	i := strings.Index(line, `"prev":"`) + len(`"prev":"`)
	d := "1"
	if line[i] == '1' {
		d = "2"
	}
	return line[:i] + d + line[i+1:]
}

func split(s string) []string { return strings.Split(strings.TrimSuffix(s, "\n"), "\n") }
func join(l []string) string  { return strings.Join(l, "\n") + "\n" }

// TestOneProcessAFile: a second Log on a file in use (another replica
// given the same path) is refused.
func TestOneProcessAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	openLog(t, path, "a")
	_, err := audit.Open(path, audit.Options{Replica: "a"})
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Open: %v, want in use", err)
	}
}

func TestReplicaNames(t *testing.T) {
	for _, name := range []string{"", strings.Repeat("x", 256), "a\nb", "tab\there"} {
		if _, err := audit.New(&bytes.Buffer{}, audit.Options{Replica: name}); err == nil {
			t.Errorf("replica %q accepted", name)
		}
	}
	if _, err := audit.New(&bytes.Buffer{}, audit.Options{Replica: "ca-1.example café"}); err != nil {
		t.Error(err)
	}
}

// TestConcurrentAppends: appends from many goroutines form one chain,
// every record once.
func TestConcurrentAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path, "r")
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				if err := l.Append(ctx, audit.Entry{Event: "e", Details: map[string]any{"g": g, "i": i}}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	sum, err := verifyFile(t, path)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Records != 400 {
		t.Fatalf("%d records, want 400", sum.Records)
	}
}

// TestStdoutMode: a Log on a stream starts its own chain, which verifies.
func TestStdoutMode(t *testing.T) {
	var buf bytes.Buffer
	l, err := audit.New(&buf, audit.Options{Fallback: "host-b"})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 3)
	sum, err := audit.Verify(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Records != 3 || sum.Replica != "host-b" {
		t.Errorf("summary %+v", sum)
	}
}

// failingWriter writes part of what it is given, then fails.
type failingWriter struct{}

func (failingWriter) Write(p []byte) (int, error) { return len(p) / 2, errors.New("disk full") }

// TestBrokenStops: a record half written to a stream that cannot be cut
// back leaves the chain's end unknown: the log stops and says so.
func TestBrokenStops(t *testing.T) {
	l, err := audit.New(failingWriter{}, audit.Options{Replica: "r"})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append(ctx, audit.Entry{Event: "e"}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Append: %v, want disk full", err)
	}
	select {
	case <-l.Broken():
	default:
		t.Fatal("log not broken after a partial write")
	}
	if err := l.Append(ctx, audit.Entry{Event: "e"}); !errors.Is(err, audit.ErrBroken) {
		t.Fatalf("Append after: %v, want ErrBroken", err)
	}
}
