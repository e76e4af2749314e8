package challengetest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// DNS is an authoritative DNS server for every name. A name answers the
// default addresses (A 127.0.0.1 unless SetDefault says otherwise) and no
// TXT records until told otherwise; Remove makes a name not exist.
//
// A name holds either a CNAME or other data, as in real DNS: SetCNAME drops
// the name's other records and setting any other record drops its CNAME.
type DNS struct {
	Addr string // host:port, for --resolver

	udp, tcp *dns.Server

	mu     sync.Mutex
	def4   []netip.Addr
	def6   []netip.Addr
	names  map[string]*dnsName // by canonicalName
	closed bool
}

// dnsName is what one name answers besides the defaults.
type dnsName struct {
	removed bool
	cname   string
	txt     []string
	// own4 and own6 say the name's addresses of that family replace the
	// default ones, even when there are none.
	own4, own6 bool
	v4, v6     []netip.Addr
}

func (n *dnsName) empty() bool {
	return !n.removed && n.cname == "" && len(n.txt) == 0 && !n.own4 && !n.own6
}

// ednsSize is the UDP payload the server says it accepts: the DNS Flag Day
// 2020 size, which avoids IP fragmentation.
const ednsSize = 1232

// Limits how long a CNAME chain the server follows, so a loop cannot spin.
const maxCNAMEChain = 8

// ListenDNS starts a DNS server on addr, over UDP and TCP on the same port.
// With port 0 both get the same free port.
func ListenDNS(addr string) (*DNS, error) {
	pc, ln, err := listenUDPAndTCP(addr)
	if err != nil {
		return nil, err
	}
	d := &DNS{
		Addr:  pc.LocalAddr().String(),
		def4:  []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1})},
		names: map[string]*dnsName{},
	}
	d.udp = &dns.Server{PacketConn: pc, Handler: d, ReadTimeout: ioTimeout, WriteTimeout: ioTimeout}
	d.tcp = &dns.Server{Listener: ln, Handler: d, ReadTimeout: ioTimeout, WriteTimeout: ioTimeout}
	if err := startDNSServer(d.udp); err != nil {
		pc.Close()
		ln.Close()
		return nil, err
	}
	if err := startDNSServer(d.tcp); err != nil {
		ln.Close()
		_ = d.shutdown(d.udp)
		return nil, err
	}
	return d, nil
}

// StartDNS starts a DNS server over UDP and TCP on one loopback port and
// stops it when the test ends.
func StartDNS(t testing.TB) *DNS {
	t.Helper()
	d, err := ListenDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// listenUDPAndTCP binds both protocols to one port. When the port is chosen
// by the kernel it is only free for UDP, so a TCP clash picks another.
func listenUDPAndTCP(addr string) (net.PacketConn, net.Listener, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	attempts := 1
	if port == "0" {
		attempts = 10
	}
	for {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, err
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		attempts--
		if attempts == 0 || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, err
		}
	}
}

// startDNSServer returns once s is serving, so that no query sent after
// ListenDNS returns can be lost.
func startDNSServer(s *dns.Server) error {
	started := make(chan struct{})
	failed := make(chan error, 1)
	s.NotifyStartedFunc = func() { close(started) }
	go func() { failed <- s.ActivateAndServe() }()
	timer := time.NewTimer(ioTimeout)
	defer timer.Stop()
	select {
	case <-started:
		return nil
	case err := <-failed:
		return fmt.Errorf("dns: %w", err)
	case <-timer.C:
		return errors.New("dns: server did not start")
	}
}

// Close stops the server. It is safe to call more than once.
func (d *DNS) Close() error {
	d.mu.Lock()
	closed := d.closed
	d.closed = true
	d.mu.Unlock()
	if closed {
		return nil
	}
	return errors.Join(d.shutdown(d.udp), d.shutdown(d.tcp))
}

func (d *DNS) shutdown(s *dns.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return s.ShutdownContext(ctx)
}

