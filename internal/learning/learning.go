// Package learning is the Autonomous Response Service's outcome analyzer
// and knowledge updater: it estimates how likely each response template
// is to succeed on each event pattern, from the outcomes of its
// executions and the feedback of the humans who saw its decisions, and
// demotes a template to approval-required on a pattern where it keeps
// failing.
//
// The estimate of a (pattern, template) pair is a Beta posterior over its
// probability of success: it starts at the prior (Beta(1, 1) by default:
// nothing known, every rate equally likely), and each observation adds
// its weight of success to Alpha and of failure to Beta. Outcomes weigh
// 1 (successful: a success, failed: a failure, partially_successful:
// half of each by default); feedback weighs less (see Weights). An
// Estimate reports the posterior's mean and its 5% and 95% quantiles.
// The decision engine uses Lower, the 5% quantile: the success rate the
// evidence supports with 95% credibility. A new template, with no
// evidence, has a Lower of 0.05 and earns autonomy as it succeeds
// (Beta(16, 1), after 15 successes in a row, has a Lower of 0.83), and
// one failure among few runs costs more than among many.
//
// Demotion uses the mean, not the lower bound: demoting is a penalty for
// evidence that the template fails, not for a lack of evidence that it
// succeeds (by its lower bound, a template with 4 successes of 5 would be
// demoted). When, after at least MinOutcomes outcomes, the mean falls
// below Floor (0.5), the pair is demoted and Update returns a Change
// saying so, with a reason for the audit log and the notification; the
// pair is promoted again once its mean is back at or above RecoverAt
// (0.7): the gap between the two bars keeps a template near the floor
// from flapping. A demoted pair is the caller's to enforce: it runs only
// with an approval, whatever its template's own approval_required says.
//
// Evidence can decay: with a HalfLife, the weight of each observation
// halves every HalfLife, so that a template fixed (or broken) a year ago
// is judged on what it did lately. The prior does not decay.
//
// An Estimator is in memory and bounded (MaxPairs, the least recently
// updated pairs forgotten first, demoted pairs last); Snapshot and
// Restore save and reload its state. It is safe for concurrent use.
// Update is not idempotent: the caller applies each outcome and each
// feedback once (for example when the decision's outcome or feedback
// column is first set).
package learning

import (
	"container/list"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"
)

// Outcome is what became of an execution, as decision_log.decision_outcome
// records it.
type Outcome string

// The outcomes of an execution.
const (
	Successful          Outcome = "successful"
	Failed              Outcome = "failed"
	PartiallySuccessful Outcome = "partially_successful"
)

// Feedback is a human's judgment of a decision, as the feedback API and
// rules.rule_executions.human_feedback take it.
type Feedback string

// The kinds of feedback.
const (
	Helpful    Feedback = "helpful"
	NotHelpful Feedback = "not_helpful"
	Incorrect  Feedback = "incorrect"
)

// Key names a (pattern, template) pair. Both are strings the caller
// chooses and keeps stable: the pattern for example "rule:3/tmpl:12"
// (the trigger rule and the log template of the event) or
// "cpu_high/nginx" (event type and service); the template the response
// template's id.
type Key struct {
	Pattern  string `json:"pattern"`
	Template string `json:"template"`
}

// MaxKeyLen bounds each string of a Key, in bytes.
const MaxKeyLen = 512

func (k Key) validate() error {
	switch {
	case k.Pattern == "" || k.Template == "":
		return fmt.Errorf("%w key: it needs a pattern and a template", ErrInvalid)
	case len(k.Pattern) > MaxKeyLen || len(k.Template) > MaxKeyLen:
		return fmt.Errorf("%w key: its pattern and template are at most %d bytes", ErrInvalid, MaxKeyLen)
	}
	return nil
}

// ErrInvalid is the error of an invalid key, observation, option or
// snapshot.
var ErrInvalid = errors.New("learning: invalid")

