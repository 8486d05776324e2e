// Package ssh is the executor that runs a program on a remote host over
// SSH (golang.org/x/crypto/ssh): key authentication only, the host key
// verified against a known_hosts file, and the same argv discipline as the
// local command executor.
//
// The SSH protocol carries one command string, which the remote account's
// login shell parses (sshd runs "$SHELL -c <command>"). So that it parses
// into exactly the arguments of the definition, every element of argv,
// the program too, is quoted for a POSIX shell by Command: each is put in
// single quotes, inside which nothing is special, and a single quote in it
// ends the quotes, is escaped with a backslash and reopens them, so that
// ["/opt/fix/restart.sh", "it's; id"] is sent as
//
//	'/opt/fix/restart.sh' 'it'\''s; id'
//
// Nothing in an element (";", "$(...)", backquotes, newlines, globs, "~")
// is interpreted and each element is one word. This holds for POSIX
// shells (sh, dash, bash, ksh, zsh, busybox sh); the remote account's
// login shell must be one of them, not csh, tcsh or fish, whose quoting
// differs. An argument with a NUL byte cannot be passed and is refused.
//
// A templated argument (argv[1:], "{{.event.source_host}}") renders into
// exactly one argument (executor.Render), never split, and never into an
// option: one beginning with "-" is refused, or with dash_args "separate"
// passed after a "--" placed before the first templated argument. The
// host may be a template too; what it renders to must be a hostname or an
// IP literal (CheckHost), never an option of anything or a user@host.
//
// A run connects (connect_timeout bounds the TCP connection and the
// handshake), opens one session, starts the command and waits for it,
// capturing stdout and stderr (each, and their interleaving, to
// max_output). When the run's timeout or its context ends it, the
// executor sends the remote command signal KILL (OpenSSH sends it to the
// command's process group), waits briefly for its exit, then closes the
// session and the connection. OpenSSH refuses that signal in sessions of
// root (they run without privilege separation) and cannot signal what
// runs as another user (through sudo): the remote account should be an
// ordinary one, or such a command keeps running after a timeout (the
// error says so). Lines "reflex-output: key=value" on stdout become
// named outputs.
//
// Failures: a connection refused or timed out (nothing ran) is
// retryable; an unknown or changed host key (ErrHostKey) and a refused
// key (ErrAuth) are not, and their messages name host:port, the
// known_hosts file or the key file, never key material; a non-zero exit
// is an *executor.ExitError, retryable when the definition lists its
// code; a timeout is executor.ErrTimeout, retryable when the definition
// is idempotent. Keys and passphrases are read once, by New, and never
// logged.
package ssh

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/reflex-ops/reflex/internal/executor"
)

// ErrHostKey is the failure of a host whose key is not the one the
// known_hosts file has for it (or that file has none). Not retryable.
var ErrHostKey = errors.New("ssh: host key verification failed")

// ErrAuth is the failure of an authentication the server refused. Not
// retryable.
var ErrAuth = errors.New("ssh: authentication failed")

// Bounds of what a run reads and reports.
const (
	// MaxOutputs is the most "reflex-output:" values a run reports.
	MaxOutputs = 64
	// MaxOutputValue is the longest value of one; a longer one is
	// dropped.
	MaxOutputValue = 4 << 10
	maxFileBytes   = 1 << 20 // a key, passphrase or known_hosts file
	// killGrace is how long a run that its timeout ended waits for the
	// remote command's exit after signal KILL before it closes the
	// connection.
	killGrace = 5 * time.Second
)

// Options are an Executor's dependencies; the zero value is a safe
// default.
type Options struct {
	// Logger receives the executor's logs (nil: discarded).
	Logger *slog.Logger
	// Now stamps Result.Started and Finished (nil: time.Now).
	Now func() time.Time
	// Dial opens the TCP connection to "host:port", for example the
	// outbound guard's DialContext (nil: a net.Dialer).
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
}

// Executor runs a Config's remote program. It is safe for concurrent
// use; it holds no connection between runs.
type Executor struct {
	cfg       Config
	templated []bool // templated[i]: Argv[i] is a template
	signer    gossh.Signer
	hostKey   gossh.HostKeyCallback // nil when InsecureIgnoreHostKey
	log       *slog.Logger
	now       func() time.Time
	dial      func(ctx context.Context, network, address string) (net.Conn, error)
}

