package challengetest

import (
	"net/netip"
	"slices"
)

// SetDefault sets the addresses of every name not given its own: IPv4 ones
// answer A queries, IPv6 ones AAAA queries. With none, such names have no
// addresses.
func (d *DNS) SetDefault(addrs ...netip.Addr) {
	v4, v6 := splitFamilies(addrs)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.def4, d.def6 = v4, v6
}

// setDefaultFamily replaces the default addresses of one family only, for
// the management API, which sets IPv4 and IPv6 separately.
func (d *DNS) setDefaultFamily(v6 bool, addrs ...netip.Addr) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if v6 {
		d.def6 = slices.Clone(addrs)
	} else {
		d.def4 = slices.Clone(addrs)
	}
}

// SetA replaces the addresses of name: IPv4 ones answer A queries, IPv6
// ones AAAA queries. A family left out then has no addresses, rather than
// the default.
func (d *DNS) SetA(name string, addrs ...netip.Addr) {
	v4, v6 := splitFamilies(addrs)
	d.update(name, true, func(n *dnsName) {
		n.cname = ""
		n.own4, n.own6 = true, true
		n.v4, n.v6 = v4, v6
	})
}

// AddA adds addresses to name. Only the families given stop answering the
// default, so adding an IPv4 address leaves the default AAAA in place.
func (d *DNS) AddA(name string, addrs ...netip.Addr) {
	v4, v6 := splitFamilies(addrs)
	d.update(name, true, func(n *dnsName) {
		n.cname = ""
		if len(v4) > 0 {
			n.v4 = appendNew(n.v4, n.own4, v4)
			n.own4 = true
		}
		if len(v6) > 0 {
			n.v6 = appendNew(n.v6, n.own6, v6)
			n.own6 = true
		}
	})
}

// ClearA makes name answer the default addresses again.
func (d *DNS) ClearA(name string) {
	d.clearFamily(name, true, true)
}

func (d *DNS) clearFamily(name string, v4, v6 bool) {
	d.update(name, false, func(n *dnsName) {
		if v4 {
			n.own4, n.v4 = false, nil
		}
		if v6 {
			n.own6, n.v6 = false, nil
		}
	})
}

// SetTXT replaces the TXT records of name.
func (d *DNS) SetTXT(name string, values ...string) {
	d.update(name, true, func(n *dnsName) {
		n.cname = ""
		n.txt = appendNew(nil, false, values)
	})
}

// AddTXT adds a TXT record to name, keeping the ones it has: a wildcard and
// its base name are validated through the same name at once.
func (d *DNS) AddTXT(name, value string) {
	d.update(name, true, func(n *dnsName) {
		n.cname = ""
		n.txt = appendNew(n.txt, true, []string{value})
	})
}

// RemoveTXT removes one TXT record of name.
func (d *DNS) RemoveTXT(name, value string) {
	d.update(name, false, func(n *dnsName) {
		n.txt = slices.DeleteFunc(n.txt, func(v string) bool { return v == value })
	})
}

// ClearTXT removes every TXT record of name.
func (d *DNS) ClearTXT(name string) {
	d.update(name, false, func(n *dnsName) { n.txt = nil })
}

// SetCNAME makes name an alias of target, replacing its other records.
// Queries for name are answered with the CNAME followed by target's records.
func (d *DNS) SetCNAME(name, target string) {
	d.update(name, true, func(n *dnsName) {
		*n = dnsName{cname: canonicalName(target)}
	})
}

// ClearCNAME makes name stop being an alias.
func (d *DNS) ClearCNAME(name string) {
	d.update(name, false, func(n *dnsName) { n.cname = "" })
}

// Remove makes name answer NXDOMAIN, dropping its records, until a record
// is set for it again.
func (d *DNS) Remove(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.names[canonicalName(name)] = &dnsName{removed: true}
}

// update applies change to name and forgets names left with nothing but
// the defaults, so the map does not grow. Setting a record brings a removed
// name back (revive); clearing one leaves it removed, with nothing to clear.
func (d *DNS) update(name string, revive bool, change func(*dnsName)) {
	key := canonicalName(name)
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.names[key]
	if n == nil {
		n = &dnsName{}
		d.names[key] = n
	}
	if n.removed && !revive {
		return
	}
	n.removed = false
	change(n)
	if n.empty() {
		delete(d.names, key)
	}
}

func splitFamilies(addrs []netip.Addr) (v4, v6 []netip.Addr) {
	for _, a := range addrs {
		a = a.Unmap()
		switch {
		case a.Is4():
			v4 = append(v4, a)
		case a.Is6():
			v6 = append(v6, a.WithZone(""))
		}
	}
	return v4, v6
}

// appendNew adds the values not already in list, starting from an empty
// list when keep is false; a record set holds each value once.
func appendNew[T comparable](list []T, keep bool, values []T) []T {
	if !keep {
		list = nil
	}
	for _, v := range values {
		if !slices.Contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}