// Observation is one piece of evidence about a pair: the outcome of an
// execution of the template on the pattern (Outcome), or a human's
// feedback on a decision that chose it (Feedback). Exactly one of the
// two is set.
type Observation struct {
	// Outcome is an execution's outcome.
	Outcome Outcome `json:"outcome,omitempty"`
	// Feedback is a human's feedback on a decision.
	Feedback Feedback `json:"feedback,omitempty"`
	// FeedbackOn is, with Feedback, the outcome already recorded for the
	// decision ("" when nothing ran): helpful feedback confirms it (see
	// Weights). It is context: the outcome itself is not counted again.
	FeedbackOn Outcome `json:"feedback_on,omitempty"`
	// Replaces is, with Feedback, the feedback given earlier on the same
	// decision that this one replaces: its weight is taken back first
	// (never below the prior; under decay, the weight taken back is the
	// undecayed one, so a late change takes back at most what remains).
	Replaces Feedback `json:"replaces,omitempty"`
}

// Weights say how much evidence each observation is. Every weight is in
// [0, 1]; an outcome weighs 1 in all.
type Weights struct {
	// Partial is the share of a partially_successful outcome counted as
	// a success; 1-Partial is counted as a failure. Default 0.5.
	Partial float64 `json:"partial"`
	// Helpful is the weight of helpful feedback: it confirms the
	// decision's outcome, adding Helpful to the same side (a successful
	// outcome: Helpful as a success; failed: as a failure; partial:
	// split as the outcome was), or, when nothing ran, Helpful as a
	// success of the recommended template. Default 0.5.
	Helpful float64 `json:"helpful"`
	// NotHelpful is the failure weight of not_helpful feedback. Default
	// 0.5.
	NotHelpful float64 `json:"not_helpful"`
	// Incorrect is the failure weight of incorrect feedback: the decision
	// was wrong, whatever its outcome said. Default 1.
	Incorrect float64 `json:"incorrect"`
}

// DefaultWeights are the weights of an Estimator built without its own.
var DefaultWeights = Weights{Partial: 0.5, Helpful: 0.5, NotHelpful: 0.5, Incorrect: 1}

// Options configure an Estimator. The zero value is the defaults.
type Options struct {
	// PriorAlpha and PriorBeta are the prior Beta(PriorAlpha, PriorBeta)
	// of every pair, each in [0.1, 1000] (default 1 and 1: uniform).
	PriorAlpha, PriorBeta float64
	// Weights of outcomes and feedback (nil: DefaultWeights).
	Weights *Weights
	// Floor is the mean success below which a pair with at least
	// MinOutcomes outcomes is demoted (default 0.5).
	Floor float64
	// RecoverAt is the mean success at or above which a demoted pair is
	// promoted again; at least Floor (default max(0.7, Floor)).
	RecoverAt float64
	// MinOutcomes is the number of outcomes (decayed, with HalfLife) a
	// pair needs before it can be demoted or promoted (default 5).
	MinOutcomes float64
	// HalfLife is the time in which the weight of an observation halves
	// (0: evidence never decays).
	HalfLife time.Duration
	// MaxPairs bounds the pairs kept (default 100,000).
	MaxPairs int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger logs demotions, promotions and the forgetting of demoted
	// pairs (default: discard).
	Logger *slog.Logger
}

// DefaultMaxPairs is the default bound of an Estimator's pairs.
const DefaultMaxPairs = 100_000

// MaxEvidence bounds the weight of successes, of failures and the
// outcomes of a pair: far more than any template runs, and where the
// Beta's quantiles are still computed in microseconds.
const MaxEvidence = 1e9

// The quantiles an Estimate's Lower and Upper are.
const (
	LowerQuantile = 0.05
	UpperQuantile = 0.95
)

// Estimate is what is known of a pair's probability of success.
type Estimate struct {
	// Alpha and Beta are the posterior Beta(Alpha, Beta): the prior plus
	// the weights of successes and of failures.
	Alpha float64 `json:"alpha"`
	Beta  float64 `json:"beta"`
	// Mean is the posterior mean, Alpha / (Alpha + Beta).
	Mean float64 `json:"mean"`
	// Lower and Upper are the posterior's 5% and 95% quantiles: a 90%
	// credible interval of the success rate.
	Lower float64 `json:"lower"`
	Upper float64 `json:"upper"`
	// N is the weight of the evidence, outcomes and feedback (Alpha +
	// Beta less the prior's).
	N float64 `json:"n"`
	// Outcomes is the number of outcomes counted (decayed with the
	// evidence).
	Outcomes float64 `json:"outcomes"`
	// Demoted says the pair runs only with an approval.
	Demoted bool `json:"demoted"`
}

