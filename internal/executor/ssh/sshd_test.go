package ssh

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshdEnv names the sshd the tests run against. When it is set, a test
// that cannot start it fails; when it is not, /usr/sbin/sshd is tried and
// the tests skip when it is missing or cannot start.
const sshdEnv = "REFLEX_TEST_SSHD"

// testSSHD is a real OpenSSH server on 127.0.0.1 with a temporary host
// key, accepting the generated client key for its user.
//
// The user is not root: OpenSSH refuses the "signal" request (which ends
// a run that timed out) in sessions of root, which run without privilege
// separation. When the tests run as root, sshd runs in a private mount
// namespace (unshare) where /etc/passwd and /etc/group have one more
// entry, the user testUser with a home in the test's directory; otherwise
// it runs as the current user, who logs in as itself.
type testSSHD struct {
	addr       string // 127.0.0.1:port
	dir        string // readable by the user
	user       string
	uid, gid   int
	hostKey    gossh.PublicKey
	keyFile    string // the client's private key (authorized)
	knownHosts string // known_hosts with the server's host key for addr
}

// testUser is the account the tests log in as when they run as root.
const (
	testUser = "reflex-ssh-test"
	testUID  = 64123
)

// startSSHD starts sshd -D -e with a configuration of its own in a
// temporary directory and stops it when the test ends.
func startSSHD(t *testing.T) *testSSHD {
	t.Helper()
	path, required := os.Getenv(sshdEnv), true
	if path == "" {
		path, required = "/usr/sbin/sshd", false
	}
	fail := func(format string, args ...any) {
		t.Helper()
		if required {
			t.Fatalf("sshd (%s=%s): "+format, append([]any{sshdEnv, path}, args...)...)
		}
		t.Skipf("sshd %s not usable (set %s to make this a failure): "+format, append([]any{path, sshdEnv}, args...)...)
	}
	if _, err := os.Stat(path); err != nil {
		fail("%v", err)
	}
	dir := t.TempDir()
	// The user reads its authorized_keys, the scripts and its home here
	// (t.TempDir makes the directory and its parent 0700).
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil { //nolint:gosec // the ssh user reads the test's files
			t.Fatal(err)
		}
	}
	s := &testSSHD{dir: dir}
	var wrap []string // the command sshd runs under
	if os.Geteuid() == 0 {
		// sshd refuses to start without its privilege separation directory.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			fail("privilege separation directory: %v", err)
		}
		unshare, err := exec.LookPath("unshare")
		if err != nil {
			fail("running as root, the tests need unshare (util-linux) for a non-root login: %v", err)
		}
		s.user, s.uid, s.gid = testUser, testUID, testUID
		home := filepath.Join(dir, "home")
		if err := os.Mkdir(home, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(home, s.uid, s.gid); err != nil {
			t.Fatal(err)
		}
		passwd := filepath.Join(dir, "passwd")
		group := filepath.Join(dir, "group")
		appendFile(t, "/etc/passwd", passwd, fmt.Sprintf("%s:x:%d:%d:reflex ssh test:%s:/bin/sh\n", testUser, testUID, testUID, home))
		appendFile(t, "/etc/group", group, fmt.Sprintf("%s:x:%d:\n", testUser, testUID))
		wrap = []string{unshare, "--mount", "--propagation", "private", "/bin/sh", "-c",
			`mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group && shift 2 && exec "$@"`, "sh", passwd, group}
	} else {
		u, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		s.user, s.uid, s.gid = u.Username, os.Getuid(), os.Getgid()
	}

	hostPub, hostFile := writeKey(t, dir, "host_ed25519", "")
	s.hostKey = hostPub
	clientPub, clientFile := writeKey(t, dir, "id_ed25519", "")
	s.keyFile = clientFile
	s.writePublic(t, "authorized_keys", string(gossh.MarshalAuthorizedKey(clientPub)))

	var lastErr string
	for range 3 { // a free port may be taken between Listen and sshd's bind
		port := freePort(t)
		s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		conf := filepath.Join(dir, "sshd_config")
		writeFile(t, conf, strings.Join([]string{
			"ListenAddress " + s.addr,
			"HostKey " + hostFile,
			"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
			"PidFile " + filepath.Join(dir, "sshd.pid"),
			"UsePAM no",
			"StrictModes no",
			"PubkeyAuthentication yes",
			"PasswordAuthentication no",
			"KbdInteractiveAuthentication no",
			"AuthenticationMethods publickey",
			"PermitRootLogin prohibit-password",
			"PrintMotd no",
			"LogLevel VERBOSE",
		}, "\n")+"\n")
		ok, log := runSSHD(t, append(wrap, path, "-D", "-e", "-f", conf), port)
		if ok {
			s.knownHosts = s.writeKnownHosts(t, "known_hosts", s.hostKey)
			return s
		}
		lastErr = log
	}
	fail("did not start:\n%s", lastErr)
	return nil
}