var _ executor.Executor = (*Executor)(nil)

// New validates cfg (its zero optional fields set to their defaults),
// reads its private key (with its passphrase, when it has one) and its
// known_hosts file. Its errors name the files, never what they hold.
func New(cfg Config, opts Options) (*Executor, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Executor{cfg: cfg, log: opts.Logger, now: opts.Now, dial: opts.Dial}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	e.log = e.log.With("component", "executor-ssh")
	if e.now == nil {
		e.now = time.Now
	}
	if e.dial == nil {
		e.dial = (&net.Dialer{}).DialContext
	}
	for _, a := range cfg.Argv {
		e.templated = append(e.templated, isTemplate(a))
	}
	signer, err := e.readKey()
	if err != nil {
		return nil, err
	}
	e.signer = signer
	if cfg.InsecureIgnoreHostKey {
		e.log.Warn("ssh executor accepts any host key (insecure_ignore_host_key): a man in the middle would not be noticed",
			"host", cfg.Host, "user", cfg.User)
		return e, nil
	}
	if _, err := readFile(cfg.KnownHosts); err != nil {
		return nil, fmt.Errorf("ssh: %w: known_hosts %s: %w", executor.ErrInvalid, cfg.KnownHosts, err)
	}
	cb, err := knownhosts.New(cfg.KnownHosts)
	if err != nil {
		return nil, fmt.Errorf("ssh: %w: known_hosts %s: %w", executor.ErrInvalid, cfg.KnownHosts, err)
	}
	e.hostKey = cb
	return e, nil
}

// readKey reads and parses the private key; the key's and the
// passphrase's bytes are cleared once parsed.
func (e *Executor) readKey() (gossh.Signer, error) {
	key, err := readFile(e.cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("ssh: %w: key_file %s: %w", executor.ErrInvalid, e.cfg.KeyFile, err)
	}
	defer clear(key)
	if fi, err := os.Stat(e.cfg.KeyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		e.log.Warn("ssh key_file is readable by other users", "key_file", e.cfg.KeyFile)
	}
	if e.cfg.PassphraseFile == "" {
		signer, err := gossh.ParsePrivateKey(key)
		var missing *gossh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, fmt.Errorf("ssh: %w: key_file %s is encrypted: set passphrase_file", executor.ErrInvalid, e.cfg.KeyFile)
		}
		if err != nil {
			return nil, fmt.Errorf("ssh: %w: key_file %s: not a private key this executor reads", executor.ErrInvalid, e.cfg.KeyFile)
		}
		return signer, nil
	}
	pass, err := readFile(e.cfg.PassphraseFile)
	if err != nil {
		return nil, fmt.Errorf("ssh: %w: passphrase_file %s: %w", executor.ErrInvalid, e.cfg.PassphraseFile, err)
	}
	defer clear(pass)
	trimmed := bytes.TrimSuffix(bytes.TrimSuffix(pass, []byte("\n")), []byte("\r"))
	signer, err := gossh.ParsePrivateKeyWithPassphrase(key, trimmed)
	if err != nil {
		return nil, fmt.Errorf("ssh: %w: key_file %s with passphrase_file %s: wrong passphrase or not a private key", executor.ErrInvalid, e.cfg.KeyFile, e.cfg.PassphraseFile)
	}
	return signer, nil
}

// readFile reads a file of at most maxFileBytes. Its errors name no
// content.
func readFile(name string) ([]byte, error) {
	f, err := os.Open(filepath.Clean(name))
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, pe.Err // the caller names the file
		}
		return nil, err
	}
	defer closeQuietly(f)
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, errors.New("cannot be read")
	}
	if len(b) > maxFileBytes {
		clear(b)
		return nil, fmt.Errorf("larger than %d bytes", maxFileBytes)
	}
	return b, nil
}

