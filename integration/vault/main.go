// Command vault is HashiCorp Vault's own CLI and server, built from the Go
// module proxy so the tests can start a real Vault dev server (the Vault CA
// backend is tested against it, never a fake). It lives in a module of its
// own: Vault's ~640 MB of dependencies stay out of acmed's go.mod.
package main

import (
	"os"

	"github.com/hashicorp/vault/command"
)

func main() { os.Exit(command.Run(os.Args[1:])) }
