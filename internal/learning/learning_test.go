package learning

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// clock is a fake clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newEstimator(t *testing.T, opts Options) *Estimator {
	t.Helper()
	e, err := New(opts)
	require.NoError(t, err)
	return e
}

var key = Key{Pattern: "rule:3/tmpl:12", Template: "7"}

func outcome(o Outcome) Observation { return Observation{Outcome: o} }

func update(t *testing.T, e *Estimator, k Key, obs ...Observation) (Estimate, []*Change) {
	t.Helper()
	var est Estimate
	var changes []*Change
	for _, o := range obs {
		var c *Change
		var err error
		est, c, err = e.Update(k, o)
		require.NoError(t, err)
		if c != nil {
			changes = append(changes, c)
		}
	}
	return est, changes
}

func TestPrior(t *testing.T) {
	e := newEstimator(t, Options{})
	est := e.Get(key)
	require.Equal(t, 1.0, est.Alpha)
	require.Equal(t, 1.0, est.Beta)
	require.Equal(t, 0.5, est.Mean)
	require.InDelta(t, 0.05, est.Lower, 1e-12)
	require.InDelta(t, 0.95, est.Upper, 1e-12)
	require.Zero(t, est.N)
	require.False(t, est.Demoted)
	require.Zero(t, e.Len(), "Get creates no pair")

	e = newEstimator(t, Options{PriorAlpha: 2, PriorBeta: 8})
	est = e.Get(key)
	require.Equal(t, 0.2, est.Mean)
	require.InDelta(t, 0.0410231675069965, est.Lower, 1e-12) // Beta(2, 8)'s 5% quantile (mpmath)
}

func TestWeights(t *testing.T) {
	fb := func(f, on Feedback, o Outcome) Observation {
		return Observation{Feedback: f, Replaces: on, FeedbackOn: o}
	}
	custom := &Weights{Partial: 0.25, Helpful: 0, NotHelpful: 1, Incorrect: 0.75}
	tests := []struct {
		name        string
		weights     *Weights
		obs         []Observation
		alpha, beta float64
		outcomes    float64
	}{
		{"successful", nil, []Observation{outcome(Successful)}, 2, 1, 1},
		{"failed", nil, []Observation{outcome(Failed)}, 1, 2, 1},
		{"partially successful", nil, []Observation{outcome(PartiallySuccessful)}, 1.5, 1.5, 1},
		{"incorrect", nil, []Observation{fb(Incorrect, "", Successful)}, 1, 2, 0},
		{"not helpful", nil, []Observation{fb(NotHelpful, "", Successful)}, 1, 1.5, 0},
		{"helpful confirms success", nil, []Observation{fb(Helpful, "", Successful)}, 1.5, 1, 0},
		{"helpful confirms failure", nil, []Observation{fb(Helpful, "", Failed)}, 1, 1.5, 0},
		{"helpful confirms partial", nil, []Observation{fb(Helpful, "", PartiallySuccessful)}, 1.25, 1.25, 0},
		{"helpful without outcome", nil, []Observation{fb(Helpful, "", "")}, 1.5, 1, 0},
		{"run, then feedback", nil, []Observation{outcome(Successful), fb(Helpful, "", Successful)}, 2.5, 1, 1},
		{"incorrect replaces helpful", nil, []Observation{
			outcome(Successful), fb(Helpful, "", Successful), fb(Incorrect, Helpful, Successful),
		}, 2, 2, 1},
		{"replacing never goes below the prior", nil, []Observation{fb(Helpful, Incorrect, Failed)}, 1, 1, 0},
		{"custom weights", custom, []Observation{
			outcome(PartiallySuccessful), fb(Helpful, "", Successful), fb(NotHelpful, "", ""), fb(Incorrect, "", ""),
		}, 1.25, 1 + 0.75 + 1 + 0.75, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEstimator(t, Options{Weights: tt.weights})
			est, _ := update(t, e, key, tt.obs...)
			require.InDelta(t, tt.alpha, est.Alpha, 1e-12, "alpha")
			require.InDelta(t, tt.beta, est.Beta, 1e-12, "beta")
			require.InDelta(t, tt.outcomes, est.Outcomes, 1e-12, "outcomes")
			require.InDelta(t, tt.alpha+tt.beta-2, est.N, 1e-12, "n")
			require.InDelta(t, tt.alpha/(tt.alpha+tt.beta), est.Mean, 1e-12, "mean")
			require.Equal(t, est, e.Get(key))
		})
	}
}

