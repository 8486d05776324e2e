package logtmpl

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMinerMergesParameters(t *testing.T) {
	m := New(Options{})
	a, isNew := m.Add("Connection closed by 10.0.0.1 port 22")
	require.True(t, isNew)
	require.Equal(t, "Connection closed by <*> port <*>", a.Text, "addresses and numbers are masked")
	b, isNew := m.Add("Connection closed by 10.0.0.2 port 2222")
	require.False(t, isNew)
	require.Equal(t, a.ID, b.ID)
	require.Equal(t, int64(2), b.Count)

	// A word that differs starts a template of its own until the
	// position shows WordValues (4) words: then they fold into one.
	var ids []int64
	for i, user := range []string{"alice", "bob", "carol"} {
		tp, isNew := m.Add(fmt.Sprintf("Accepted password for %s from 10.1.1.%d port 5100%d ssh2", user, i, i))
		require.True(t, isNew, user)
		ids = append(ids, tp.ID)
	}
	d, isNew := m.Add("Accepted password for dave from 10.1.1.9 port 51009 ssh2")
	require.False(t, isNew)
	require.Equal(t, ids[0], d.ID, "folded into the oldest")
	require.Equal(t, "Accepted password for <*> from <*> port <*> ssh2", d.Text)
	require.Equal(t, int64(4), d.Count)
	for _, id := range ids {
		require.Equal(t, ids[0], m.Resolve(id))
	}
	e, isNew := m.Add("Accepted password for erin from 10.1.1.10 port 51010 ssh2")
	require.False(t, isNew, "a fifth user joins the live template")
	require.Equal(t, ids[0], e.ID)

	// Different messages stay apart: other length, other leading tokens.
	f, isNew := m.Add("Invalid user admin from 10.1.1.3")
	require.True(t, isNew)
	require.NotEqual(t, ids[0], f.ID)

	all := m.Templates()
	require.Len(t, all, 6, "by id, folded ones included")
	total, live := int64(0), 0
	for _, tp := range all {
		total += tp.Count
		if tp.FoldedInto == 0 {
			live++
			continue
		}
		require.Equal(t, ids[0], tp.FoldedInto)
		require.Equal(t, d.Text, tp.Text, "a folded template reads as the live one")
		require.Zero(t, tp.Count, "its messages count in the live one")
	}
	require.Equal(t, 3, live)
	require.Equal(t, int64(8), total)
}

func TestMinerWords(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		a, b string
		same bool
	}{
		{"a word in a short template is another event", Options{WordValues: 1},
			"Starting TrustedInstaller initialization.", "Starting TrustedInstaller finalization.", false},
		{"a word in a long template is a parameter", Options{WordValues: 1},
			"Block rdd_1 stored as bytes in memory on node alpha", "Block rdd_2 stored as values in memory on node alpha", true},
		{"the same word with WordValues on", Options{},
			"Block rdd_1 stored as bytes in memory on node alpha", "Block rdd_2 stored as values in memory on node alpha", false},
		{"words inside the same punctuation", Options{},
			"data store interrupt caused by dcbf.........12", "data store interrupt caused by icbi.........34", false},
		{"digits and masked parts only differ", Options{},
			"cancelNotification,index:-3", "cancelNotification,index:7", true},
		{"dates and units are parameters", Options{},
			"connection from 10.0.0.1 () at Sun Jul 24 02:13:40 2005", "connection from 10.0.0.2 (host.example) at Mon Jun 13 04:55:01 2005", true},
		{"sizes with their units", Options{},
			"Block broadcast_1 stored as values in memory (estimated size 384.0 B, free 317.5 KB)",
			"Block broadcast_2 stored as values in memory (estimated size 12.1 KB, free 305.4 KB)", true},
		{"(x) and LOGIN(x) differ in length", Options{},
			"session opened for user news by (uid=0)", "session opened for user news by LOGIN(uid=0)", false},
		{"durations with their units", Options{},
			"chrome.exe - proxy.example.org:5070 close, 1190 bytes sent, lifetime <1 sec", "chrome.exe - proxy.example.org:5070 close, 403 bytes sent, lifetime 00:02", true},
		{"two values of a key", Options{},
			"flags=0 reason=timeout tries=3", "flags=1 reason=timeout tries=4", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := New(tc.opts)
			a, _ := m.Add(tc.a)
			b, _ := m.Add(tc.b)
			require.Equal(t, tc.same, a.ID == b.ID, "%q / %q", a.Text, b.Text)
		})
	}
}

// TestMinerFoldsManyWords: a word parameter with many values ends in one
// live template, and two with few values stay apart. (Among the leading
// tokens, which route in the tree, a word stays a constant, as in Drain:
// there it names the event far more often than not.)
func TestMinerFoldsManyWords(t *testing.T) {
	m := New(Options{})
	names := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"}
	for i := range 400 {
		m.Add(fmt.Sprintf("login of user %s from 10.0.%d.1", names[i%len(names)]+strings.Repeat("x", i/len(names)), i%250))
	}
	m.Add("state changed to RUNNING")
	m.Add("state changed to STOPPED")
	live := map[string]int64{}
	for _, tp := range m.Templates() {
		if tp.FoldedInto == 0 {
			live[tp.Text] = tp.Count
		}
	}
	require.Equal(t, map[string]int64{
		"login of user <*> from <*>": 400,
		"state changed to RUNNING":   1,
		"state changed to STOPPED":   1,
	}, live)
}

