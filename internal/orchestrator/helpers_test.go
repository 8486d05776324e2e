package orchestrator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/actions"
	"github.com/reflex-ops/reflex/internal/audit"
	"github.com/reflex-ops/reflex/internal/executor"
	"github.com/reflex-ops/reflex/internal/executor/command"
	"github.com/reflex-ops/reflex/internal/store"
	"github.com/reflex-ops/reflex/internal/store/sqlite"
)

// memStore is an in-memory Store, safe for concurrent use; it keeps
// every version of every execution as it was written.
type memStore struct {
	mu      sync.Mutex
	next    int64
	xs      map[int64]store.Execution
	history map[int64][]store.Execution
	failing atomic.Bool
}

func newMemStore() *memStore {
	return &memStore{xs: map[int64]store.Execution{}, history: map[int64][]store.Execution{}}
}

// deep copies through JSON, as a database would.
func deep(x store.Execution) store.Execution {
	b, err := json.Marshal(x)
	if err != nil {
		panic(err)
	}
	var y store.Execution
	if err := json.Unmarshal(b, &y); err != nil {
		panic(err)
	}
	return y
}

func (m *memStore) InsertExecution(_ context.Context, x store.Execution) (store.Execution, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.next++
	x.ID = m.next
	x.CreatedAt, x.UpdatedAt = time.Now(), time.Now()
	m.xs[x.ID] = deep(x)
	m.history[x.ID] = append(m.history[x.ID], deep(x))
	return deep(x), nil
}

func (m *memStore) Execution(_ context.Context, id int64) (store.Execution, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	x, ok := m.xs[id]
	if !ok {
		return store.Execution{}, store.ErrNotFound
	}
	return deep(x), nil
}

func (m *memStore) Executions(_ context.Context, q store.ExecutionQuery) ([]store.Execution, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Execution
	for id := m.next; id > 0; id-- {
		x, ok := m.xs[id]
		if !ok || (q.Statuses != nil && !slices.Contains(q.Statuses, x.Status)) {
			continue
		}
		out = append(out, deep(x))
	}
	return out, nil
}

func (m *memStore) UpdateExecution(_ context.Context, x store.Execution) (store.Execution, error) {
	if m.failing.Load() {
		return store.Execution{}, errors.New("memstore: disk full")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.xs[x.ID]
	if !ok {
		return store.Execution{}, store.ErrNotFound
	}
	x.CreatedAt, x.DecisionID = old.CreatedAt, old.DecisionID
	x.UpdatedAt = time.Now()
	m.xs[x.ID] = deep(x)
	m.history[x.ID] = append(m.history[x.ID], deep(x))
	return deep(x), nil
}

func (m *memStore) get(t *testing.T, id int64) store.Execution {
	t.Helper()
	x, err := m.Execution(t.Context(), id)
	require.NoError(t, err)
	return x
}

// memActions are action definitions by name and id.
type memActions struct {
	mu   sync.Mutex
	defs []actions.Definition
}

func (a *memActions) add(d actions.Definition) actions.Definition {
	a.mu.Lock()
	defer a.mu.Unlock()
	d.ID = int64(len(a.defs) + 1)
	a.defs = append(a.defs, d)
	return d
}

func (a *memActions) Action(_ context.Context, id int64) (actions.Definition, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, d := range a.defs {
		if d.ID == id {
			return d, nil
		}
	}
	return actions.Definition{}, fmt.Errorf("action %d: %w", id, store.ErrNotFound)
}

func (a *memActions) ActionByName(_ context.Context, name string) (actions.Definition, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, d := range a.defs {
		if d.Name == name {
			return d, nil
		}
	}
	return actions.Definition{}, fmt.Errorf("action %q: %w", name, store.ErrNotFound)
}

// fakeGuard answers with admit (default: run), counting its calls and
// releases.
type fakeGuard struct {
	mu       sync.Mutex
	admit    func(x store.Execution, s store.StepState) Admission
	asked    []store.StepState
	released []string
}

func (g *fakeGuard) Admit(_ context.Context, x store.Execution, s store.StepState) (Admission, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.asked = append(g.asked, s)
	a := Admission{Run: true}
	if g.admit != nil {
		a = g.admit(x, s)
	}
	a.Release = func(outcome string) {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.released = append(g.released, s.Name+":"+outcome)
	}
	return a, nil
}

func (g *fakeGuard) releases() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.released)
}

// fakeApprovals records approval requests.
type fakeApprovals struct {
	mu       sync.Mutex
	next     int64
	requests []store.StepState
}

