// Command acmed is an RFC 8555 ACME server for an organisation's own CA.
//
//	acmed [serve] [flags]   serve ACME over HTTPS (creates the CA on first run, embedded store only)
//	acmed init --data DIR   create the CA and exit
//	acmed admin …           the admin API's client (admin_client.go)
//	acmed restore BACKUP    put a backup in place of the embedded store (acmed stopped)
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	var usage errUsage
	switch {
	case errors.As(err, &usage):
		usage.print(os.Stdout)
	case err != nil:
		fmt.Fprintf(os.Stderr, "acmed: %v\n", err)
		os.Exit(1)
	}
}

// run is acmed without the process: arguments, output and environment are
// passed in so that tests can drive it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) > 0 && args[0] == "admin" {
		return runAdmin(ctx, args[1:], stdout, getenv)
	}
	if len(args) > 0 && args[0] == "restore" {
		return runRestore(args[1:], stdout, getenv)
	}
	cmd := "serve"
	if len(args) > 0 && (args[0] == "serve" || args[0] == "init") {
		cmd, args = args[0], args[1:]
	} else if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		return fmt.Errorf("unknown command %q (want serve, init, admin or restore)", args[0])
	}
	c, err := loadConfig(cmd, args, getenv)
	if err != nil {
		return err
	}
	if cmd == "init" {
		return initCA(c, stdout)
	}
	return serve(ctx, c, stdout, stderr)
}
