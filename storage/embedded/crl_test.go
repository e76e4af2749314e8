package embedded_test

import (
	"path/filepath"
	"testing"

	"github.com/acmed/acmed/storage/embedded"
	"github.com/acmed/acmed/storage/storagetest"
)

func TestCRLConformance(t *testing.T) {
	storagetest.RunCRL(t, func(t *testing.T) storagetest.CRLStore {
		return open(t, filepath.Join(t.TempDir(), "acmed.db"), embedded.Config{})
	})
}

// TestCRLNumberSurvivesRestart: the next run on the file goes on from the
// last number handed out.
func TestCRLNumberSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "acmed.db")
	s := open(t, path, embedded.Config{})
	for want := uint64(1); want <= 3; want++ {
		if n, err := s.NextCRLNumber(t.Context(), "issuer", 0); err != nil || n != want {
			t.Fatalf("NextCRLNumber = %d, %v; want %d", n, err, want)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, embedded.Config{})
	if n, err := s.NextCRLNumber(t.Context(), "issuer", 0); err != nil || n != 4 {
		t.Fatalf("NextCRLNumber after reopening = %d, %v; want 4", n, err)
	}
}

func TestIssuersConformance(t *testing.T) {
	storagetest.RunIssuers(t, func(t *testing.T) storagetest.IssuersStore {
		return open(t, filepath.Join(t.TempDir(), "acmed.db"), embedded.Config{})
	})
}