func TestMergeToken(t *testing.T) {
	for _, tc := range [][3]string{
		{"blk_12", "blk_345", "blk_<*>"},
		{"index:-<*>", "index:<*>", "index:<*>"},
		{"state:<*>,", "state:-<*>,", "state:<*>,"},
		{"ab1c", "a1bc", "a<*>b<*>c"},
		{"x1", "x", "x<*>"},
		{"alt0", "ee0", "<*>"},
		{"12", "34", "<*>"},
		{"(", "x", "<*>"},
	} {
		require.Equal(t, tc[2], mergeToken(tc[0], tc[1]), "%q %q", tc[0], tc[1])
	}
	// A template never becomes all parameters by joining: two one-token
	// messages that merely both have digits stay apart.
	m := New(Options{})
	a, _ := m.Add("isBluetoothA2dpOn...")
	b, _ := m.Add("checkpoint2 reached")
	c, _ := m.Add("mode3")
	require.NotEqual(t, a.ID, c.ID)
	require.NotEqual(t, a.ID, b.ID)
}

func TestTokenize(t *testing.T) {
	for in, want := range map[string][]string{
		"session opened by (uid=<*>)":       {"session", "opened", "by", "(", "uid", "=", "<*>", ")"},
		"by LOGIN(uid=<*>)":                 {"by", "LOGIN", "(", "uid", "=", "<*>", ")"},
		"from <*> () at":                    {"from", "<*>", "(", "", ")", "at"},
		"  logname= uid=<*>\ttty=:0 done  ": {"logname", "=", "uid", "=", "<*>", "tty", "=", ":0", "done"},
		"took <*> ms, lifetime <<*> sec":    {"took", "<*> ms,", "lifetime", "<<*> sec"},
		"ms <*>  ms B":                      {"ms", "<*>", "ms", "B"},
		"":                                  nil,
	} {
		got, _ := tokenize(in)
		require.Equal(t, want, got, "%q", in)
	}
	// A template's text keeps the message's spacing.
	m := New(Options{})
	tp, _ := m.Add("authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=10.0.0.1  user=root")
	require.Equal(t, "authentication failure; logname= uid=<*> euid=<*> tty=NODEVssh ruser= rhost=<*> user=root", tp.Text)
	tp, _ = m.Add("connection from 10.0.0.1 () at noon")
	require.Equal(t, "connection from <*> () at noon", tp.Text)
}

func TestMinerMasks(t *testing.T) {
	for in, want := range map[string]string{
		"blk_-6952295868487656571 served":                   "blk_-<*> served",
		"request 3f2a9c1e-0b7d-4c2e-9f1a-2b3c4d5e6f70 done": "request <*> done",
		"pc 0x7ffd1a2b in worker":                           "pc <*> in worker",
		"took 12.5 ms":                                      "took <*> ms",
		"0000000f@2016/9/28:21:43:30.000 CSI perf trace:":   "<*>@<*>/<*>/<*>:<*>:<*>:<*> CSI perf trace:",
		"session deadbeef12 opened":                         "session <*> opened",
		"plain words stay":                                  "plain words stay",
	} {
		require.Equal(t, want, Apply(DefaultMasks, in), in)
	}
}

func TestMinerBounds(t *testing.T) {
	m := New(Options{MaxChildren: 2, MaxTemplates: 3})
	for i := range 10 {
		m.Add(fmt.Sprintf("word%c alpha beta gamma delta", 'a'+i))
	}
	require.LessOrEqual(t, len(m.Templates()), 3, "at the bound, messages join their best match")
	// Leading tokens beyond MaxChildren share a wildcard child.
	root := m.root[5]
	require.LessOrEqual(t, len(root.children), 3)
}

func TestMinerConcurrent(t *testing.T) {
	m := New(Options{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				m.Add(fmt.Sprintf("worker %d finished job %d in %d ms", w, i, i*3))
			}
		}()
	}
	wg.Wait()
	total := int64(0)
	for _, tp := range m.Templates() {
		total += tp.Count
	}
	require.Equal(t, int64(800), total)
}

// TestScanMatchesTheMasks: the scanner that the default masks run as
// masks what the regular expressions of DefaultMasks mask.
func TestScanMatchesTheMasks(t *testing.T) {
	for _, in := range []string{
		"blk_-6952295868487656571 served", "request 3f2a9c1e-0b7d-4c2e-9f1a-2b3c4d5e6f70 done",
		"pc 0x7ffd1a2b in worker", "took 12.5 ms", "0000000f@2016/9/28:21:43:30.000 CSI perf trace:",
		"session deadbeef12 opened", "plain words stay", "from 10.0.0.1:22 to 192.168.1.300",
		"uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4", "v1.2.3 and 1.2.3.4.5", "a12 B12 abc123 _12 x_1",
		"", "12", "1.", ".5", "0x", "0xZZ", "10.0.0.1:", "DEADBEEF-1234-5678-9abc-def012345678x",
	} {
		require.Equal(t, Apply(DefaultMasks, in), maskDefault(in), "%q", in)
	}
}

// TestLeafBound floods one leaf with messages that join nothing (three
// distinct words each): the leaf stops at MaxLeafTemplates, and later
// messages join their best match there instead of each one scanning a
// longer list than the last.
func TestLeafBound(t *testing.T) {
	m := New(Options{MaxLeafTemplates: 50})
	w := func(i int) string {
		var b []byte
		for {
			b = append(b, byte('a'+i%26))
			if i /= 26; i == 0 {
				return string(b)
			}
		}
	}
	for i := range 2000 {
		m.Add(fmt.Sprintf("scheduler reported %s state %s for shard %s", w(i), w(i+5000), w(i+9000)))
	}
	require.EqualValues(t, 50, m.Len())
	tmpl, isNew := m.Add("scheduler reported zzzq state zzzr for shard zzzs")
	require.False(t, isNew, "a full leaf makes no template")
	require.Equal(t, "scheduler reported <*> state <*> for shard <*>", tmpl.Text, "the best match took the message")
}
