package audit_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reflex-ops/reflex/internal/audit"
)

func TestAppendVerify(t *testing.T) {
	backends(t, func(t *testing.T, b *backend) {
		l := newLog(t, b.store, testKey)
		ctx := t.Context()
		rep, err := l.Verify(ctx)
		require.NoError(t, err)
		require.True(t, rep.OK())
		require.Equal(t, "audit log verified: empty", rep.String())
		h, err := l.Head(ctx)
		require.NoError(t, err)
		require.Equal(t, audit.Head{Hash: audit.Genesis}, h)

		r, err := l.Append(ctx, audit.Entry{Actor: "key-ops", Action: audit.ActionApproval, Subject: "approval:3",
			Parameters: map[string]any{"comment": "go", "approval_token": "s3cr3t", "headers": map[string]any{"Authorization": "Bearer x"}}})
		require.NoError(t, err)
		require.Equal(t, int64(1), r.Seq)
		require.Equal(t, audit.Genesis, r.PrevHash)
		require.Equal(t, testKey.ID(), r.KeyID)
		require.Equal(t, `{"approval_token":"[redacted]","comment":"go","headers":{"Authorization":"[redacted]"}}`, string(r.Parameters))
		recs := append([]audit.Record{r}, fill(t, l, 9)...)
		for i := 1; i < len(recs); i++ {
			require.Equal(t, recs[i-1].Hash, recs[i].PrevHash)
			require.Equal(t, int64(i+1), recs[i].Seq)
		}

		// What is stored is what Append returned, and no secret reached the database.
		stored, err := b.store.AuditRecords(ctx, 0, 100)
		require.NoError(t, err)
		require.Equal(t, recs, stored)
		require.NotContains(t, string(stored[0].Parameters), "s3cr3t")

		rep, err = l.Verify(ctx)
		require.NoError(t, err)
		require.True(t, rep.OK(), rep.String())
		require.Equal(t, 10, rep.Records)
		h, err = l.Head(ctx)
		require.NoError(t, err)
		require.Equal(t, audit.Head{Seq: 10, Hash: recs[9].Hash}, h)
		require.Equal(t, h, rep.Head)
		require.Equal(t, "audit log verified: 10 records, head "+h.String(), rep.String())

		// The same check with a noted head, and from a new Log (a restart).
		rep, err = audit.Verify(ctx, b.store, testKey, h, audit.Head{Seq: 3, Hash: recs[2].Hash})
		require.NoError(t, err)
		require.True(t, rep.OK(), rep.String())
		l2 := newLog(t, b.store, testKey)
		r11, err := l2.Append(ctx, audit.Entry{Actor: "system", Action: audit.ActionResume, Subject: "automation"})
		require.NoError(t, err)
		require.Equal(t, int64(11), r11.Seq)
		require.Equal(t, recs[9].Hash, r11.PrevHash)
		require.Equal(t, "{}", string(r11.Parameters))
	})
}

