package logtmpl

import (
	"fmt"
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

	// A word that differs becomes a parameter once the rest agrees.
	c, _ := m.Add("Accepted password for alice from 10.1.1.1 port 51000 ssh2")
	d, isNew := m.Add("Accepted password for bob from 10.1.1.2 port 51001 ssh2")
	require.False(t, isNew)
	require.Equal(t, c.ID, d.ID)
	require.Equal(t, "Accepted password for <*> from <*> port <*> ssh2", d.Text)

	// Different messages stay apart: other length, other leading tokens.
	e, isNew := m.Add("Invalid user admin from 10.1.1.3")
	require.True(t, isNew)
	require.NotEqual(t, c.ID, e.ID)
	require.Len(t, m.Templates(), 3)
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
