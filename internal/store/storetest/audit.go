package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/audit"
	"github.com/reflex-ops/reflex/internal/store"
)

// Audit is the part of a store that RunAudit checks.
type Audit interface {
	store.Lifecycle
	store.AuditStore
}

// RunAudit runs the conformance suite of store.AuditStore, as RunAssets.
func RunAudit(t *testing.T, open func(t *testing.T) Audit) {
	for _, tt := range []struct {
		name string
		fn   func(t *testing.T, e *auditEnv)
	}{
		{"Append/round trip", testAuditRoundTrip},
		{"Append/refused", testAuditAppendRefused},
		{"Records/pages", testAuditPages},
		{"List/filters", testAuditList},
		{"Log/concurrent appends", testAuditConcurrent},
	} {
		t.Run("Audit/"+tt.name, func(t *testing.T) {
			s := open(t)
			ctx, base := setUp(t, s)
			tt.fn(t, &auditEnv{s: s, ctx: ctx, base: base.Truncate(time.Microsecond)})
		})
	}
}

type auditEnv struct {
	s    Audit
	ctx  context.Context
	base time.Time
}

// record is a record that follows last, with made-up hashes: the store
// neither checks nor computes them.
func auditRecord(last *audit.Record, at time.Time, actor string, action audit.Action, subject, params string) audit.Record {
	r := audit.Record{Seq: 1, Time: at, Actor: actor, Action: action, Subject: subject,
		Parameters: json.RawMessage(params), KeyID: "0123456789abcdef", PrevHash: audit.Genesis}
	if last != nil {
		r.Seq, r.PrevHash = last.Seq+1, last.Hash
	}
	r.Hash = fmt.Sprintf("%064x", r.Seq*7919)
	return r
}

// appendRecord appends auditRecord(...) and returns it as stored.
func (e *auditEnv) appendRecord(t *testing.T, at time.Time, actor string, action audit.Action, subject, params string) audit.Record {
	t.Helper()
	r, err := e.s.AppendAudit(e.ctx, func(last *audit.Record) (audit.Record, error) {
		return auditRecord(last, at, actor, action, subject, params), nil
	})
	require.NoError(t, err)
	return r
}

func testAuditRoundTrip(t *testing.T, e *auditEnv) {
	s, ctx := e.s, e.ctx
	rs, err := s.AuditRecords(ctx, 0, 10)
	require.NoError(t, err)
	require.Empty(t, rs)
	list, err := s.ListAudit(ctx, audit.Query{})
	require.NoError(t, err)
	require.Empty(t, list)

	var seen []*audit.Record
	build := func(at time.Time, actor, subject, params string) func(last *audit.Record) (audit.Record, error) {
		return func(last *audit.Record) (audit.Record, error) {
			seen = append(seen, last)
			return auditRecord(last, at, actor, audit.ActionDecision, subject, params), nil
		}
	}
	// Every field is kept exactly: parameters as written (not reformatted
	// as JSONB would), unicode, times to the microsecond.
	first, err := s.AppendAudit(ctx, build(e.base.Add(123*time.Microsecond), "system", "decision:1", `{"b": 1,  "a":[1.50, "x"]}`))
	require.NoError(t, err)
	require.Equal(t, int64(1), first.Seq)
	second, err := s.AppendAudit(ctx, build(e.base.Add(time.Second), "ops \u00e9\u4e16", "execution:7/step:restart", `{"note":"caf\u00e9 \\u0000 <b>"}`))
	require.NoError(t, err)
	require.Equal(t, int64(2), second.Seq)
	require.Equal(t, first.Hash, second.PrevHash)
	require.Len(t, seen, 2)
	require.Nil(t, seen[0], "the first build sees an empty log")
	require.Equal(t, first, *seen[1], "the second build sees the first record as stored")

	rs, err = s.AuditRecords(ctx, 0, 10)
	require.NoError(t, err)
	require.Equal(t, []audit.Record{first, second}, rs)
	require.Equal(t, `{"b": 1,  "a":[1.50, "x"]}`, string(rs[0].Parameters))
	require.Equal(t, e.base.Add(123*time.Microsecond), rs[0].Time)
	require.Equal(t, time.UTC, rs[0].Time.Location())
}

func testAuditAppendRefused(t *testing.T, e *auditEnv) {
	s, ctx := e.s, e.ctx
	first := e.appendRecord(t, e.base, "system", audit.ActionPause, "automation", `{}`)

	boom := errors.New("boom")
	_, err := s.AppendAudit(ctx, func(*audit.Record) (audit.Record, error) { return audit.Record{}, boom })
	require.ErrorIs(t, err, boom, "an error of build is returned")

	for name, seq := range map[string]int64{"a number taken": 1, "a gap": 3, "no number": 0} {
		_, err := s.AppendAudit(ctx, func(last *audit.Record) (audit.Record, error) {
			r := auditRecord(last, e.base, "system", audit.ActionResume, "automation", `{}`)
			r.Seq = seq
			return r, nil
		})
		require.Error(t, err, name)
	}
	rs, err := s.AuditRecords(ctx, 0, 10)
	require.NoError(t, err)
	require.Equal(t, []audit.Record{first}, rs, "nothing else was appended")

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = s.AppendAudit(cancelled, func(last *audit.Record) (audit.Record, error) {
		return auditRecord(last, e.base, "system", audit.ActionResume, "automation", `{}`), nil
	})
	require.Error(t, err)
}