// writePublic writes a file the user may read.
func (s *testSSHD) writePublic(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(s.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil { //nolint:gosec // a test file the ssh user reads
		t.Fatal(err)
	}
	return p
}

// script copies a script of testdata where the user can run it.
func (s *testSSHD) script(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return s.writePublic(t, name, string(b))
}

// writableDir is a directory the user may create files in.
func (s *testSSHD) writableDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp(s.dir, "w")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(d, s.uid, s.gid); err != nil {
		t.Fatal(err)
	}
	return d
}

// appendFile writes src's content and line to dst.
func appendFile(t *testing.T, src, dst, line string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	if err := os.WriteFile(dst, append(b, line...), 0o644); err != nil { //nolint:gosec // a copy of /etc/passwd or /etc/group
		t.Fatal(err)
	}
}

// runSSHD starts sshd and waits until it says it listens (or exits). The
// server is stopped when the test ends.
func runSSHD(t *testing.T, argv []string, port int) (bool, string) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		return false, err.Error()
	}
	var (
		mu  sync.Mutex
		log strings.Builder
	)
	listening := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		want := fmt.Sprintf("Server listening on 127.0.0.1 port %d", port)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			if log.Len() < 64<<10 {
				log.WriteString(line + "\n")
			}
			mu.Unlock()
			if strings.Contains(line, want) {
				close(listening)
			}
		}
		_ = cmd.Wait()
	}()
	logged := func() string { mu.Lock(); defer mu.Unlock(); return log.String() }
	select {
	case <-listening:
	case <-exited:
		return false, logged()
	case <-time.After(30 * time.Second): // a bound on a hung start, not a timing
		_ = cmd.Process.Kill()
		<-exited
		return false, "no \"Server listening\" within 30s\n" + logged()
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-exited
		if t.Failed() {
			t.Logf("sshd log:\n%s", logged())
		}
	})
	return true, ""
}

// writeKnownHosts writes a known_hosts file with key for the server's
// address.
func (s *testSSHD) writeKnownHosts(t *testing.T, name string, key gossh.PublicKey) string {
	t.Helper()
	p := filepath.Join(s.dir, name)
	writeFile(t, p, knownhosts.Line([]string{knownhosts.Normalize(s.addr)}, key)+"\n")
	return p
}

// config is an executor of the server running argv as the current user.
func (s *testSSHD) config(argv ...string) Config {
	host, port, _ := net.SplitHostPort(s.addr)
	p, _ := strconv.Atoi(port)
	return Config{Host: host, Port: p, User: s.user, KeyFile: s.keyFile, KnownHosts: s.knownHosts, Argv: argv}
}

// writeKey writes a new ed25519 private key in OpenSSH form (encrypted
// with passphrase when it is not empty) and returns its public key and
// the file.
func writeKey(t *testing.T, dir, name, passphrase string) (gossh.PublicKey, string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if passphrase != "" {
		// ssh-keygen -a 1: one KDF round (x/crypto's marshalling uses 16,
		// seconds under the race detector).
		if keygen, err := exec.LookPath("ssh-keygen"); err == nil {
			out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-a", "1", "-N", passphrase, "-C", "", "-f", p).CombinedOutput()
			if err != nil {
				t.Fatalf("ssh-keygen: %v: %s", err, out)
			}
			b, err := os.ReadFile(p + ".pub")
			if err != nil {
				t.Fatal(err)
			}
			pub, _, _, _, err := gossh.ParseAuthorizedKey(b)
			if err != nil {
				t.Fatal(err)
			}
			return pub, p
		}
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = gossh.MarshalPrivateKey(priv, "")
	} else {
		block, err = gossh.MarshalPrivateKeyWithPassphrase(priv, "", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, err := gossh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return sp, p
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