// Execute renders the host and the arguments from req.Data, connects,
// runs the command and waits for it (see the package documentation for
// its outputs and failures). A refused rendering connects to nothing.
func (e *Executor) Execute(ctx context.Context, req executor.Request) (executor.Result, error) {
	res := executor.Result{ExitCode: -1}
	host, argv, err := e.render(req.Data)
	if err != nil {
		return res, err
	}
	cmd, err := Command(argv)
	if err != nil {
		return res, err
	}
	timeout := e.cfg.Timeout
	if req.Timeout > 0 {
		timeout = req.Timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	addr := net.JoinHostPort(host, strconv.Itoa(e.cfg.Port))
	log := e.log.With("execution_id", req.ExecutionID, "step", req.Step, "addr", addr)
	client, err := e.connect(ctx, addr)
	if err != nil {
		log.DebugContext(ctx, "ssh connection failed", "err", err)
		return res, err
	}
	defer closeQuietly(client)
	// Until the command runs, ctx ending closes the connection; then kill
	// takes over.
	stopClose := context.AfterFunc(ctx, func() { closeQuietly(client) })
	sess, err := client.NewSession()
	if err != nil { // nothing ran
		if !stopClose() {
			return res, e.endedError(ctx, "opening a session on "+addr, true)
		}
		return res, executor.MarkRetryable(fmt.Errorf("ssh: %s: open session: %w", addr, err))
	}
	defer closeQuietly(sess)

	stdout := &executor.Limited{Max: e.cfg.MaxOutput}
	stderr := &executor.Limited{Max: e.cfg.MaxOutput}
	output := &executor.Limited{Max: e.cfg.MaxOutput}
	sess.Stdout = io.MultiWriter(stdout, output)
	sess.Stderr = io.MultiWriter(stderr, output)
	started := e.now()
	if err := sess.Start(cmd); err != nil {
		if !stopClose() {
			return res, e.endedError(ctx, "starting "+quote(argv[0])+" on "+addr, e.cfg.Idempotent)
		}
		return res, fmt.Errorf("ssh: %s: start %s: %w", addr, quote(argv[0]), err)
	}
	res.Started = started
	if !stopClose() {
		// ctx ended as the command started: the connection is closed,
		// and the wait below returns at once.
		e.log.DebugContext(ctx, "ssh: the run ended as the command started", "addr", addr)
	}
	log.DebugContext(ctx, "ssh command started", "program", argv[0])

	var waitErr error
	done := make(chan struct{})
	go func() {
		waitErr = sess.Wait()
		close(done)
	}()
	ended, killed := false, false
	select {
	case <-done:
	case <-ctx.Done():
		ended = true
		killed = e.kill(sess, client, done)
	}
	res.Finished = e.now()
	res.Output, res.Truncated = output.Bytes()
	out, _ := stdout.Bytes()
	errOut, _ := stderr.Bytes()
	res.Outputs = ParseOutputs(out)
	res.Outputs["stdout"] = string(out)
	res.Outputs["stderr"] = string(errOut)
	res.Outputs["output"] = string(res.Output)

	err = nil
	switch {
	case ended && killed:
		err = e.endedError(ctx, "remote command "+quote(argv[0]), e.cfg.Idempotent)
	case ended:
		err = e.endedError(ctx, "remote command "+quote(argv[0])+" (it did not end on signal KILL and may still run)", e.cfg.Idempotent)
	case waitErr == nil:
		res.ExitCode = 0
	default:
		res.ExitCode, err = e.waitError(addr, waitErr)
	}
	res.Outputs["exit_code"] = strconv.Itoa(res.ExitCode)
	log.DebugContext(ctx, "ssh command ended", "program", argv[0], "exit_code", res.ExitCode,
		"duration", res.Finished.Sub(res.Started), "err", err)
	return res, err
}

// kill ends a running command: signal KILL (sshd sends it to the
// command's process group), a bounded wait for its exit, then the
// session and the connection closed, which also ends the wait. It
// reports whether the command's end was seen.
//
// OpenSSH refuses the signal in a session of root (which runs without
// privilege separation: "session signalling requires privilege
// separation" in its log), and cannot signal processes of another user
// (sudo); such a command is left to run when the connection closes.
func (e *Executor) kill(sess *gossh.Session, client *gossh.Client, done <-chan struct{}) bool {
	if err := sess.Signal(gossh.SIGKILL); err != nil {
		e.log.Debug("ssh: signal KILL not sent", "err", err)
	}
	grace := time.NewTimer(killGrace)
	defer grace.Stop()
	select {
	case <-done:
		return true
	case <-grace.C:
		e.log.Warn("ssh: the remote command did not end on signal KILL; closing the connection, it may still run (is the remote user root?)",
			"user", e.cfg.User)
	}
	closeQuietly(sess)
	closeQuietly(client)
	<-done
	return false
}

// waitError turns what Session.Wait returned into an exit code and the
// run's error.
func (e *Executor) waitError(addr string, err error) (int, error) {
	var exit *gossh.ExitError
	var missing *gossh.ExitMissingError
	switch {
	case errors.As(err, &exit) && exit.Signal() != "":
		return -1, fmt.Errorf("ssh: %s: remote command killed by signal %s", addr, exit.Signal())
	case errors.As(err, &exit):
		code := exit.ExitStatus()
		xerr := fmt.Errorf("ssh: %s: %w", addr, &executor.ExitError{Code: code})
		if slices.Contains(e.cfg.RetryableExitCodes, code) {
			xerr = executor.MarkRetryable(xerr)
		}
		return code, xerr
	case errors.As(err, &missing):
		return -1, fmt.Errorf("ssh: %s: the remote command ended without an exit status", addr)
	}
	lost := fmt.Errorf("ssh: %s: connection lost while the command ran: %w", addr, err)
	if e.cfg.Idempotent {
		lost = executor.MarkRetryable(lost)
	}
	return -1, lost
}

// endedError is the error of a run that ctx ended while doing what:
// executor.ErrTimeout when a deadline passed, context.Canceled when it
// was cancelled; retryable says a timeout may be tried again.
func (e *Executor) endedError(ctx context.Context, what string, retryable bool) error {
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("ssh: %s: %w", what, context.Canceled)
	}
	err := fmt.Errorf("ssh: %s: %w", what, executor.ErrTimeout)
	if retryable {
		err = executor.MarkRetryable(err)
	}
	return err
}