// ChangeKind says what a Change did.
type ChangeKind string

// The changes of a pair's standing.
const (
	Demotion  ChangeKind = "demoted"
	Promotion ChangeKind = "promoted"
)

// Change is a pair's demotion to approval-required, or its promotion
// back, for the audit log and a notification.
type Change struct {
	Key      Key        `json:"key"`
	Kind     ChangeKind `json:"kind"`
	Estimate Estimate   `json:"estimate"`
	// Reason says why, in a sentence for a human.
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// Estimator estimates the success of (pattern, template) pairs. Build it
// with New; it is safe for concurrent use.
type Estimator struct {
	opts Options
	w    Weights
	log  *slog.Logger

	mu    sync.Mutex
	pairs map[Key]*pair
	// Pairs by recency of update, most recent first: those not demoted,
	// forgotten first when the bound is reached, and those demoted.
	fresh, demoted list.List
}

// pair is what an Estimator keeps of a pair: the evidence, decayed as of
// updated.
type pair struct {
	key                  Key
	succ, fail, outcomes float64
	updated              time.Time
	isDemoted            bool
	demotedAt            time.Time
	// elem is p's element in the list of demoted pairs (inDemoted) or in
	// the other.
	elem      *list.Element
	inDemoted bool
}

// New returns an Estimator with opts.
func New(opts Options) (*Estimator, error) {
	if opts.PriorAlpha == 0 {
		opts.PriorAlpha = 1
	}
	if opts.PriorBeta == 0 {
		opts.PriorBeta = 1
	}
	w := DefaultWeights
	if opts.Weights != nil {
		w = *opts.Weights
	}
	if opts.Floor == 0 {
		opts.Floor = 0.5
	}
	if opts.RecoverAt == 0 {
		opts.RecoverAt = max(0.7, opts.Floor)
	}
	if opts.MinOutcomes == 0 {
		opts.MinOutcomes = 5
	}
	if opts.MaxPairs == 0 {
		opts.MaxPairs = DefaultMaxPairs
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	inUnit := func(v float64) bool { return v >= 0 && v <= 1 }
	switch {
	case !(opts.PriorAlpha >= 0.1 && opts.PriorAlpha <= 1000 && opts.PriorBeta >= 0.1 && opts.PriorBeta <= 1000):
		return nil, fmt.Errorf("%w option: the prior's parameters are in [0.1, 1000]", ErrInvalid)
	case !inUnit(w.Partial) || !inUnit(w.Helpful) || !inUnit(w.NotHelpful) || !inUnit(w.Incorrect):
		return nil, fmt.Errorf("%w option: weights are in [0, 1]", ErrInvalid)
	case !(opts.Floor > 0 && opts.Floor < 1):
		return nil, fmt.Errorf("%w option: floor %v is not in (0, 1)", ErrInvalid, opts.Floor)
	case !(opts.RecoverAt >= opts.Floor && opts.RecoverAt < 1):
		return nil, fmt.Errorf("%w option: recover_at %v is not in [floor, 1)", ErrInvalid, opts.RecoverAt)
	case !(opts.MinOutcomes >= 0) || math.IsInf(opts.MinOutcomes, 0):
		return nil, fmt.Errorf("%w option: min_outcomes %v is negative", ErrInvalid, opts.MinOutcomes)
	case opts.HalfLife < 0:
		return nil, fmt.Errorf("%w option: half-life %v is negative", ErrInvalid, opts.HalfLife)
	case opts.MaxPairs < 0:
		return nil, fmt.Errorf("%w option: max pairs %d is negative", ErrInvalid, opts.MaxPairs)
	}
	return &Estimator{
		opts:  opts,
		w:     w,
		log:   opts.Logger.With("component", "learning"),
		pairs: make(map[Key]*pair),
	}, nil
}

// Get returns the estimate of k now: the prior's when nothing is known
// of k.
func (e *Estimator) Get(k Key) Estimate {
	now := e.opts.Now()
	e.mu.Lock()
	var succ, fail, outcomes float64
	var demoted bool
	if p := e.pairs[k]; p != nil {
		f := e.decay(p.updated, now)
		succ, fail, outcomes, demoted = p.succ*f, p.fail*f, p.outcomes*f, p.isDemoted
	}
	e.mu.Unlock()
	return e.estimate(succ, fail, outcomes, demoted)
}

// Len is the number of pairs kept.
func (e *Estimator) Len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.pairs)
}