func TestReplaceClampsAtPrior(t *testing.T) {
	// helpful replacing an incorrect that was never counted: the
	// incorrect's failure weight cannot be taken from nothing.
	e := newEstimator(t, Options{})
	est, _ := update(t, e, key, Observation{Feedback: Helpful, FeedbackOn: Successful, Replaces: Incorrect})
	require.Equal(t, 1.5, est.Alpha)
	require.Equal(t, 1.0, est.Beta)
}

// A new template starts cautious and earns autonomy: after k successes in
// a row the posterior is Beta(k+1, 1), whose 5% quantile is
// 0.05^(1/(k+1)).
func TestLowerBoundEarnsAutonomy(t *testing.T) {
	e := newEstimator(t, Options{})
	var prev float64
	for k := 1; k <= 30; k++ {
		est, changes := update(t, e, key, outcome(Successful))
		require.Empty(t, changes)
		require.InDelta(t, math.Pow(0.05, 1/float64(k+1)), est.Lower, 1e-12, "after %d successes", k)
		require.Greater(t, est.Lower, prev)
		prev = est.Lower
	}
	// One failure among few runs costs more than among many.
	few := newEstimator(t, Options{})
	a, _ := update(t, few, key, outcome(Successful), outcome(Successful), outcome(Successful), outcome(Failed))
	many := newEstimator(t, Options{})
	obs := make([]Observation, 0, 31)
	for range 30 {
		obs = append(obs, outcome(Successful))
	}
	b, _ := update(t, many, key, append(obs, outcome(Failed))...)
	require.Less(t, a.Lower, 0.4)
	require.Greater(t, b.Lower, 0.85)
}

func TestDemotionAndPromotion(t *testing.T) {
	c := newClock()
	e := newEstimator(t, Options{Now: c.Now})

	// 4 failures of 4: below the floor, but not yet MinOutcomes outcomes.
	est, changes := update(t, e, key, outcome(Successful), outcome(Successful), outcome(Failed), outcome(Failed))
	require.Empty(t, changes)
	require.False(t, est.Demoted)
	// The fifth outcome: Beta(3, 4), mean 0.43 < 0.5.
	c.Advance(time.Minute)
	est, changes = update(t, e, key, outcome(Failed))
	require.Len(t, changes, 1)
	ch := changes[0]
	require.Equal(t, Demotion, ch.Kind)
	require.Equal(t, key, ch.Key)
	require.Equal(t, c.Now(), ch.At)
	require.True(t, est.Demoted)
	require.Equal(t, est, ch.Estimate)
	require.InDelta(t, 3.0/7, est.Mean, 1e-12)
	for _, want := range []string{`template "7"`, `pattern "rule:3/tmpl:12"`, "approval-required", "0.43", "5.0 outcomes", "floor 0.50"} {
		require.Contains(t, ch.Reason, want)
	}
	require.True(t, e.Get(key).Demoted)

	// More failures: still demoted, no new change.
	_, changes = update(t, e, key, outcome(Failed))
	require.Empty(t, changes)

	// Successes: above the floor is not enough (hysteresis); at 0.7 the
	// demotion is lifted. Beta(3, 5) + k successes: mean (3+k)/(8+k)
	// reaches 0.7 at k = 9 (12/17 = 0.706; 11/16 = 0.6875).
	for k := 1; k <= 8; k++ {
		est, changes = update(t, e, key, outcome(Successful))
		require.Empty(t, changes, "after %d successes, mean %.3f", k, est.Mean)
		require.True(t, est.Demoted)
	}
	require.Greater(t, est.Mean, 0.5)
	est, changes = update(t, e, key, outcome(Successful))
	require.Len(t, changes, 1)
	require.Equal(t, Promotion, changes[0].Kind)
	require.False(t, est.Demoted)
	require.Contains(t, changes[0].Reason, "demotion lifted")
	require.Contains(t, changes[0].Reason, "0.70 or above")
	require.False(t, e.Get(key).Demoted)
}

func TestNotDemotedWhenMostlySuccessful(t *testing.T) {
	// 4 successes of 5: its lower bound (0.42) is below the floor, its
	// mean (0.71) is not, and the mean decides.
	e := newEstimator(t, Options{})
	est, changes := update(t, e, key, outcome(Failed), outcome(Successful), outcome(Successful), outcome(Successful), outcome(Successful))
	require.Empty(t, changes)
	require.Less(t, est.Lower, 0.5)
	require.False(t, est.Demoted)
}