func (a *fakeApprovals) Request(_ context.Context, x store.Execution, s store.StepState) (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s.Status != store.StepWaitingApproval || x.Status != store.ExecPending {
		return 0, fmt.Errorf("asked for approval of step %s (%s) of an execution %s", s.Name, s.Status, x.Status)
	}
	a.next++
	a.requests = append(a.requests, s)
	return 100 + a.next, nil
}

// fakeEscalator records escalations.
type fakeEscalator struct {
	mu      sync.Mutex
	reasons []string
}

func (e *fakeEscalator) Escalate(_ context.Context, x store.Execution, reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reasons = append(e.reasons, fmt.Sprintf("%d: %s", x.ID, reason))
}

func (e *fakeEscalator) all() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.reasons)
}

// switchAudit is the real audit log on a real SQLite store, which the
// test can make fail.
type switchAudit struct {
	log     *audit.Log
	failing atomic.Bool
}

func (a *switchAudit) Append(ctx context.Context, e audit.Entry) (audit.Record, error) {
	if a.failing.Load() {
		return audit.Record{}, errors.New("audit store: database is locked")
	}
	return a.log.Append(ctx, e)
}

// records lists the audit records, oldest first.
func (a *switchAudit) records(t *testing.T) []audit.Record {
	t.Helper()
	p, err := a.log.List(t.Context(), audit.Filter{Limit: audit.MaxLimit})
	require.NoError(t, err)
	recs := p.Records
	slices.Reverse(recs)
	return recs
}

func openAudit(t *testing.T, dir string) *switchAudit {
	t.Helper()
	s, err := sqlite.Open(t.Context(), sqlite.Options{Path: filepath.Join(dir, "reflex.db")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	require.NoError(t, s.Migrate(t.Context()))
	key, err := audit.NewKey([]byte(strings.Repeat("k", audit.KeySize)))
	require.NoError(t, err)
	l, err := audit.New(audit.Options{Store: s, Key: key})
	require.NoError(t, err)
	return &switchAudit{log: l}
}

// harness is an Orchestrator with real command executors, scripts in
// testdata, and fakes for the rest.
type harness struct {
	t         *testing.T
	dir       string
	store     *memStore
	actions   *memActions
	guard     *fakeGuard
	approvals *fakeApprovals
	esc       *fakeEscalator
	audit     *switchAudit
	reg       *prometheus.Registry
	orc       *Orchestrator
	calls     atomic.Int64
	// beforeExec, when set, is called before each executor runs.
	beforeExec func(req executor.Request)
}

func newHarness(t *testing.T, opts ...func(*Options)) *harness {
	t.Helper()
	h := &harness{
		t: t, dir: t.TempDir(), store: newMemStore(), actions: &memActions{},
		guard: &fakeGuard{}, approvals: &fakeApprovals{}, esc: &fakeEscalator{},
		reg: prometheus.NewRegistry(),
	}
	h.audit = openAudit(t, h.dir)
	h.orc = h.newOrchestrator(opts...)
	return h
}

// newOrchestrator makes another orchestrator on the harness's store (a
// restarted server).
func (h *harness) newOrchestrator(opts ...func(*Options)) *Orchestrator {
	h.t.Helper()
	o := Options{
		Store: h.store, Actions: h.actions, Executors: h.executors, Guard: h.guard,
		Approvals: h.approvals, Escalator: h.esc, Audit: h.audit,
		Registerer: h.reg, BackoffBase: time.Millisecond,
	}
	for _, f := range opts {
		f(&o)
	}
	orc, err := New(o)
	require.NoError(h.t, err)
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = orc.Close(ctx)
	})
	return orc
}

func (h *harness) executors(d actions.Definition) (executor.Executor, error) {
	spec, err := executor.ParseSpec(d.Executor)
	if err != nil {
		return nil, err
	}
	cfg, err := command.Parse(spec)
	if err != nil {
		return nil, err
	}
	ex, err := command.New(cfg, command.Options{KillGrace: 200 * time.Millisecond})
	if err != nil {
		return nil, err
	}
	return execFunc(func(ctx context.Context, req executor.Request) (executor.Result, error) {
		h.calls.Add(1)
		if h.beforeExec != nil {
			h.beforeExec(req)
		}
		return ex.Execute(ctx, req)
	}), nil
}

type execFunc func(ctx context.Context, req executor.Request) (executor.Result, error)

