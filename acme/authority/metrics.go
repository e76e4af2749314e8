package authority

import "github.com/acmed/acmed/acme"

// Metrics is what the authority reports for monitoring, beyond what the
// store and the HTTP edge see: the outcomes only it knows. Implementations
// must be cheap and safe for concurrent use: they are called on the hot
// path (package metrics counts them; nil Config.Metrics reports nothing).
type Metrics interface {
	// Issued is one certificate recorded, of the named profile.
	Issued(profile string)
	// Validated is one validation's outcome recorded (valid or invalid),
	// or "not_performed" when the validator could not perform it before
	// the job's deadline and the job goes back to the store.
	Validated(typ acme.ChallengeType, outcome string)
	// JobsRunning moves the count of jobs this replica runs by delta.
	JobsRunning(delta int)
}

// OutcomeNotPerformed is Validated's outcome for a validation the
// validator did not perform.
const OutcomeNotPerformed = "not_performed"

// noMetrics reports nothing.
type noMetrics struct{}

func (noMetrics) Issued(string)                        {}
func (noMetrics) Validated(acme.ChallengeType, string) {}
func (noMetrics) JobsRunning(int)                      {}