func testAuditPages(t *testing.T, e *auditEnv) {
	s, ctx := e.s, e.ctx
	var all []audit.Record
	for i := range 25 {
		all = append(all, e.appendRecord(t, e.base.Add(time.Duration(i)*time.Second), "system", audit.ActionExecutionStep,
			fmt.Sprintf("execution:%d", i), `{}`))
	}
	var got []audit.Record
	var after int64
	for {
		page, err := s.AuditRecords(ctx, after, 10)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), 10)
		got = append(got, page...)
		if len(page) < 10 {
			break
		}
		after = page[len(page)-1].Seq
	}
	require.Equal(t, all, got)
	page, err := s.AuditRecords(ctx, 25, 10)
	require.NoError(t, err)
	require.Empty(t, page)
}

func testAuditList(t *testing.T, e *auditEnv) {
	s, ctx, base := e.s, e.ctx, e.base
	add := func(minute int, actor string, action audit.Action, subject string) audit.Record {
		return e.appendRecord(t, base.Add(time.Duration(minute)*time.Minute), actor, action, subject, `{}`)
	}
	r1 := add(0, "system", audit.ActionDecision, "decision:1")
	r2 := add(1, "system", audit.ActionExecution, "execution:7")
	r3 := add(2, "system", audit.ActionExecutionStep, "execution:7/step:restart")
	r4 := add(3, "key-ops", audit.ActionApproval, "approval:3")
	r5 := add(4, "system", audit.ActionExecutionStep, "execution:70/step:check")
	r6 := add(5, "key-ops", audit.ActionPause, "automation")

	seqs := func(rs []audit.Record) []int64 {
		out := make([]int64, len(rs))
		for i, r := range rs {
			out[i] = r.Seq
		}
		return out
	}
	for name, tc := range map[string]struct {
		q    audit.Query
		want []audit.Record
	}{
		"all, newest first": {audit.Query{}, []audit.Record{r6, r5, r4, r3, r2, r1}},
		"since":             {audit.Query{Since: base.Add(4 * time.Minute)}, []audit.Record{r6, r5}},
		"until":             {audit.Query{Until: base.Add(time.Minute)}, []audit.Record{r1}},
		"since and until":   {audit.Query{Since: base.Add(time.Minute), Until: base.Add(3 * time.Minute)}, []audit.Record{r3, r2}},
		"action":            {audit.Query{Action: audit.ActionExecutionStep}, []audit.Record{r5, r3}},
		"actor":             {audit.Query{Actor: "key-ops"}, []audit.Record{r6, r4}},
		"subject and below": {audit.Query{Subject: "execution:7"}, []audit.Record{r3, r2}},
		"subject exactly":   {audit.Query{Subject: "execution:7/step:restart"}, []audit.Record{r3}},
		"subject no match":  {audit.Query{Subject: "execution:"}, nil},
		"before":            {audit.Query{Before: r4.Seq}, []audit.Record{r3, r2, r1}},
		"limit":             {audit.Query{Limit: 2}, []audit.Record{r6, r5}},
		"before and limit":  {audit.Query{Before: r5.Seq, Limit: 2}, []audit.Record{r4, r3}},
		"combined":          {audit.Query{Actor: "system", Action: audit.ActionExecutionStep, Since: base.Add(3 * time.Minute)}, []audit.Record{r5}},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := s.ListAudit(ctx, tc.q)
			require.NoError(t, err)
			require.Equal(t, seqs(tc.want), seqs(got))
			for i := range tc.want {
				require.Equal(t, tc.want[i], got[i])
			}
		})
	}
}

// testAuditConcurrent appends through audit.Log from several goroutines,
// and through a second Log on the same store (as a second process would
// have, with its own lock): the numbers have no gaps and the log
// verifies.
func testAuditConcurrent(t *testing.T, e *auditEnv) {
	key, err := audit.NewKey([]byte("0123456789abcdef0123456789abcdef"))
	require.NoError(t, err)
	var logs []*audit.Log
	for range 2 {
		l, err := audit.New(audit.Options{Store: e.s, Key: key})
		require.NoError(t, err)
		logs = append(logs, l)
	}
	const workers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				_, err := logs[w%2].Append(e.ctx, audit.Entry{Actor: "system", Action: audit.ActionExecutionStep,
					Subject: fmt.Sprintf("execution:%d/step:%d", w, i), Parameters: map[string]any{"i": i}})
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	rs, err := e.s.AuditRecords(e.ctx, 0, 1000)
	require.NoError(t, err)
	require.Len(t, rs, workers*each)
	for i, r := range rs {
		require.Equal(t, int64(i+1), r.Seq)
	}
	rep, err := audit.Verify(e.ctx, e.s, key)
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())
	require.Equal(t, workers*each, rep.Records)
}