// TestTamper changes the table with SQL, as someone with rights on the
// database would, and checks that Verify names the first bad record and
// what was done to it.
func TestTamper(t *testing.T) {
	type tc struct {
		name  string
		stmts func(b *backend, recs []audit.Record) []string
		key   audit.Key // verify with this key (default testKey)
		seq   int64
		kind  audit.Kind
		// verified is how many records verify before it (default seq-1).
		verified int
	}
	// shift moves the records from seq on by d, through numbers out of
	// the way (the primary key is checked row by row).
	shift := func(from, d int64) []string {
		return []string{
			fmt.Sprintf("UPDATE {t} SET seq = seq + 1000000 WHERE seq >= %d", from),
			fmt.Sprintf("UPDATE {t} SET seq = seq - 1000000 + %d WHERE seq > 1000000", d),
		}
	}
	forged := func(seq int64, prev string) string {
		sum := sha256.Sum256([]byte("forged"))
		return fmt.Sprintf(`INSERT INTO {t} (seq, recorded_at, actor, action, subject, parameters, key_id, prev_hash, hash)
			SELECT %d, recorded_at, 'system', 'approval', 'approval:9', '{"forged":true}', key_id, '%s', '%s' FROM {t} WHERE seq = 1`,
			seq, prev, hex.EncodeToString(sum[:]))
	}
	cases := []tc{
		{name: "a parameter changed", seq: 5, kind: audit.KindChanged, stmts: func(*backend, []audit.Record) []string {
			return []string{`UPDATE {t} SET parameters = '{"host":"web-01","i":99}' WHERE seq = 5`}
		}},
		{name: "the actor changed", seq: 3, kind: audit.KindChanged, stmts: func(*backend, []audit.Record) []string {
			return []string{`UPDATE {t} SET actor = 'key-ops' WHERE seq = 3`}
		}},
		{name: "the time changed by a microsecond", seq: 7, kind: audit.KindChanged, stmts: func(b *backend, _ []audit.Record) []string {
			return []string{`UPDATE {t} SET ` + b.micro + ` WHERE seq = 7`}
		}},
		{name: "the newest record changed", seq: 10, kind: audit.KindChanged, stmts: func(*backend, []audit.Record) []string {
			return []string{`UPDATE {t} SET subject = 'execution:8' WHERE seq = 10`}
		}},
		{name: "a parameter changed and the hash recomputed without the key", seq: 4, kind: audit.KindChanged, stmts: func(_ *backend, recs []audit.Record) []string {
			r := recs[3]
			r.Parameters = []byte(`{"host":"web-02","i":3}`)
			sum := sha256.Sum256(r.Canonical())
			return []string{fmt.Sprintf(`UPDATE {t} SET parameters = '%s', hash = '%s' WHERE seq = 4`, r.Parameters, hex.EncodeToString(sum[:]))}
		}},
		{name: "the key id of the first record changed", seq: 1, kind: audit.KindChanged, stmts: func(*backend, []audit.Record) []string {
			return []string{`UPDATE {t} SET key_id = '0000000000000000' WHERE seq = 1`}
		}},
		{name: "a record in the middle deleted", seq: 5, kind: audit.KindRemoved, stmts: func(*backend, []audit.Record) []string {
			return []string{`DELETE FROM {t} WHERE seq = 5`}
		}},
		{name: "the first record deleted", seq: 1, kind: audit.KindRemoved, stmts: func(*backend, []audit.Record) []string {
			return []string{`DELETE FROM {t} WHERE seq = 1`}
		}},
		{name: "records deleted and the later ones renumbered", seq: 4, kind: audit.KindRemoved, stmts: func(*backend, []audit.Record) []string {
			return append([]string{`DELETE FROM {t} WHERE seq IN (4, 5)`}, shift(6, -2)...)
		}},
		{name: "a forged record inserted in the middle", seq: 6, kind: audit.KindInserted, stmts: func(_ *backend, recs []audit.Record) []string {
			return append(shift(6, 1), forged(6, recs[4].Hash))
		}},
		{name: "a forged record inserted under a far number", seq: 50, kind: audit.KindInserted, verified: 10, stmts: func(_ *backend, recs []audit.Record) []string {
			return []string{forged(50, recs[9].Hash)}
		}},
		{name: "a forged record appended", seq: 11, kind: audit.KindChanged, stmts: func(_ *backend, recs []audit.Record) []string {
			return []string{forged(11, recs[9].Hash)}
		}},
		{name: "a record copied to the end", seq: 11, kind: audit.KindInserted, stmts: func(*backend, []audit.Record) []string {
			return []string{`INSERT INTO {t} (seq, recorded_at, actor, action, subject, parameters, key_id, prev_hash, hash)
				SELECT 11, recorded_at, actor, action, subject, parameters, key_id, prev_hash, hash FROM {t} WHERE seq = 3`}
		}},
		{name: "two records swapped", seq: 3, kind: audit.KindReordered, stmts: func(*backend, []audit.Record) []string {
			return []string{
				`UPDATE {t} SET seq = 1000003 WHERE seq = 3`,
				`UPDATE {t} SET seq = 3 WHERE seq = 4`,
				`UPDATE {t} SET seq = 4 WHERE seq = 1000003`,
			}
		}},
		{name: "verified with another key", seq: 1, kind: audit.KindWrongKey, key: otherKey},
	}
	backends(t, func(t *testing.T, b *backend) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				b := b
				if b.name == "sqlite" { // a fresh database per case
					b = openSQLite(t, t.TempDir()+"/reflex.db")
				} else {
					b.tamper(t, `DELETE FROM {t}`)
				}
				l := newLog(t, b.store, testKey)
				recs := fill(t, l, 10)
				if c.stmts != nil {
					b.tamper(t, c.stmts(b, recs)...)
				}
				k := testKey
				if c.key.Valid() {
					k = c.key
				}
				rep, err := audit.Verify(t.Context(), b.store, k)
				require.NoError(t, err)
				require.NotNil(t, rep.FirstBad, "tampering went unnoticed")
				require.Equal(t, c.seq, rep.FirstBad.Seq, rep.String())
				require.Equal(t, c.kind, rep.FirstBad.Kind, rep.String())
				if c.verified == 0 {
					c.verified = int(c.seq - 1)
				}
				require.Equal(t, c.verified, rep.Records, "the records before it verified")
				require.Contains(t, rep.String(), fmt.Sprintf("record %d ", c.seq))
				t.Log(rep.String())
			})
		}
	})
}

