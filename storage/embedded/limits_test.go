package embedded_test

import (
	"path/filepath"
	"testing"

	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/embedded"
	"github.com/acmed/acmed/storage/storagetest"
)

func TestLimiterConformance(t *testing.T) {
	storagetest.RunLimiter(t, func(t *testing.T) storage.Limiter {
		return open(t, filepath.Join(t.TempDir(), "acmed.db"), embedded.Config{})
	})
}
