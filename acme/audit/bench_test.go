package audit_test

import (
	"io"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/acmed/acmed/acme/audit"
)

// issuance is a certificate.issue record as the authority hands it over.
var issuance = audit.Entry{
	Event: "certificate.issue", Actor: audit.Party{Kind: audit.KindAccount, ID: "Xb3kP0aZq9mYc2Lw8RtV1A"},
	Subject: &audit.Party{Kind: "certificate", ID: "0a6f3c9e1b2d4f5a7c8e9d0b1a2c3e4f5a6b7c8d"},
	Details: map[string]any{"order": "Xb3kP0aZq9mYc2Lw8RtV1A-o8Jd7", "identifiers": []string{"www.example.internal", "example.internal"},
		"profile": "mtls", "not_after": "2025-01-09T03:04:05.000000000Z"},
}

// BenchmarkAppend: one record written and fsync'd to a file, one writer
// at a time; cpu-ns/op is the process's CPU time (user+system) a record.
func BenchmarkAppend(b *testing.B) {
	l, err := audit.Open(filepath.Join(b.TempDir(), "audit.log"), audit.Options{Replica: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	benchAppend(b, l, false)
}

// BenchmarkAppendParallel: writers at once share fsyncs.
func BenchmarkAppendParallel(b *testing.B) {
	l, err := audit.Open(filepath.Join(b.TempDir(), "audit.log"), audit.Options{Replica: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	benchAppend(b, l, true)
}

// BenchmarkAppendNoSync: encoding and hashing alone (standard output
// mode into a pipe that takes everything).
func BenchmarkAppendNoSync(b *testing.B) {
	l, err := audit.New(io.Discard, audit.Options{Replica: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	benchAppend(b, l, false)
}

func benchAppend(b *testing.B, l *audit.Log, parallel bool) {
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	b.ResetTimer()
	if parallel {
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := l.Append(ctx, issuance); err != nil {
					b.Error(err)
					return
				}
			}
		})
	} else {
		for range b.N {
			if err := l.Append(ctx, issuance); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano()
	b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
}
