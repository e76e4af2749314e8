package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/admin"
	"github.com/acmed/acmed/acme/policy"
)

// eabCommands are `acmed admin eab create|list|show KID|revoke KID`.
func eabCommands() []adminCommand {
	return []adminCommand{
		{name: "eab create", bind: bindEABCreate},
		{name: "eab list", bind: func(*flag.FlagSet) adminRun {
			return func(ctx context.Context, cl *adminClient, _ []string) (any, func(io.Writer), error) {
				var l admin.EABKeyList
				if err := cl.do(ctx, "GET", "/eab", nil, &l); err != nil {
					return nil, nil, err
				}
				return l, func(w io.Writer) { printEABKeys(w, l) }, nil
			}
		}},
		{name: "eab show", args: []string{"KID"}, bind: func(*flag.FlagSet) adminRun { return eabAction("GET", "") }},
		{name: "eab revoke", args: []string{"KID"}, bind: func(*flag.FlagSet) adminRun { return eabAction("POST", "/revoke") }},
	}
}

// repeated is a flag that may be given many times, each value kept whole
// (a pattern never holds a comma, but a profile name might one day).
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

func bindEABCreate(fs *flag.FlagSet) adminRun {
	name := fs.String("name", "", "name of the team or system the key is for (required)")
	var allow, preva, profiles repeated
	fs.Var(&allow, "allow", "identifier pattern the key's accounts may order (name, *.zone, **.zone, IP, CIDR); repeatable")
	fs.Var(&preva, "prevalidated", "identifier pattern the key vouches for: its authorizations are valid with no challenge; repeatable")
	fs.Var(&profiles, "profile", "certificate profile the key's accounts may use; repeatable")
	maxValidity := fs.Duration("max-validity", 0, "longest certificate validity the key's accounts may get (e.g. 72h)")
	spiffeID := fs.String("spiffe-id", "", "SPIFFE ID recorded with the key (spiffe://TRUST-DOMAIN/PATH)")
	expires := fs.Duration("expires", 0, "no new account may bind to the key after this long (e.g. 720h); bound accounts keep it")
	singleUse := fs.Bool("single-use", false, "at most one account may bind to the key")
	return func(ctx context.Context, cl *adminClient, _ []string) (any, func(io.Writer), error) {
		if *name == "" {
			return nil, nil, fmt.Errorf("admin eab create: --name is required")
		}
		for _, f := range []struct {
			flag string
			v    []string
		}{{"--allow", allow}, {"--prevalidated", preva}} {
			if _, err := policy.Parse(f.v); err != nil {
				return nil, nil, fmt.Errorf("admin eab create: %s: %v", f.flag, err)
			}
		}
		if *maxValidity < 0 || *expires < 0 {
			return nil, nil, fmt.Errorf("admin eab create: --max-validity and --expires must be positive")
		}
		// The server checks it too; checking here tells the operator which
		// flag is wrong and why, in the words of the SPIFFE grammar.
		if *spiffeID != "" {
			if _, err := acme.ParseSPIFFEID(*spiffeID); err != nil {
				return nil, nil, fmt.Errorf("admin eab create: --spiffe-id %q: %v", *spiffeID, err)
			}
		}
		q := url.Values{"name": {*name}, "allow": allow, "prevalidated": preva, "profile": profiles}
		if *maxValidity > 0 {
			q.Set("max_validity", maxValidity.String())
		}
		if *expires > 0 {
			q.Set("expires", expires.String())
		}
		if *spiffeID != "" {
			q.Set("spiffe_id", *spiffeID)
		}
		if *singleUse {
			q.Set("single_use", strconv.FormatBool(true))
		}
		var k admin.EABKey
		if err := cl.do(ctx, "POST", "/eab", q, &k); err != nil {
			return nil, nil, err
		}
		return k, func(w io.Writer) {
			printEABKey(w, k)
			fmt.Fprintf(w, "hmac: %s\n(the hmac is shown only now: hand it to the team with the kid)\n", k.HMAC)
		}, nil
	}
}

func eabAction(method, suffix string) adminRun {
	return func(ctx context.Context, cl *adminClient, args []string) (any, func(io.Writer), error) {
		var k admin.EABKey
		if err := cl.do(ctx, method, "/eab/"+url.PathEscape(args[0])+suffix, nil, &k); err != nil {
			return nil, nil, err
		}
		return k, func(w io.Writer) { printEABKey(w, k) }, nil
	}
}

func printEABKeys(w io.Writer, l admin.EABKeyList) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tNAME\tSTATE\tACCOUNTS\tALLOW\tPREVALIDATED")
	for _, k := range l.Keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", k.KID, k.Name, eabState(k), len(k.Accounts),
			strings.Join(k.Allow, ","), strings.Join(k.Prevalidated, ","))
	}
	tw.Flush()
}

func eabState(k admin.EABKey) string {
	switch {
	case k.Revoked:
		return "revoked"
	case k.Expires != nil && !time.Now().Before(*k.Expires):
		return "expired"
	}
	return "active"
}

func printEABKey(w io.Writer, k admin.EABKey) {
	fmt.Fprintf(w, "kid: %s\nname: %s\nstate: %s\nallow: %s\nprevalidated: %s\nprofiles: %s\nsingle_use: %t\ncreated_at: %s\n",
		k.KID, k.Name, eabState(k), strings.Join(k.Allow, ", "), strings.Join(k.Prevalidated, ", "),
		strings.Join(k.Profiles, ", "), k.SingleUse, k.CreatedAt.Format(time.RFC3339))
	if k.MaxValidity != "" {
		fmt.Fprintf(w, "max_validity: %s\n", k.MaxValidity)
	}
	if k.SPIFFEID != "" {
		fmt.Fprintf(w, "spiffe_id: %s\n", k.SPIFFEID)
	}
	if k.Expires != nil {
		fmt.Fprintf(w, "expires: %s\n", k.Expires.Format(time.RFC3339))
	}
	if k.RevokedAt != nil {
		fmt.Fprintf(w, "revoked_at: %s\n", k.RevokedAt.Format(time.RFC3339))
	}
	fmt.Fprintf(w, "accounts: %s\n", strings.Join(k.Accounts, ", "))
}