// TestTruncation: removing the newest records leaves a log that verifies
// by itself; a noted head shows it.
func TestTruncation(t *testing.T) {
	backends(t, func(t *testing.T, b *backend) {
		ctx := t.Context()
		l := newLog(t, b.store, testKey)
		fill(t, l, 10)
		noted, err := l.Head(ctx)
		require.NoError(t, err)
		b.tamper(t, `DELETE FROM {t} WHERE seq > 7`)

		rep, err := l.Verify(ctx)
		require.NoError(t, err)
		require.True(t, rep.OK(), "without a noted head the log cannot tell")
		rep, err = l.Verify(ctx, noted)
		require.NoError(t, err)
		require.False(t, rep.OK())
		require.Equal(t, audit.Problem{Seq: 8, Kind: audit.KindTruncated, Detail: rep.FirstBad.Detail}, *rep.FirstBad)
		require.Contains(t, rep.String(), "records 8 to 10 were removed")
		require.Contains(t, rep.String(), "record 8 truncated")

		// New records appended where the removed ones were: the noted
		// record is not the one now stored under its number.
		fill(t, l, 5)
		rep, err = l.Verify(ctx, noted)
		require.NoError(t, err)
		require.False(t, rep.OK())
		require.Equal(t, int64(10), rep.FirstBad.Seq)
		require.Equal(t, audit.KindTruncated, rep.FirstBad.Kind)
	})
}

func TestAppendAnotherKey(t *testing.T) {
	backends(t, func(t *testing.T, b *backend) {
		fill(t, newLog(t, b.store, testKey), 2)
		other := newLog(t, b.store, otherKey)
		_, err := other.Append(t.Context(), audit.Entry{Actor: "system", Action: audit.ActionPause, Subject: "automation"})
		require.ErrorIs(t, err, audit.ErrKeyMismatch)
		require.Contains(t, err.Error(), testKey.ID())
		rs, err := b.store.AuditRecords(t.Context(), 0, 10)
		require.NoError(t, err)
		require.Len(t, rs, 2, "nothing appended")
	})
}

func TestAppendFailsClosed(t *testing.T) {
	backends(t, func(t *testing.T, b *backend) {
		l := newLog(t, b.store, testKey)
		fill(t, l, 1)
		require.NoError(t, b.store.Close())
		_, err := l.Append(context.Background(), audit.Entry{Actor: "system", Action: audit.ActionDecision, Subject: "decision:1"})
		require.Error(t, err)
		_, err = l.Head(context.Background())
		require.Error(t, err)
		_, err = l.Verify(context.Background())
		require.Error(t, err, "a log that cannot be read is an error, not a verified log")
	})
}