func TestFeedbackAloneDoesNotDemote(t *testing.T) {
	e := newEstimator(t, Options{})
	var obs []Observation
	for range 10 {
		obs = append(obs, Observation{Feedback: Incorrect})
	}
	est, changes := update(t, e, key, obs...)
	require.Empty(t, changes)
	require.Less(t, est.Mean, 0.1)
	// The outcomes that follow are judged with the feedback: one failure
	// of the five needed is enough now.
	est, changes = update(t, e, key, outcome(Successful), outcome(Successful), outcome(Successful), outcome(Successful), outcome(Failed))
	require.Len(t, changes, 1)
	require.True(t, est.Demoted)
}

func TestDecay(t *testing.T) {
	c := newClock()
	e := newEstimator(t, Options{Now: c.Now, HalfLife: time.Hour})
	est, _ := update(t, e, key, outcome(Successful), outcome(Successful), outcome(Successful), outcome(Successful))
	require.Equal(t, 5.0, est.Alpha)

	c.Advance(time.Hour)
	est = e.Get(key)
	require.InDelta(t, 1+2, est.Alpha, 1e-12, "the evidence halved, the prior did not")
	require.InDelta(t, 1, est.Beta, 1e-12)
	require.InDelta(t, 2, est.N, 1e-12)
	require.InDelta(t, 2, est.Outcomes, 1e-12)

	c.Advance(time.Hour)
	est, _ = update(t, e, key, outcome(Failed))
	require.InDelta(t, 1+1, est.Alpha, 1e-12)
	require.InDelta(t, 1+1, est.Beta, 1e-12)
	require.InDelta(t, 2, est.Outcomes, 1e-12)

	// A clock that goes back does not grow the evidence.
	c.Advance(-3 * time.Hour)
	require.InDelta(t, 2, e.Get(key).Alpha, 1e-12)

	// Old evidence does not count towards MinOutcomes: ten successes
	// long ago and two recent failures are two outcomes, not twelve.
	e = newEstimator(t, Options{Now: c.Now, HalfLife: time.Hour})
	var obs []Observation
	for range 10 {
		obs = append(obs, outcome(Successful))
	}
	update(t, e, key, obs...)
	c.Advance(10 * time.Hour)
	est, changes := update(t, e, key, outcome(Failed), outcome(Failed))
	require.Empty(t, changes)
	require.Less(t, est.Mean, 0.5)
	require.InDelta(t, 2+10.0/1024, est.Outcomes, 1e-9)

	// Without a half-life nothing decays.
	e = newEstimator(t, Options{Now: c.Now})
	update(t, e, key, outcome(Successful))
	c.Advance(1000 * time.Hour)
	require.Equal(t, 2.0, e.Get(key).Alpha)
}

func TestReset(t *testing.T) {
	e := newEstimator(t, Options{MinOutcomes: 1})
	require.Nil(t, e.Reset(key), "nothing to reset")
	_, changes := update(t, e, key, outcome(Failed))
	require.Len(t, changes, 1)
	ch := e.Reset(key)
	require.NotNil(t, ch)
	require.Equal(t, Promotion, ch.Kind)
	require.Contains(t, ch.Reason, "reset by an operator")
	require.Equal(t, e.Get(Key{Pattern: "other", Template: "x"}), e.Get(key), "back to the prior")
	require.Zero(t, e.Len())

	update(t, e, key, outcome(Successful))
	require.Nil(t, e.Reset(key), "not demoted: no change")
	require.Equal(t, 1.0, e.Get(key).Alpha)
}

func TestInvalid(t *testing.T) {
	e := newEstimator(t, Options{})
	long := strings.Repeat("x", MaxKeyLen+1)
	tests := []struct {
		name string
		key  Key
		obs  Observation
	}{
		{"no pattern", Key{Template: "1"}, outcome(Successful)},
		{"no template", Key{Pattern: "p"}, outcome(Successful)},
		{"long pattern", Key{Pattern: long, Template: "1"}, outcome(Successful)},
		{"nothing observed", key, Observation{}},
		{"both", key, Observation{Outcome: Successful, Feedback: Helpful}},
		{"unknown outcome", key, outcome("great")},
		{"unknown feedback", key, Observation{Feedback: "meh"}},
		{"unknown replaced feedback", key, Observation{Feedback: Helpful, Replaces: "meh"}},
		{"unknown outcome of feedback", key, Observation{Feedback: Helpful, FeedbackOn: "great"}},
		{"outcome with feedback_on", key, Observation{Outcome: Failed, FeedbackOn: Failed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := e.Update(tt.key, tt.obs)
			require.ErrorIs(t, err, ErrInvalid)
			require.True(t, strings.HasPrefix(err.Error(), "learning: "), err.Error())
		})
	}
	require.Zero(t, e.Len(), "an invalid update keeps nothing")

	for _, o := range []Options{
		{PriorAlpha: 0.05}, {PriorBeta: -1}, {PriorAlpha: 5000},
		{Weights: &Weights{Partial: 1.5}}, {Weights: &Weights{Incorrect: -0.1}},
		{Floor: 1.2}, {Floor: 0.8, RecoverAt: 0.6}, {RecoverAt: 1}, {MinOutcomes: -1},
		{HalfLife: -time.Hour}, {MaxPairs: -1},
	} {
		_, err := New(o)
		require.ErrorIs(t, err, ErrInvalid, "%+v", o)
	}
	e = newEstimator(t, Options{Floor: 0.8})
	require.Equal(t, 0.8, e.opts.RecoverAt, "the recovery bar is never below the floor")
}

