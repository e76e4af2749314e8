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

	"github.com/acmed/acmed/acme/admin"
	"github.com/acmed/acmed/acme/authority"
)

// certCommands are `acmed admin certs list|show SERIAL|renew-early` and
// `acmed admin campaigns list|show ID`: the certificate estate.
func certCommands() []adminCommand {
	return []adminCommand{
		{name: "certs list", bind: bindCertsList},
		{name: "certs show", args: []string{"SERIAL"}, bind: func(*flag.FlagSet) adminRun { return certsShow }},
		{name: "certs renew-early", bind: bindRenewEarly},
		{name: "campaigns list", bind: func(*flag.FlagSet) adminRun { return campaignsList }},
		{name: "campaigns show", args: []string{"ID"}, bind: bindCampaignShow},
	}
}

// parseSpan reads a duration as Go writes it (36h, 90m) or in days (7d),
// the unit certificate lifetimes are thought in.
func parseSpan(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseFloat(n, 64)
		if err != nil || days <= 0 {
			return 0, fmt.Errorf("%q: want a positive duration such as 7d or 36h", s)
		}
		return time.Duration(days * float64(24*time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q: want a positive duration such as 7d or 36h", s)
	}
	return d, nil
}

// parseTime reads an RFC 3339 time, or a date (midnight UTC).
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time (2025-06-01T12:00:00Z) or a date (2025-06-01)", s)
}

// bindCertsList: every page by default; with --limit or --cursor one
// page, whose "next" names the cursor of the following one.
func bindCertsList(fs *flag.FlagSet) adminRun {
	within := fs.String("expiring-within", "", "only unexpired certificates whose notAfter is within this long (e.g. 7d, 36h)")
	notRenewed := fs.Bool("not-renewed", false, "only unexpired certificates past the start of their renewal window and not replaced")
	suffix := fs.String("san-suffix", "", "only certificates with an identifier equal to SUFFIX or under it")
	account := fs.String("account", "", "only this account's certificates")
	profile := fs.String("profile", "", "only certificates of this profile")
	status := fs.String("status", "", "only certificates in this status: valid, revoked or expired")
	limit := fs.Int("limit", 0, "certificates per page; with it (or --cursor) only one page is printed")
	cursor := fs.String("cursor", "", "start after this cursor (the \"next\" of the previous page)")
	return func(ctx context.Context, cl *adminClient, _ []string) (any, func(io.Writer), error) {
		q := url.Values{}
		if *within != "" {
			d, err := parseSpan(*within)
			if err != nil {
				return nil, nil, fmt.Errorf("admin certs list: --expiring-within %v", err)
			}
			q.Set("expiring_within", d.String())
		}
		switch *status {
		case "", "valid", "revoked", "expired":
		default:
			return nil, nil, fmt.Errorf("admin certs list: --status %q: want valid, revoked or expired", *status)
		}
		if *limit < 0 || *limit > authority.MaxCertsPage {
			return nil, nil, fmt.Errorf("admin certs list: --limit %d: want 1 to %d", *limit, authority.MaxCertsPage)
		}
		if *notRenewed {
			q.Set("not_renewed", "true")
		}
		for k, v := range map[string]string{"san_suffix": *suffix, "account": *account, "profile": *profile, "status": *status} {
			if v != "" {
				q.Set(k, v)
			}
		}
		if *limit > 0 {
			q.Set("limit", strconv.Itoa(*limit))
		}
		onePage := *limit > 0 || *cursor != ""
		all := admin.CertificateList{Certificates: []admin.Certificate{}}
		next := *cursor
		for {
			if next != "" {
				q.Set("cursor", next)
			}
			var page admin.CertificateList
			if err := cl.do(ctx, "GET", "/certs", q, &page); err != nil {
				return nil, nil, err
			}
			all.Certificates = append(all.Certificates, page.Certificates...)
			next = page.Next
			if onePage || next == "" {
				all.Next = page.Next
				break
			}
		}
		return all, func(w io.Writer) { printCerts(w, all) }, nil
	}
}

