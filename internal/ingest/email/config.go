package email

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Defaults of Options.
const (
	DefaultDomain        = "reflex"
	DefaultMaxBytes      = 10 << 20
	DefaultMaxConns      = 100
	DefaultMaxRecipients = 100
	DefaultSource        = "email"
	// DefaultReadTimeout bounds the wait for each command line and, as
	// go-smtp sets no deadline of its own for it, the whole DATA transfer.
	DefaultReadTimeout   = 2 * time.Minute
	DefaultWriteTimeout  = time.Minute
	DefaultSubmitTimeout = 30 * time.Second
	// maxAuthFailures is the most password checks one session may make:
	// bcrypt is slow on purpose, and a client must not spend the server's
	// CPU on guesses.
	maxAuthFailures = 3
	maxAuthFileSize = 1 << 20
)

// ErrConfig is wrapped by the errors of Options that cannot be used.
var ErrConfig = errors.New("email: config")

// Options configure Start. The zero value is a listener on no address
// (Addr is required) with the defaults: no TLS, no authentication, any
// recipient, the built-in rules.
type Options struct {
	// Addr is the TCP address to listen on (host:port; port 0 picks one).
	Addr string
	// Domain is the name the server greets with (default "reflex").
	Domain string
	// TLS enables STARTTLS; nil offers none.
	TLS *tls.Config
	// MaxBytes bounds a message; a larger one is refused with 552 (default
	// 10 MiB).
	MaxBytes int64
	// MaxConns bounds the concurrent sessions; a client beyond it is
	// answered 421 and disconnected (default 100).
	MaxConns int
	// MaxRecipients bounds the recipients of one message (default 100).
	MaxRecipients int
	// Recipients are the recipients accepted; nil accepts any.
	Recipients *Recipients
	// Users, when not nil, are the users who may send: a client must
	// AUTH PLAIN before MAIL.
	Users *Users
	// Rules extract severity, host, event type and alert status; nil is
	// DefaultRules.
	Rules *Rules
	// Source is the events' source_system (default "email").
	Source string
	// ReadTimeout, WriteTimeout and SubmitTimeout default to
	// DefaultReadTimeout, DefaultWriteTimeout and DefaultSubmitTimeout.
	ReadTimeout   time.Duration
	WriteTimeout  time.Duration
	SubmitTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.Domain == "" {
		o.Domain = DefaultDomain
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.MaxRecipients <= 0 {
		o.MaxRecipients = DefaultMaxRecipients
	}
	if o.Rules == nil {
		o.Rules = DefaultRules()
	}
	if o.Source == "" {
		o.Source = DefaultSource
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.SubmitTimeout <= 0 {
		o.SubmitTimeout = DefaultSubmitTimeout
	}
	return o
}

// check refuses what cannot work: users who could never authenticate,
// because AUTH is refused on a connection that is neither TLS nor
// loopback.
func (o Options) check() error {
	if o.Addr == "" {
		return fmt.Errorf("%w: no listen address", ErrConfig)
	}
	if o.Users != nil && o.TLS == nil && !loopbackAddr(o.Addr) {
		return fmt.Errorf("%w: smtp-auth-file needs smtp-tls-cert and smtp-tls-key (AUTH is refused without TLS, except on loopback)", ErrConfig)
	}
	return nil
}

// loopbackAddr reports whether a listen address is on loopback only.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Recipients is a recipient allow-list: addresses, and domains whose every
// address is accepted.
type Recipients struct {
	addrs   map[string]bool
	domains map[string]bool
}

// ParseRecipients parses a comma-separated allow-list: addresses
// (alerts@example.com) and domains (@example.com), matched without regard
// to case. An empty list is nil: any recipient.
func ParseRecipients(s string) (*Recipients, error) {
	r := &Recipients{addrs: map[string]bool{}, domains: map[string]bool{}}
	for _, f := range strings.Split(s, ",") {
		f = strings.ToLower(strings.Trim(strings.TrimSpace(f), "<>"))
		switch {
		case f == "":
		case strings.HasPrefix(f, "@") && len(f) > 1 && !strings.Contains(f[1:], "@"):
			r.domains[f[1:]] = true
		case strings.Count(f, "@") == 1 && !strings.HasPrefix(f, "@") && !strings.HasSuffix(f, "@"):
			r.addrs[f] = true
		default:
			return nil, fmt.Errorf("%w: smtp-recipients: %q is neither an address nor @domain", ErrConfig, f)
		}
	}
	if len(r.addrs) == 0 && len(r.domains) == 0 {
		return nil, nil //nolint:nilnil // nil is "any recipient", documented
	}
	return r, nil
}

// Allows reports whether rcpt (an address, as RCPT TO gave it) is on the
// list; a nil list allows any.
func (r *Recipients) Allows(rcpt string) bool {
	if r == nil {
		return true
	}
	a := strings.ToLower(rcpt)
	if r.addrs[a] {
		return true
	}
	i := strings.LastIndexByte(a, '@')
	return i >= 0 && r.domains[a[i+1:]]
}

// Users are the users who may authenticate, with their bcrypt hashes.
type Users struct {
	hashes map[string][]byte
}

// dummyHash is compared for an unknown user, so that the answer takes as
// long as for a known one.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("reflex: no such user"), bcrypt.DefaultCost)
	return h
})

// LoadUsers reads a users file: one "user:bcrypt-hash" per line (as
// htpasswd -B writes them); empty lines and lines starting with # are
// skipped. A hash that is not bcrypt is an error.
func LoadUsers(path string) (*Users, error) {
	f, err := os.Open(path) //nolint:gosec // the operator's own configuration file
	if err != nil {
		return nil, fmt.Errorf("%w: smtp-auth-file: %w", ErrConfig, err)
	}
	defer func() { _ = f.Close() }()
	b, err := io.ReadAll(io.LimitReader(f, maxAuthFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: smtp-auth-file: %w", ErrConfig, err)
	}
	if len(b) > maxAuthFileSize {
		return nil, fmt.Errorf("%w: smtp-auth-file: larger than %d bytes", ErrConfig, maxAuthFileSize)
	}
	return ParseUsers(b)
}

// ParseUsers parses the contents of a users file (see LoadUsers). Errors
// name the line, never its contents.
func ParseUsers(b []byte) (*Users, error) {
	u := &Users{hashes: map[string][]byte{}}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("%w: smtp-auth-file line %d: want user:bcrypt-hash", ErrConfig, n)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("%w: smtp-auth-file line %d: the hash is not bcrypt", ErrConfig, n)
		}
		u.hashes[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: smtp-auth-file: %w", ErrConfig, err)
	}
	if len(u.hashes) == 0 {
		return nil, fmt.Errorf("%w: smtp-auth-file has no users", ErrConfig)
	}
	return u, nil
}

// Check reports whether password is user's.
func (u *Users) Check(user, password string) bool {
	h, ok := u.hashes[user]
	if !ok {
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword(h, []byte(password)) == nil
}