func TestBound(t *testing.T) {
	c := newClock()
	e := newEstimator(t, Options{MaxPairs: 3, MinOutcomes: 1, Now: c.Now})
	k := func(i int) Key { return Key{Pattern: fmt.Sprint("p", i), Template: "t"} }
	for i := range 3 {
		c.Advance(time.Second)
		update(t, e, k(i), outcome(Successful))
	}
	// Reading does not keep a pair: k(0) is still the least recently
	// updated.
	e.Get(k(0))
	c.Advance(time.Second)
	update(t, e, k(3), outcome(Successful))
	require.Equal(t, 3, e.Len())
	_, ok := e.State(k(0))
	require.False(t, ok, "the least recently updated pair is forgotten")

	// A demoted pair is forgotten after all the others.
	c.Advance(time.Second)
	_, changes := update(t, e, k(1), outcome(Failed), outcome(Failed))
	require.Len(t, changes, 1)
	for i := 4; i < 8; i++ {
		c.Advance(time.Second)
		update(t, e, k(i), outcome(Successful))
	}
	require.Equal(t, 3, e.Len())
	require.True(t, e.Get(k(1)).Demoted, "the demoted pair is kept")
	_, ok = e.State(k(7))
	require.True(t, ok)
	_, ok = e.State(k(6))
	require.True(t, ok)

	// Only demoted pairs: the oldest of them goes.
	e = newEstimator(t, Options{MaxPairs: 2, MinOutcomes: 1, Now: c.Now})
	for i := range 3 {
		c.Advance(time.Second)
		update(t, e, k(i), outcome(Failed))
	}
	require.Equal(t, 2, e.Len())
	_, ok = e.State(k(0))
	require.False(t, ok)
}

func TestSnapshotRoundTrip(t *testing.T) {
	c := newClock()
	opts := Options{Now: c.Now, HalfLife: 24 * time.Hour, MaxPairs: 10, MinOutcomes: 2}
	e := newEstimator(t, opts)
	keys := []Key{
		{Pattern: "rule:1/tmpl:4", Template: "2"},
		{Pattern: "rule:1/tmpl:4", Template: "3"},
		{Pattern: "cpu_high/nginx", Template: "2"},
	}
	update(t, e, keys[0], outcome(Successful), outcome(PartiallySuccessful))
	c.Advance(time.Hour)
	update(t, e, keys[1], outcome(Failed), outcome(Failed), Observation{Feedback: Incorrect, FeedbackOn: Failed})
	c.Advance(time.Hour)
	update(t, e, keys[2], outcome(Successful), Observation{Feedback: Helpful})
	c.Advance(3 * time.Hour)
	require.True(t, e.Get(keys[1]).Demoted)

	snap := e.Snapshot()
	require.Equal(t, SnapshotVersion, snap.V)
	require.Len(t, snap.Pairs, 3)
	require.Equal(t, keys[0], snap.Pairs[0].Key, "least recently updated first")
	data, err := json.Marshal(snap)
	require.NoError(t, err)
	require.Contains(t, string(data), `"pattern":"rule:1/tmpl:4"`)

	var back Snapshot
	require.NoError(t, json.Unmarshal(data, &back))
	r := newEstimator(t, opts)
	require.NoError(t, r.Restore(back))
	for _, k := range keys {
		require.Equal(t, e.Get(k), r.Get(k), "%v", k)
	}
	require.Equal(t, snap, r.Snapshot())

	// The restored one goes on as the original would.
	var promotedAfter []int
	for _, x := range []*Estimator{e, r} {
		for i := 1; i <= 20; i++ {
			_, changes := update(t, x, keys[1], outcome(Successful))
			if len(changes) > 0 {
				require.Equal(t, Promotion, changes[0].Kind)
				promotedAfter = append(promotedAfter, i)
				break
			}
		}
	}
	require.Len(t, promotedAfter, 2)
	require.Equal(t, promotedAfter[0], promotedAfter[1])
	require.Equal(t, e.Snapshot(), r.Snapshot())

	// Restoring into a smaller estimator keeps the most recent pairs,
	// the demoted last forgotten.
	small := newEstimator(t, Options{Now: c.Now, MaxPairs: 1})
	require.NoError(t, small.Restore(snap))
	require.Equal(t, 1, small.Len())
	require.True(t, small.Get(keys[1]).Demoted)
}

