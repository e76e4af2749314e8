package audit_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acmed/acmed/acme/audit"
)

// chainLines writes a chain of n records and returns its lines.
func chainLines(t *testing.T, n int) []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path, "replica-1")
	appendN(t, l, n)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return split(string(raw))
}

// TestVerifyTamper: each way of editing a chain is named at the first
// line it breaks.
func TestVerifyTamper(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(l []string) string
		want   string
	}{
		{"edit a field", func(l []string) string { l[4] = strings.Replace(l[4], `"acct1"`, `"acct2"`, 1); return join(l) }, "line 6: prev does not match line 5's hash"},
		{"edit a detail", func(l []string) string { l[0] = strings.Replace(l[0], "a.example", "b.example", 1); return join(l) }, "line 2: prev does not match line 1's hash"},
		{"delete a line", func(l []string) string { return join(append(l[:3], l[4:]...)) }, "line 4: seq 5 after 3"},
		{"delete the first line", func(l []string) string { return join(l[1:]) }, "line 1: seq 2, but a chain starts at 1"},
		{"reorder", func(l []string) string { l[2], l[3] = l[3], l[2]; return join(l) }, "line 3: seq 4 after 2"},
		{"truncate the last line", func(l []string) string { s := join(l); return s[:len(s)-20] }, "line 8: truncated: no newline at its end"},
		{"drop the last newline", func(l []string) string { s := join(l); return s[:len(s)-1] }, "line 8: truncated: no newline at its end"},
		{"change prev", func(l []string) string { l[6] = changePrev(l[6]); return join(l) }, "line 7: prev does not match line 6's hash"},
		{"change the first prev", func(l []string) string { l[0] = changePrev(l[0]); return join(l) }, "line 1: prev is not all zeros"},
		{"not JSON", func(l []string) string { l[3] = "hello"; return join(l) }, "line 4: not JSON"},
		{"empty line", func(l []string) string { l[3] = ""; return join(l) }, "line 4: not JSON"},
		{"not a record", func(l []string) string { l[3] = `{"hello":1}`; return join(l) }, "line 4: not an audit record"},
		{"record without seq", func(l []string) string { l[3] = strings.Replace(l[3], `"seq":4,`, ``, 1); return join(l) }, "line 4: no seq"},
		{"rewritten seq and prev", func(l []string) string {
			// A forger who recomputes the edited line's successor still
			// breaks the link after it.
			l[4] = strings.Replace(l[4], `"acct1"`, `"acct2"`, 1)
			i := strings.Index(l[5], `"prev":"`) + len(`"prev":"`)
			l[5] = l[5][:i] + hashOf(l[4]) + l[5][i+64:]
			return join(l)
		}, "line 7: prev does not match line 6's hash"},
		{"another replica's line", func(l []string) string {
			l[7] = strings.Replace(l[7], `"replica":"replica-1"`, `"replica":"replica-2"`, 1)
			return join(l)
		}, `line 8: replica "replica-2" in the chain of replica "replica-1"`},
		{"CRLF line ends", func(l []string) string { return strings.ReplaceAll(join(l), "\n", "\r\n") }, "line 2: prev does not match line 1's hash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := audit.Verify(strings.NewReader(tc.tamper(chainLines(t, 8))))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("Verify: %v\nwant %q", err, tc.want)
			}
		})
	}
}

func TestVerifyIntact(t *testing.T) {
	lines := chainLines(t, 5)
	sum, err := audit.Verify(strings.NewReader(join(lines)))
	if err != nil {
		t.Fatal(err)
	}
	want := audit.Summary{Records: 5, Replica: "replica-1", LastSeq: 5, LastHash: hashOf(lines[4])}
	if sum != want {
		t.Errorf("summary %+v, want %+v", sum, want)
	}
	if sum, err := audit.Verify(strings.NewReader("")); err != nil || sum.Records != 0 {
		t.Errorf("empty file: %+v %v, want intact with no records", sum, err)
	}
}

// TestVerifyAnchor: a hash kept elsewhere shows what the chain alone
// cannot: its last records removed or rewritten.
func TestVerifyAnchor(t *testing.T) {
	lines := chainLines(t, 6)
	for _, tc := range []struct {
		name   string
		file   string
		anchor audit.Anchor
		want   string
	}{
		{"holds", join(lines), audit.Anchor{Seq: 4, Hash: hashOf(lines[3])}, ""},
		{"last records removed", join(lines[:4]), audit.Anchor{Seq: 6, Hash: hashOf(lines[5])}, "line 4: the chain ends at seq 4, before the anchor's seq 6"},
		{"last record rewritten", join(append(lines[:5:5], strings.Replace(lines[5], "acct1", "acct9", 1))), audit.Anchor{Seq: 6, Hash: hashOf(lines[5])}, "line 6: hash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := audit.Verify(strings.NewReader(tc.file), tc.anchor)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)) {
				t.Fatalf("Verify: %v, want %q", err, tc.want)
			}
		})
	}
}