func certsShow(ctx context.Context, cl *adminClient, args []string) (any, func(io.Writer), error) {
	serial, err := authority.ParseSerial(args[0])
	if err != nil {
		return nil, nil, fmt.Errorf("admin certs show: %s", strings.TrimPrefix(err.Error(), authority.ErrBadRequest.Error()+": "))
	}
	var c admin.Certificate
	if err := cl.do(ctx, "GET", "/certs/"+url.PathEscape(serial), nil, &c); err != nil {
		return nil, nil, err
	}
	return c, func(w io.Writer) { printCert(w, c) }, nil
}

// renewEarlyResult is what renew-early prints with --json.
type renewEarlyResult struct {
	ID      string `json:"id"`
	Matched int    `json:"matched"`
}

func bindRenewEarly(fs *flag.FlagSet) adminRun {
	var serials repeated
	fs.Var(&serials, "serial", "a certificate's serial, as openssl prints it; repeatable")
	issuedBefore := fs.String("issued-before", "", "certificates issued (notBefore) before this time (RFC 3339, or a date)")
	suffix := fs.String("san-suffix", "", "certificates with an identifier equal to SUFFIX or under it")
	profile := fs.String("profile", "", "certificates of this profile")
	account := fs.String("account", "", "this account's certificates")
	explanation := fs.String("explanation-url", "", "a page telling the certificates' owners why (sent to ARI clients)")
	return func(ctx context.Context, cl *adminClient, _ []string) (any, func(io.Writer), error) {
		q := url.Values{}
		for _, s := range serials {
			c, err := authority.ParseSerial(s)
			if err != nil {
				return nil, nil, fmt.Errorf("admin certs renew-early: --%s", strings.TrimPrefix(err.Error(), authority.ErrBadRequest.Error()+": "))
			}
			q.Add("serial", c)
		}
		if *issuedBefore != "" {
			t, err := parseTime(*issuedBefore)
			if err != nil {
				return nil, nil, fmt.Errorf("admin certs renew-early: --issued-before %v", err)
			}
			q.Set("issued_before", t.UTC().Format(time.RFC3339))
		}
		for k, v := range map[string]string{"san_suffix": *suffix, "profile": *profile, "account": *account} {
			if v != "" {
				q.Set(k, v)
			}
		}
		if len(q) == 0 {
			return nil, nil, fmt.Errorf("admin certs renew-early: no filter: give --serial, --issued-before, --san-suffix, --profile or --account (the whole estate is never renewed by accident)")
		}
		if *explanation != "" {
			if u, err := url.Parse(*explanation); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return nil, nil, fmt.Errorf("admin certs renew-early: --explanation-url %q: want an absolute http(s) URL", *explanation)
			}
			q.Set("explanation_url", *explanation)
		}
		var c admin.Campaign
		if err := cl.do(ctx, "POST", "/campaigns", q, &c); err != nil {
			return nil, nil, err
		}
		return renewEarlyResult{ID: c.ID, Matched: c.Matched}, func(w io.Writer) {
			fmt.Fprintf(w, "campaign %s: %d certificate(s) to renew now (renewal window %s to %s)\n",
				c.ID, c.Matched, c.Window.Start.Format(time.RFC3339), c.Window.End.Format(time.RFC3339))
			fmt.Fprintf(w, "follow it with: acmed admin campaigns show %s\n", c.ID)
		}, nil
	}
}

func campaignsList(ctx context.Context, cl *adminClient, _ []string) (any, func(io.Writer), error) {
	var l admin.CampaignList
	if err := cl.do(ctx, "GET", "/campaigns", nil, &l); err != nil {
		return nil, nil, err
	}
	return l, func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tCREATED\tMATCHED\tREPLACED\tPENDING\tFILTER")
		for _, c := range l.Campaigns {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\n", c.ID, c.CreatedAt.Format(time.RFC3339), c.Matched, c.Replaced, c.Pending, c.Filter)
		}
		tw.Flush()
	}, nil
}

