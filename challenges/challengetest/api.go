package challengetest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// maxAPIBody bounds a management request; real ones are a few hundred bytes.
const maxAPIBody = 64 << 10

// NewAPI returns the management API that lets ACME clients' hooks and
// scripts drive the responders. Every endpoint takes a POST with a JSON
// body and answers 200, or 400 with a one-line reason. The endpoints of a
// nil responder answer 404.
//
// DNS (pebble-challtestsrv compatible, plus lego's httpreq provider):
//
//	/set-txt       {"host","value"}        add a TXT value (a wildcard and its base name share one name)
//	/clear-txt     {"host"}                remove all TXT values
//	/add-a         {"host","addresses"}    add IPv4 addresses, replacing the default A
//	/add-aaaa      {"host","addresses"}    add IPv6 addresses, replacing the default AAAA
//	/clear-a       {"host"}                back to the default A
//	/clear-aaaa    {"host"}                back to the default AAAA
//	/set-cname     {"host","target"}       make host an alias
//	/clear-cname   {"host"}
//	/set-default-ipv4 {"ip"}               "" for none
//	/set-default-ipv6 {"ip"}               "" for none
//	/present       {"fqdn","value"}        lego httpreq: add a TXT value
//	/cleanup       {"fqdn","value"}        lego httpreq: remove that TXT value
//
// lego's httpreq RAW mode, {"domain","token","keyAuth"}, is accepted by
// /present and /cleanup too.
//
// HTTP01: /add-http01 {"token","content"}, /del-http01 {"token"}.
//
// TLSALPN01: /add-tlsalpn01 {"host","content"} (content is the key
// authorization; host a DNS name or IP address), /del-tlsalpn01 {"host"}.
func NewAPI(d *DNS, h *HTTP01, a *TLSALPN01) http.Handler {
	mux := http.NewServeMux()
	if d != nil {
		addDNSAPI(mux, d)
	}
	if h != nil {
		handle(mux, "/add-http01", func(r struct{ Token, Content string }) error {
			if err := checkToken(r.Token); err != nil {
				return err
			}
			if r.Content == "" {
				return errors.New("content is missing")
			}
			h.Set(r.Token, r.Content)
			return nil
		})
		handle(mux, "/del-http01", func(r struct{ Token string }) error {
			if err := checkToken(r.Token); err != nil {
				return err
			}
			h.Delete(r.Token)
			return nil
		})
	}
	if a != nil {
		handle(mux, "/add-tlsalpn01", func(r struct{ Host, Content string }) error {
			if r.Host == "" {
				return errors.New("host is missing")
			}
			if r.Content == "" {
				return errors.New("content is missing")
			}
			return a.Set(r.Host, r.Content)
		})
		handle(mux, "/del-tlsalpn01", func(r struct{ Host string }) error {
			if r.Host == "" {
				return errors.New("host is missing")
			}
			a.Delete(r.Host)
			return nil
		})
	}
	return mux
}

type hostValue struct{ Host, Value string }

type hostAddresses struct {
	Host      string
	Addresses []string
}

// httpreqMessage is either of lego's httpreq bodies: fqdn and value by
// default, the raw key authorization with HTTPREQ_MODE=RAW.
type httpreqMessage struct {
	FQDN, Value            string
	Domain, Token, KeyAuth string
}