// Update adds o to what is known of k, and returns the new estimate and,
// when the pair was demoted or promoted by it, the Change (nil
// otherwise).
func (e *Estimator) Update(k Key, o Observation) (Estimate, *Change, error) {
	if err := k.validate(); err != nil {
		return Estimate{}, nil, err
	}
	ds, df, dn, err := e.weigh(o)
	if err != nil {
		return Estimate{}, nil, err
	}
	now := e.opts.Now()

	e.mu.Lock()
	p := e.pairs[k]
	if p == nil {
		p = &pair{key: k, updated: now}
		e.pairs[k] = p
	}
	f := e.decay(p.updated, now)
	p.succ = min(MaxEvidence, max(0, p.succ*f+ds))
	p.fail = min(MaxEvidence, max(0, p.fail*f+df))
	p.outcomes = min(MaxEvidence, max(0, p.outcomes*f+dn))
	if now.After(p.updated) {
		p.updated = now
	}
	est := e.estimate(p.succ, p.fail, p.outcomes, p.isDemoted)
	var change *Change
	switch {
	case !p.isDemoted && p.outcomes >= e.opts.MinOutcomes && est.Mean < e.opts.Floor:
		p.isDemoted, p.demotedAt = true, now
		est.Demoted = true
		change = &Change{Key: k, Kind: Demotion, Estimate: est, At: now, Reason: fmt.Sprintf(
			"template %q demoted to approval-required on pattern %q: its estimated success %.2f (90%% credible %.2f to %.2f, from %.1f outcomes) fell below the floor %.2f",
			k.Template, k.Pattern, est.Mean, est.Lower, est.Upper, est.Outcomes, e.opts.Floor)}
	case p.isDemoted && p.outcomes >= e.opts.MinOutcomes && est.Mean >= e.opts.RecoverAt:
		p.isDemoted, p.demotedAt = false, time.Time{}
		est.Demoted = false
		change = &Change{Key: k, Kind: Promotion, Estimate: est, At: now, Reason: fmt.Sprintf(
			"template %q promoted on pattern %q, its demotion lifted: its estimated success %.2f (90%% credible %.2f to %.2f, from %.1f outcomes) recovered to %.2f or above",
			k.Template, k.Pattern, est.Mean, est.Lower, est.Upper, est.Outcomes, e.opts.RecoverAt)}
	}
	e.touch(p)
	e.evict()
	e.mu.Unlock()

	if change != nil {
		e.log.Info("template standing changed", "pattern", k.Pattern, "template", k.Template,
			"change", string(change.Kind), "mean", est.Mean, "lower", est.Lower, "outcomes", est.Outcomes)
	}
	return est, change, nil
}

// Reset forgets what is known of k, for an operator who fixed the
// template: the pair starts again from the prior, cautious, and earns its
// autonomy again. When k was demoted, the returned Change is its
// promotion (nil otherwise).
func (e *Estimator) Reset(k Key) *Change {
	now := e.opts.Now()
	e.mu.Lock()
	p := e.pairs[k]
	if p == nil {
		e.mu.Unlock()
		return nil
	}
	e.remove(p)
	e.mu.Unlock()
	if !p.isDemoted {
		return nil
	}
	est := e.estimate(0, 0, 0, false)
	return &Change{Key: k, Kind: Promotion, Estimate: est, At: now, Reason: fmt.Sprintf(
		"template %q promoted on pattern %q, its demotion lifted: its evidence was reset by an operator and it starts again from the prior",
		k.Template, k.Pattern)}
}