func TestRestoreInvalid(t *testing.T) {
	e := newEstimator(t, Options{})
	update(t, e, key, outcome(Successful))
	before := e.Snapshot()
	good := PairState{Key: Key{Pattern: "p", Template: "t"}, Successes: 1}
	tests := []struct {
		name string
		snap Snapshot
	}{
		{"version", Snapshot{V: 2}},
		{"no version", Snapshot{Pairs: []PairState{good}}},
		{"empty key", Snapshot{V: 1, Pairs: []PairState{{Successes: 1}}}},
		{"twice", Snapshot{V: 1, Pairs: []PairState{good, good}}},
		{"negative", Snapshot{V: 1, Pairs: []PairState{{Key: good.Key, Failures: -1}}}},
		{"NaN", Snapshot{V: 1, Pairs: []PairState{{Key: good.Key, Outcomes: math.NaN()}}}},
		{"infinite", Snapshot{V: 1, Pairs: []PairState{{Key: good.Key, Successes: math.Inf(1)}}}},
		{"too much", Snapshot{V: 1, Pairs: []PairState{{Key: good.Key, Successes: 2 * MaxEvidence}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.Restore(tt.snap)
			require.ErrorIs(t, err, ErrInvalid)
			require.Equal(t, before, e.Snapshot(), "a failed restore changes nothing")
		})
	}
}

func TestConcurrentUpdates(t *testing.T) {
	e := newEstimator(t, Options{MaxPairs: 50})
	var wg sync.WaitGroup
	const workers, each = 8, 200
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				k := key
				if i%2 == 1 {
					k = Key{Pattern: fmt.Sprint("p", w, i), Template: "t"}
				}
				if _, _, err := e.Update(k, outcome(Successful)); err != nil {
					t.Error(err)
				}
				e.Get(key)
			}
		})
	}
	wg.Wait()
	require.InDelta(t, workers*each/2, e.Get(key).N, 1e-9, "no update lost")
	require.LessOrEqual(t, e.Len(), 50)
}

func FuzzRestore(f *testing.F) {
	f.Add([]byte(`{"v":1,"pairs":[{"pattern":"p","template":"t","successes":3,"failures":1.5,"outcomes":4,"updated":"2025-03-01T10:00:00Z","demoted":true}]}`))
	f.Add([]byte(`{"v":1,"pairs":[]}`))
	f.Add([]byte(`{"v":1,"pairs":[{"pattern":"p","template":"t","successes":1e9,"failures":1e-300}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s Snapshot
		if json.Unmarshal(data, &s) != nil {
			return
		}
		e, err := New(Options{MaxPairs: 5})
		require.NoError(t, err)
		if err := e.Restore(s); err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("restore: %v is not ErrInvalid", err)
			}
			return
		}
		for _, p := range e.Snapshot().Pairs {
			est := e.Get(p.Key)
			for _, v := range []float64{est.Mean, est.Lower, est.Upper} {
				if !(v >= 0 && v <= 1) {
					t.Fatalf("estimate %+v of restored %+v out of [0, 1]", est, p)
				}
			}
			if est.Lower > est.Upper {
				t.Fatalf("lower above upper: %+v", est)
			}
		}
	})
}

// Pairs updated at the same instant keep their order through a snapshot:
// the one updated first is forgotten first.
func TestSnapshotKeepsRecencyOrder(t *testing.T) {
	c := newClock()
	e := newEstimator(t, Options{Now: c.Now, MaxPairs: 20})
	var keys []Key
	for i := range 20 {
		k := Key{Pattern: fmt.Sprint("p", i), Template: "t"}
		keys = append(keys, k)
		update(t, e, k, outcome(Successful))
	}
	snap := e.Snapshot()
	for i, p := range snap.Pairs {
		require.Equal(t, keys[i], p.Key)
	}
	r := newEstimator(t, Options{Now: c.Now, MaxPairs: 20})
	require.NoError(t, r.Restore(snap))
	require.Equal(t, snap, r.Snapshot())
	update(t, r, Key{Pattern: "new", Template: "t"}, outcome(Successful))
	_, ok := r.State(keys[0])
	require.False(t, ok, "the first updated is forgotten first")
	_, ok = r.State(keys[1])
	require.True(t, ok)
}