// connect dials addr and completes the SSH handshake within the connect
// timeout (and ctx).
func (e *Executor) connect(ctx context.Context, addr string) (*gossh.Client, error) {
	dctx, cancel := context.WithTimeout(ctx, e.cfg.ConnectTimeout)
	defer cancel()
	conn, err := e.dial(dctx, "tcp", addr)
	if err != nil {
		return nil, e.dialError(ctx, dctx, addr, err)
	}
	stop := context.AfterFunc(dctx, func() { closeQuietly(conn) })
	var hostErr lastError
	cc := &gossh.ClientConfig{
		User: e.cfg.User,
		Auth: []gossh.AuthMethod{gossh.PublicKeys(e.signer)},
	}
	if e.hostKey == nil {
		cc.HostKeyCallback = gossh.InsecureIgnoreHostKey() //nolint:gosec // insecure_ignore_host_key, set explicitly and warned about
	} else {
		cc.HostKeyCallback = func(hostname string, remote net.Addr, key gossh.PublicKey) error {
			err := e.hostKey(hostname, remote, key)
			hostErr.set(err)
			return err
		}
		cc.HostKeyAlgorithms = hostKeyAlgorithms(e.hostKey, addr, conn.RemoteAddr())
	}
	c, chans, reqs, err := gossh.NewClientConn(conn, addr, cc)
	if !stop() { // dctx ended: the connection is closed
		if err == nil {
			closeQuietly(c)
		}
		closeQuietly(conn)
		return nil, e.dialError(ctx, dctx, addr, context.DeadlineExceeded)
	}
	if err != nil {
		closeQuietly(conn)
		return nil, e.handshakeError(addr, hostErr.get(), err)
	}
	return gossh.NewClient(c, chans, reqs), nil
}