// weigh is the evidence of o: the weights of success and failure, and
// the outcomes it counts.
func (e *Estimator) weigh(o Observation) (succ, fail, outcomes float64, err error) {
	switch {
	case o.Outcome != "" && o.Feedback == "":
		if o.FeedbackOn != "" || o.Replaces != "" {
			return 0, 0, 0, fmt.Errorf("%w observation: feedback_on and replaces go with feedback", ErrInvalid)
		}
		s, f, err := e.outcomeWeights(o.Outcome)
		return s, f, 1, err
	case o.Feedback != "" && o.Outcome == "":
		s, f, err := e.feedbackWeights(o.Feedback, o.FeedbackOn)
		if err != nil || o.Replaces == "" {
			return s, f, 0, err
		}
		rs, rf, err := e.feedbackWeights(o.Replaces, o.FeedbackOn)
		return s - rs, f - rf, 0, err
	default:
		return 0, 0, 0, fmt.Errorf("%w observation: exactly one of an outcome and a feedback", ErrInvalid)
	}
}

func (e *Estimator) outcomeWeights(o Outcome) (succ, fail float64, err error) {
	switch o {
	case Successful:
		return 1, 0, nil
	case Failed:
		return 0, 1, nil
	case PartiallySuccessful:
		return e.w.Partial, 1 - e.w.Partial, nil
	}
	return 0, 0, fmt.Errorf("%w outcome %q: successful, failed or partially_successful", ErrInvalid, o)
}

func (e *Estimator) feedbackWeights(f Feedback, on Outcome) (succ, fail float64, err error) {
	switch f {
	case Helpful:
		if on == "" {
			return e.w.Helpful, 0, nil
		}
		s, fl, err := e.outcomeWeights(on)
		return s * e.w.Helpful, fl * e.w.Helpful, err
	case NotHelpful:
		return 0, e.w.NotHelpful, nil
	case Incorrect:
		return 0, e.w.Incorrect, nil
	}
	return 0, 0, fmt.Errorf("%w feedback %q: helpful, not_helpful or incorrect", ErrInvalid, f)
}

// decay is the factor by which evidence last updated at then has faded by
// now.
func (e *Estimator) decay(then, now time.Time) float64 {
	if e.opts.HalfLife <= 0 || !now.After(then) {
		return 1
	}
	return math.Exp2(-float64(now.Sub(then)) / float64(e.opts.HalfLife))
}

func (e *Estimator) estimate(succ, fail, outcomes float64, demoted bool) Estimate {
	a, b := e.opts.PriorAlpha+succ, e.opts.PriorBeta+fail
	return Estimate{
		Alpha:    a,
		Beta:     b,
		Mean:     a / (a + b),
		Lower:    betaQuantile(LowerQuantile, a, b),
		Upper:    betaQuantile(UpperQuantile, a, b),
		N:        succ + fail,
		Outcomes: outcomes,
		Demoted:  demoted,
	}
}

// touch puts p first in the recency list of its standing.
func (e *Estimator) touch(p *pair) {
	if p.elem != nil {
		e.list(p.inDemoted).Remove(p.elem)
	}
	p.inDemoted = p.isDemoted
	p.elem = e.list(p.inDemoted).PushFront(p)
}

func (e *Estimator) list(demoted bool) *list.List {
	if demoted {
		return &e.demoted
	}
	return &e.fresh
}

func (e *Estimator) remove(p *pair) {
	e.list(p.inDemoted).Remove(p.elem)
	p.elem = nil
	delete(e.pairs, p.key)
}

// evict forgets the least recently updated pairs above the bound, those
// not demoted first: forgetting a demoted pair would lift its demotion.
func (e *Estimator) evict() {
	for len(e.pairs) > e.opts.MaxPairs {
		el := e.fresh.Back()
		if el == nil {
			el = e.demoted.Back()
		}
		p := el.Value.(*pair)
		if p.isDemoted {
			e.log.Warn("forgetting a demoted pair: the bound of pairs is reached", "pattern", p.key.Pattern,
				"template", p.key.Template, "max_pairs", e.opts.MaxPairs)
		}
		e.remove(p)
	}
}