// ServeDNS implements dns.Handler.
func (d *DNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	// Go's resolver takes an empty answer without AA for a lame referral.
	m.Authoritative = true
	m.RecursionAvailable = false
	switch {
	case req.Opcode != dns.OpcodeQuery:
		m.Rcode = dns.RcodeNotImplemented
	case len(req.Question) != 1:
		m.Rcode = dns.RcodeFormatError
	default:
		d.answer(m, req.Question[0])
	}

	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		size = int(opt.UDPSize())
		m.SetEdns0(ednsSize, false)
	}
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		size = dns.MaxMsgSize
	}
	// A UDP answer that does not fit is cut short with TC set, which tells
	// the client to ask again over TCP.
	m.Truncate(size)
	_ = w.WriteMsg(m)
}

func (d *DNS) answer(m *dns.Msg, q dns.Question) {
	d.mu.Lock()
	defer d.mu.Unlock()
	owner, key := q.Name, canonicalName(q.Name)
	for range maxCNAMEChain {
		n := d.names[key]
		switch {
		case n != nil && n.removed:
			m.Rcode = dns.RcodeNameError
			return
		case n != nil && n.cname != "" && q.Qtype != dns.TypeCNAME:
			m.Answer = append(m.Answer, &dns.CNAME{Hdr: header(owner, dns.TypeCNAME), Target: n.cname})
			owner, key = n.cname, n.cname
		default:
			m.Answer = append(m.Answer, d.records(owner, n, q.Qtype)...)
			return
		}
	}
	// A loop has no answer; half a chain would only mislead.
	m.Answer = nil
	m.Rcode = dns.RcodeServerFailure
}

// records are owner's answers of type qtype; n is nil for a name with only
// the defaults.
func (d *DNS) records(owner string, n *dnsName, qtype uint16) []dns.RR {
	if n == nil {
		n = &dnsName{}
	}
	var rrs []dns.RR
	switch qtype {
	case dns.TypeA, dns.TypeAAAA:
		addrs := d.def4
		if n.own4 {
			addrs = n.v4
		}
		if qtype == dns.TypeAAAA {
			addrs = d.def6
			if n.own6 {
				addrs = n.v6
			}
		}
		for _, a := range addrs {
			if qtype == dns.TypeA {
				rrs = append(rrs, &dns.A{Hdr: header(owner, qtype), A: a.AsSlice()})
			} else {
				rrs = append(rrs, &dns.AAAA{Hdr: header(owner, qtype), AAAA: a.AsSlice()})
			}
		}
	case dns.TypeTXT:
		for _, v := range n.txt {
			rrs = append(rrs, &dns.TXT{Hdr: header(owner, qtype), Txt: txtStrings(v)})
		}
	case dns.TypeCNAME:
		if n.cname != "" {
			rrs = append(rrs, &dns.CNAME{Hdr: header(owner, qtype), Target: n.cname})
		}
	}
	return rrs
}

// header has TTL 0 so that a caching resolver in front of the server never
// answers from data the test has since changed.
func header(owner string, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: owner, Rrtype: rrtype, Class: dns.ClassINET, Ttl: 0}
}

// txtStrings encodes value as one TXT record: a record holds strings of at
// most 255 bytes, and miekg/dns expects them in presentation format, where a
// backslash or quote would otherwise be taken as an escape.
func txtStrings(value string) []string {
	var out []string
	for len(value) > 0 || out == nil {
		chunk := value[:min(len(value), 255)]
		value = value[len(chunk):]
		var b []byte
		for i := range len(chunk) {
			c := chunk[i]
			switch {
			case c == '\\' || c == '"':
				b = append(b, '\\', c)
			case c < ' ' || c > '~':
				b = fmt.Appendf(b, "\\%03d", c)
			default:
				b = append(b, c)
			}
		}
		out = append(out, string(b))
	}
	return out
}