// dialError classifies a failure to connect: nothing ran, so a timeout
// or a refused connection may be tried again; a name that does not
// resolve may not.
func (e *Executor) dialError(ctx, dctx context.Context, addr string, err error) error {
	if ctx.Err() != nil {
		return e.endedError(ctx, "connecting to "+addr, true)
	}
	if dctx.Err() != nil {
		return executor.MarkRetryable(fmt.Errorf("ssh: connecting to %s: no connection within connect_timeout %s", addr, e.cfg.ConnectTimeout))
	}
	var dns *net.DNSError
	if errors.As(err, &dns) && dns.IsNotFound {
		return fmt.Errorf("ssh: connecting to %s: %w", addr, err)
	}
	return executor.MarkRetryable(fmt.Errorf("ssh: connecting to %s: %w", addr, err))
}

// handshakeError classifies a failed handshake: a host key or an
// authentication failure is permanent and says which file to look at;
// a connection that broke during the handshake may be tried again.
func (e *Executor) handshakeError(addr string, hostErr, err error) error {
	var keyErr *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	switch {
	case errors.As(hostErr, &keyErr) && len(keyErr.Want) == 0:
		return fmt.Errorf("%w: %s is not in known_hosts %s (unknown host: add its key, for example from ssh-keyscan, after checking its fingerprint)",
			ErrHostKey, addr, e.cfg.KnownHosts)
	case errors.As(hostErr, &keyErr):
		return fmt.Errorf("%w: the host key of %s does not match known_hosts %s (the host key changed, or something is in between)",
			ErrHostKey, addr, e.cfg.KnownHosts)
	case errors.As(hostErr, &revoked):
		return fmt.Errorf("%w: the host key of %s is revoked in known_hosts %s", ErrHostKey, addr, e.cfg.KnownHosts)
	case hostErr != nil:
		return fmt.Errorf("%w: %s against known_hosts %s: %w", ErrHostKey, addr, e.cfg.KnownHosts, hostErr)
	case strings.Contains(err.Error(), "unable to authenticate"):
		return fmt.Errorf("%w: %s@%s refused the key of key_file %s", ErrAuth, e.cfg.User, addr, e.cfg.KeyFile)
	}
	var ne net.Error
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.As(err, &ne) {
		return executor.MarkRetryable(fmt.Errorf("ssh: handshake with %s: %w", addr, err))
	}
	return fmt.Errorf("ssh: handshake with %s: %w", addr, err)
}

// closeQuietly closes c on a path where its error changes nothing (a
// run's end, a failed handshake).
func closeQuietly(c io.Closer) { _ = c.Close() }

// lastError holds the last error the host key callback returned (it runs
// in the handshake's goroutine).
type lastError struct {
	mu  sync.Mutex
	err error
}

func (l *lastError) set(err error) { l.mu.Lock(); l.err = err; l.mu.Unlock() }

func (l *lastError) get() error { l.mu.Lock(); defer l.mu.Unlock(); return l.err }

// probeKey is a key no host has, shown to the known_hosts callback to
// learn which key types it holds for a host.
var probeKey = func() gossh.PublicKey {
	k, err := gossh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))
	if err != nil {
		panic(err)
	}
	return k
}()

// hostKeyAlgorithms are the host key algorithms to offer addr: those of
// the keys known_hosts has for it, so that a server with several host
// keys presents one that can be verified (nil: the library's default,
// when known_hosts knows none).
func hostKeyAlgorithms(cb gossh.HostKeyCallback, addr string, remote net.Addr) []string {
	var keyErr *knownhosts.KeyError
	if err := cb(addr, remote, probeKey); !errors.As(err, &keyErr) {
		return nil
	}
	var algos []string
	for _, k := range keyErr.Want {
		typ := k.Key.Type()
		names := []string{typ}
		if typ == gossh.KeyAlgoRSA {
			names = []string{gossh.KeyAlgoRSASHA512, gossh.KeyAlgoRSASHA256, gossh.KeyAlgoRSA}
		}
		for _, n := range names {
			if !slices.Contains(algos, n) {
				algos = append(algos, n)
			}
		}
	}
	return algos
}