func addDNSAPI(mux *http.ServeMux, d *DNS) {
	handle(mux, "/set-txt", func(r hostValue) error {
		if err := checkHost(r.Host); err != nil {
			return err
		}
		if r.Value == "" {
			return errors.New("value is missing")
		}
		d.AddTXT(r.Host, r.Value)
		return nil
	})
	handle(mux, "/clear-txt", func(r hostValue) error {
		if err := checkHost(r.Host); err != nil {
			return err
		}
		d.ClearTXT(r.Host)
		return nil
	})
	for _, f := range []struct {
		rrtype string
		v6     bool
	}{{"a", false}, {"aaaa", true}} {
		v6 := f.v6
		handle(mux, "/add-"+f.rrtype, func(r hostAddresses) error {
			if err := checkHost(r.Host); err != nil {
				return err
			}
			addrs, err := parseAddresses(r.Addresses, v6)
			if err != nil {
				return err
			}
			d.AddA(r.Host, addrs...)
			return nil
		})
		handle(mux, "/clear-"+f.rrtype, func(r hostValue) error {
			if err := checkHost(r.Host); err != nil {
				return err
			}
			d.clearFamily(r.Host, !v6, v6)
			return nil
		})
		handle(mux, "/set-default-"+familyName(v6), func(r struct{ IP string }) error {
			if r.IP == "" {
				d.setDefaultFamily(v6)
				return nil
			}
			addrs, err := parseAddresses([]string{r.IP}, v6)
			if err != nil {
				return err
			}
			d.setDefaultFamily(v6, addrs...)
			return nil
		})
	}
	handle(mux, "/set-cname", func(r struct{ Host, Target string }) error {
		if err := checkHost(r.Host); err != nil {
			return err
		}
		if err := checkHost(r.Target); err != nil {
			return fmt.Errorf("target: %w", err)
		}
		d.SetCNAME(r.Host, r.Target)
		return nil
	})
	handle(mux, "/clear-cname", func(r hostValue) error {
		if err := checkHost(r.Host); err != nil {
			return err
		}
		d.ClearCNAME(r.Host)
		return nil
	})
	handle(mux, "/present", func(r httpreqMessage) error {
		name, value, err := r.record()
		if err != nil {
			return err
		}
		d.AddTXT(name, value)
		return nil
	})
	handle(mux, "/cleanup", func(r httpreqMessage) error {
		name, value, err := r.record()
		if err != nil {
			return err
		}
		d.RemoveTXT(name, value)
		return nil
	})
}

// record is the TXT record the message asks for. In RAW mode it is derived
// as in RFC 8555 section 8.4.
func (m httpreqMessage) record() (name, value string, err error) {
	if m.FQDN == "" && m.Domain != "" {
		if m.KeyAuth == "" {
			return "", "", errors.New("keyAuth is missing")
		}
		digest := sha256.Sum256([]byte(m.KeyAuth))
		m.FQDN = "_acme-challenge." + strings.TrimPrefix(m.Domain, "*.")
		m.Value = base64.RawURLEncoding.EncodeToString(digest[:])
	}
	if m.FQDN == "" {
		return "", "", errors.New("fqdn is missing")
	}
	if err := checkHost(m.FQDN); err != nil {
		return "", "", err
	}
	if m.Value == "" {
		return "", "", errors.New("value is missing")
	}
	return m.FQDN, m.Value, nil
}

// handle registers fn for POSTs to path, decoding the body into T.
func handle[T any](mux *http.ServeMux, path string, fn func(T) error) {
	mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
		var req T
		err := decodeJSON(w, r, &req)
		if err == nil {
			err = fn(req)
		}
		if err != nil {
			// One line, so that a hook script can print it as it is.
			msg := strings.Join(strings.Fields(err.Error()), " ")
			http.Error(w, path+": "+msg, http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}

// decodeJSON reads exactly one JSON value. Unknown fields are ignored, as
// clients written for pebble-challtestsrv may send more than is used here.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAPIBody))
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("empty body, want a JSON object")
		}
		return fmt.Errorf("bad JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("bad JSON: data after the object")
	}
	return nil
}

func checkHost(host string) error {
	if host == "" {
		return errors.New("host is missing")
	}
	if _, ok := dns.IsDomainName(host); !ok {
		return fmt.Errorf("%q is not a DNS name", host)
	}
	return nil
}

func checkToken(token string) error {
	if token == "" {
		return errors.New("token is missing")
	}
	if strings.Contains(token, "/") {
		return fmt.Errorf("token %q contains a slash", token)
	}
	return nil
}

func parseAddresses(list []string, v6 bool) ([]netip.Addr, error) {
	if len(list) == 0 {
		return nil, errors.New("addresses is missing")
	}
	addrs := make([]netip.Addr, 0, len(list))
	for _, s := range list {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("address %q: %w", s, err)
		}
		if a.Unmap().Is4() == v6 || a.Zone() != "" {
			return nil, fmt.Errorf("address %q is not %s", s, familyName(v6))
		}
		addrs = append(addrs, a)
	}
	return addrs, nil
}

func familyName(v6 bool) string {
	if v6 {
		return "ipv6"
	}
	return "ipv4"
}