func (f execFunc) Execute(ctx context.Context, req executor.Request) (executor.Result, error) {
	return f(ctx, req)
}

// script is the absolute path of a testdata script.
func script(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", name))
	require.NoError(t, err)
	return p
}

// def adds an enabled remediation action running the script with args
// (templates allowed), and returns it. Options change it.
func (h *harness) def(name, scriptName string, args []string, opts ...func(*actions.Definition, map[string]any)) actions.Definition {
	h.t.Helper()
	spec := map[string]any{"type": "command", "argv": append([]string{script(h.t, scriptName)}, args...)}
	d := actions.Definition{Name: name, Type: actions.TypeRemediation, RiskLevel: actions.RiskLow, Enabled: true}
	for _, f := range opts {
		f(&d, spec)
	}
	b, err := json.Marshal(spec)
	require.NoError(h.t, err)
	d.Executor = b
	return h.actions.add(d)
}

func withRollback(name string) func(*actions.Definition, map[string]any) {
	return func(d *actions.Definition, _ map[string]any) { d.Rollback = name }
}

// step is a plan step naming an action.
func step(name, action string, params map[string]string, opts ...func(*store.Step)) store.StepState {
	s := store.Step{Name: name, Type: actions.TypeRemediation, ActionName: action, Parameters: params}
	for _, f := range opts {
		f(&s)
	}
	return store.StepState{Step: s}
}

func (h *harness) start(x store.Execution, steps ...store.StepState) store.Execution {
	h.t.Helper()
	x.Steps = steps
	if x.RequestedBy == "" {
		x.RequestedBy = "key:ops"
	}
	if x.Data == nil {
		x.Data = json.RawMessage(`{"event": {"source_host": "web-7", "id": 42}}`)
	}
	stored, err := h.orc.Start(h.t.Context(), x)
	require.NoError(h.t, err)
	require.NotZero(h.t, stored.ID)
	return stored
}

// waitFor follows the execution's states until ok holds for one and
// returns it. The bound only limits how long a failing test hangs.
func (h *harness) waitFor(orc *Orchestrator, id int64, ok func(store.Execution) bool) store.Execution {
	h.t.Helper()
	ch, stop := orc.Subscribe(id)
	defer stop()
	deadline := time.After(2 * time.Minute)
	var last store.Execution
	for {
		select {
		case x, open := <-ch:
			if !open {
				x = h.store.get(h.t, id)
				if ok(x) {
					return x
				}
				h.t.Fatalf("execution %d: stream closed at status %s without the state wanted", id, x.Status)
			}
			last = x
			if ok(x) {
				return x
			}
		case <-deadline:
			h.t.Fatalf("execution %d: never reached the state wanted; last %s %+v", id, last.Status, last.Steps)
		}
	}
}

// waitWaiting waits for the execution to be pending on an approval.
func (h *harness) waitWaiting(id int64) store.Execution {
	h.t.Helper()
	return h.waitFor(h.orc, id, func(x store.Execution) bool { return x.Status == store.ExecPending && waitsForApproval(x) })
}

// waitEnd waits for the execution to end and returns it as stored.
func (h *harness) waitEnd(id int64) store.Execution {
	h.t.Helper()
	h.waitFor(h.orc, id, func(x store.Execution) bool { return ended(x.Status) })
	return h.store.get(h.t, id)
}

func statuses(steps []store.StepState) []string {
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = s.Name + ":" + s.Status
	}
	return out
}

// lines reads a marker file's lines (none when it does not exist).
func lines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	return strings.Fields(string(b))
}

// sysPidfdOpen is pidfd_open(2), the same number on every Linux
// architecture.
const sysPidfdOpen = 434

// requireGone fails the test unless process pid has exited (a zombie
// counts), waiting on a pidfd rather than polling.
func requireGone(t *testing.T, pid int) {
	t.Helper()
	fd, _, errno := syscall.Syscall(sysPidfdOpen, uintptr(pid), 0, 0)
	switch {
	case errno == syscall.ESRCH:
		return
	case errno != 0:
		t.Fatalf("pidfd_open(%d): %v", pid, errno)
	}
	defer syscall.Close(int(fd))
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	require.NoError(t, err)
	defer syscall.Close(ep)
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}
	require.NoError(t, syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, int(fd), &ev))
	evs := make([]syscall.EpollEvent, 1)
	for {
		n, err := syscall.EpollWait(ep, evs, 10000)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		require.NoError(t, err)
		if n == 0 {
			t.Fatalf("process %d is still running", pid)
		}
		return
	}
}
