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
)

// accountCommands are `acmed admin accounts list|show ID|deactivate ID`.
func accountCommands() []adminCommand {
	return []adminCommand{
		{name: "accounts list", bind: bindAccountsList},
		{name: "accounts show", args: []string{"ID"}, bind: func(*flag.FlagSet) adminRun {
			return accountAction("GET", "")
		}},
		{name: "accounts deactivate", args: []string{"ID"}, bind: func(*flag.FlagSet) adminRun {
			return accountAction("POST", "/deactivate")
		}},
	}
}

// bindAccountsList: every page by default; with --limit or --cursor one
// page, whose "next" names the cursor of the following one.
func bindAccountsList(fs *flag.FlagSet) adminRun {
	limit := fs.Int("limit", 0, "accounts per page; with it (or --cursor) only one page is printed")
	cursor := fs.String("cursor", "", "start after this cursor (the \"next\" of the previous page)")
	return func(ctx context.Context, cl *adminClient, _ []string) (any, func(io.Writer), error) {
		if *limit < 0 {
			return nil, nil, fmt.Errorf("--limit %d: must be positive", *limit)
		}
		onePage := *limit > 0 || *cursor != ""
		all := admin.AccountList{Accounts: []admin.Account{}}
		next := *cursor
		for {
			q := url.Values{}
			if next != "" {
				q.Set("cursor", next)
			}
			if *limit > 0 {
				q.Set("limit", strconv.Itoa(*limit))
			}
			var page admin.AccountList
			if err := cl.do(ctx, "GET", "/accounts", q, &page); err != nil {
				return nil, nil, err
			}
			all.Accounts = append(all.Accounts, page.Accounts...)
			next = page.Next
			if onePage || next == "" {
				all.Next = page.Next
				break
			}
		}
		return all, func(w io.Writer) { printAccounts(w, all) }, nil
	}
}

func accountAction(method, suffix string) adminRun {
	return func(ctx context.Context, cl *adminClient, args []string) (any, func(io.Writer), error) {
		var a admin.Account
		if err := cl.do(ctx, method, "/accounts/"+url.PathEscape(args[0])+suffix, nil, &a); err != nil {
			return nil, nil, err
		}
		return a, func(w io.Writer) { printAccount(w, a) }, nil
	}
}

func printAccounts(w io.Writer, l admin.AccountList) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tCREATED\tCONTACT")
	for _, a := range l.Accounts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.ID, a.Status, a.CreatedAt.Format(time.RFC3339), strings.Join(a.Contact, ","))
	}
	tw.Flush()
	if l.Next != "" {
		fmt.Fprintf(w, "more: --cursor %s\n", l.Next)
	}
}

func printAccount(w io.Writer, a admin.Account) {
	fmt.Fprintf(w, "id: %s\nstatus: %s\ncontact: %s\nkey_thumbprint: %s\nterms_agreed: %t\ncreated_at: %s\n",
		a.ID, a.Status, strings.Join(a.Contact, ", "), a.KeyThumbprint, a.TermsAgreed, a.CreatedAt.Format(time.RFC3339))
	if a.EABKID != "" {
		fmt.Fprintf(w, "eab_kid: %s\n", a.EABKID)
	}
}