// render renders the host and the arguments, refusing a host that is not
// a hostname or an IP literal and a templated argument that would become
// an option or holds a NUL byte.
func (e *Executor) render(data map[string]any) (string, []string, error) {
	host, err := executor.Render(e.cfg.Host, data)
	if err != nil {
		return "", nil, fmt.Errorf("ssh: host: %w", err)
	}
	if err := CheckHost(host); err != nil {
		return "", nil, fmt.Errorf("ssh: %w: host: %w", executor.ErrRefused, err)
	}
	argv := make([]string, 0, len(e.cfg.Argv)+1)
	argv = append(argv, e.cfg.Argv[0])
	separated := false
	for i := 1; i < len(e.cfg.Argv); i++ {
		if !e.templated[i] {
			argv = append(argv, e.cfg.Argv[i])
			continue
		}
		v, err := executor.Render(e.cfg.Argv[i], data)
		if err != nil {
			return "", nil, fmt.Errorf("ssh: argv[%d]: %w", i, err)
		}
		if strings.ContainsRune(v, 0) {
			return "", nil, fmt.Errorf("ssh: %w: argv[%d] renders to a value with a NUL byte", executor.ErrRefused, i)
		}
		if strings.HasPrefix(v, "-") && e.cfg.DashArgs != executor.DashSeparate {
			return "", nil, fmt.Errorf("ssh: %w: argv[%d] renders to a value beginning with \"-\", which the program would read as an option (dash_args %q)",
				executor.ErrRefused, i, e.cfg.DashArgs)
		}
		if e.cfg.DashArgs == executor.DashSeparate && !separated {
			argv = append(argv, "--")
			separated = true
		}
		argv = append(argv, v)
	}
	return host, argv, nil
}

// Command is the command line that makes a POSIX shell run argv: each
// element quoted by Quote, separated by spaces. The shell parses it into
// exactly argv, the first element the program, nothing in any element
// interpreted. An element with a NUL byte (which no argument can hold)
// or a line longer than MaxCommand is refused (executor.ErrRefused).
func Command(argv []string) (string, error) {
	if len(argv) == 0 {
		return "", fmt.Errorf("ssh: %w: no program", executor.ErrRefused)
	}
	var b strings.Builder
	for i, a := range argv {
		if strings.ContainsRune(a, 0) {
			return "", fmt.Errorf("ssh: %w: argument %d has a NUL byte", executor.ErrRefused, i)
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(quoteArg(a))
		if b.Len() > MaxCommand {
			return "", fmt.Errorf("ssh: %w: the command line is longer than %d bytes", executor.ErrRefused, MaxCommand)
		}
	}
	return b.String(), nil
}

// Quote quotes s as one word for a POSIX shell: in single quotes, inside
// which nothing is special but the single quote itself, which ends the
// quotes, is escaped with a backslash and reopens them:
//
//	it's     ->  'it'\''s'
//	(empty)  ->  ''
//
// s must not hold a NUL byte (Command refuses one).
func Quote(s string) string { return quoteArg(s) }

func quoteArg(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

var outputKeyRE = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

// outputPrefix begins a line of stdout that reports a named output.
const outputPrefix = "reflex-output: "

// reserved are the outputs every run sets, which a "reflex-output:" line
// cannot replace.
var reserved = []string{"exit_code", "stdout", "stderr", "output"}

// ParseOutputs reads the named outputs a remote program reports on its
// stdout, one a line: "reflex-output: key=value", key of [a-z0-9_]{1,64},
// value to the end of the line (a trailing "\r" removed) of at most
// MaxOutputValue bytes. A later line with the same key replaces the
// earlier value; lines that do not fit, keys of the reserved outputs
// (exit_code, stdout, stderr, output) and keys beyond the first
// MaxOutputs are ignored. The map is never nil.
func ParseOutputs(stdout []byte) map[string]string {
	out := map[string]string{}
	for line := range strings.SplitSeq(string(stdout), "\n") {
		line, ok := strings.CutPrefix(line, outputPrefix)
		if !ok {
			continue
		}
		line = strings.TrimSuffix(line, "\r")
		key, value, ok := strings.Cut(line, "=")
		if !ok || !outputKeyRE.MatchString(key) || len(value) > MaxOutputValue || slices.Contains(reserved, key) {
			continue
		}
		if _, seen := out[key]; !seen && len(out) >= MaxOutputs {
			continue
		}
		out[key] = value
	}
	return out
}
