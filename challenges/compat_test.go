package challenges

import (
	"context"

	"github.com/acmed/acmed/acme"
)

// validateErr folds Validate's outcome back into one error: nil when
// valid, the *acme.Problem when failed, else the "not performed" error.
func validateErr(v *Validator, ctx context.Context, typ acme.ChallengeType, id acme.Identifier, token, keyAuth string) error {
	out, err := v.Validate(ctx, "test-account", typ, id, token, keyAuth)
	if err != nil {
		return err
	}
	if out.Problem != nil {
		return out.Problem
	}
	return nil
}
