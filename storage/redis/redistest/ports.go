package redistest

import (
	"net"
	"strconv"
	"sync"
	"testing"
)

// busOffset is where Redis Cluster puts a node's bus port.
const busOffset = 10000

var (
	portsMu sync.Mutex
	// handedOut remembers every port (and bus port) given to a server in this
	// test binary: the kernel may hand a closed port out again, and a killed
	// server must find its port unclaimed by a sibling when it restarts.
	handedOut = map[int]bool{}
)

// freePort returns a port on 127.0.0.1 that nothing listens on right now.
// With bus set, port+10000 is free too (and still a valid port). The check
// races with other processes; callers retry on a bind failure.
func freePort(t testing.TB, bus bool) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 200 {
		p, ok := probe(0)
		if !ok || handedOut[p] {
			continue
		}
		if bus {
			if p+busOffset > 65535 || handedOut[p+busOffset] {
				continue
			}
			if _, ok := probe(p + busOffset); !ok {
				continue
			}
			handedOut[p+busOffset] = true
		}
		handedOut[p] = true
		return p
	}
	t.Fatal("redistest: no free port pair on 127.0.0.1")
	return 0
}

// probe binds 127.0.0.1:port (0 for any) and releases it at once.
func probe(port int) (int, bool) {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return 0, false
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, true
}
