package authority_test

import (
	"path/filepath"
	"syscall"
	"testing"

	"github.com/acmed/acmed/acme/audit"
	"github.com/acmed/acmed/acme/authority"
)

// withAuditLog chains the audit events to a file in b.TempDir(), as
// --audit-log does, and reports the process's CPU time per operation
// (cpu-ns/op) beside the wall time, which the chain's fsyncs lengthen
// without using CPU.
func withAuditLog(b *testing.B) func(*authority.Config) {
	b.Helper()
	l, err := audit.Open(filepath.Join(b.TempDir(), "audit.log"), audit.Options{Replica: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return func(c *authority.Config) { c.Audit = l }
}

// reportCPU adds cpu-ns/op: the process's user+system time over the run.
func reportCPU(b *testing.B, run func()) {
	b.Helper()
	before := cpuTime(b)
	run()
	b.ReportMetric(float64(cpuTime(b)-before)/float64(b.N), "cpu-ns/op")
}

func cpuTime(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkFinalizeAudit is BenchmarkFinalize with --audit-log: the
// issuance's record written and fsync'd before the order is valid.
// BenchmarkFinalizeNoAudit is the same measure without it. cpu-ns/op
// counts the whole loop, the untimed new order and CSR included, so only
// the difference between the two is the chain's.
func BenchmarkFinalizeAudit(b *testing.B) {
	tune := withAuditLog(b)
	reportCPU(b, func() { benchFinalize(b, false, tune) })
}

func BenchmarkFinalizeNoAudit(b *testing.B) {
	reportCPU(b, func() { benchFinalize(b, false) })
}

// BenchmarkNewOrderAudit: new-order with its order.create record.
func BenchmarkNewOrderAudit(b *testing.B) {
	tune := withAuditLog(b)
	reportCPU(b, func() { benchNewOrder(b, false, tune) })
}

func BenchmarkNewOrderNoAudit(b *testing.B) {
	reportCPU(b, func() { benchNewOrder(b, false) })
}