// bindCampaignShow: every pending serial by default; with --limit or
// --cursor one page of them.
func bindCampaignShow(fs *flag.FlagSet) adminRun {
	limit := fs.Int("limit", 0, "pending serials per page; with it (or --cursor) only one page is printed")
	cursor := fs.String("cursor", "", "start after this cursor (the \"next\" of the previous page)")
	return func(ctx context.Context, cl *adminClient, args []string) (any, func(io.Writer), error) {
		if *limit < 0 || *limit > authority.MaxCertsPage {
			return nil, nil, fmt.Errorf("admin campaigns show: --limit %d: want 1 to %d", *limit, authority.MaxCertsPage)
		}
		onePage := *limit > 0 || *cursor != ""
		q := url.Values{}
		if *limit > 0 {
			q.Set("limit", strconv.Itoa(*limit))
		}
		var all admin.CampaignDetail
		next := *cursor
		for first := true; ; first = false {
			if next != "" {
				q.Set("cursor", next)
			}
			var page admin.CampaignDetail
			if err := cl.do(ctx, "GET", "/campaigns/"+url.PathEscape(args[0]), q, &page); err != nil {
				return nil, nil, err
			}
			if first {
				all = page
				all.PendingSerials = []string{}
			}
			all.PendingSerials = append(all.PendingSerials, page.PendingSerials...)
			next = page.Next
			if onePage || next == "" {
				all.Next = page.Next
				break
			}
		}
		return all, func(w io.Writer) { printCampaign(w, all) }, nil
	}
}

func idValues(c admin.Certificate) string {
	vs := make([]string, len(c.Identifiers))
	for i, id := range c.Identifiers {
		vs[i] = id.Value
	}
	return strings.Join(vs, ",")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printCerts(w io.Writer, l admin.CertificateList) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERIAL\tSTATUS\tNOT AFTER\tPROFILE\tACCOUNT\tREPLACED BY\tIDENTIFIERS")
	for _, c := range l.Certificates {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Serial, c.Status, c.NotAfter.Format(time.RFC3339),
			orDash(c.Profile), c.Account, orDash(c.ReplacedBy), idValues(c))
	}
	tw.Flush()
	if l.Next != "" {
		fmt.Fprintf(w, "more: --cursor %s\n", l.Next)
	}
}

func printCert(w io.Writer, c admin.Certificate) {
	fmt.Fprintf(w, "serial: %s\nstatus: %s\nidentifiers: %s\naccount: %s\neab_key: %s\nprofile: %s\nnot_before: %s\nnot_after: %s\nrenewal_window: %s to %s\nreplaced_by: %s\n",
		c.Serial, c.Status, idValues(c), c.Account, orDash(c.EABKey), orDash(c.Profile), c.NotBefore.Format(time.RFC3339),
		c.NotAfter.Format(time.RFC3339), c.RenewalWindow.Start.Format(time.RFC3339), c.RenewalWindow.End.Format(time.RFC3339), orDash(c.ReplacedBy))
	if c.Replaces != "" {
		fmt.Fprintf(w, "replaces: %s\n", c.Replaces)
	}
	if c.Campaign != "" {
		fmt.Fprintf(w, "campaign: %s\n", c.Campaign)
	}
	if c.RevokedAt != nil {
		fmt.Fprintf(w, "revoked_at: %s\n", c.RevokedAt.Format(time.RFC3339))
	}
}

func printCampaign(w io.Writer, c admin.CampaignDetail) {
	fmt.Fprintf(w, "id: %s\ncreated_at: %s\ncreated_by: %s\nfilter: %s\nwindow: %s to %s\nmatched: %d\nreplaced: %d\npending: %d\n",
		c.ID, c.CreatedAt.Format(time.RFC3339), c.CreatedBy, c.Filter, c.Window.Start.Format(time.RFC3339),
		c.Window.End.Format(time.RFC3339), c.Matched, c.Replaced, c.Pending)
	if c.ExplanationURL != "" {
		fmt.Fprintf(w, "explanation_url: %s\n", c.ExplanationURL)
	}
	for _, s := range c.PendingSerials {
		fmt.Fprintf(w, "pending_serial: %s\n", s)
	}
	if c.Next != "" {
		fmt.Fprintf(w, "more: --cursor %s\n", c.Next)
	}
}
