package sqlite

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkInsertFloor is what this SQLite costs per row with nothing of
// reflex around it: 1,000 rows of about 900 bytes of text per transaction,
// one table, no index, WAL with synchronous=FULL like the store's writer.
// docs/benchmarks.md compares it with BenchmarkWriteBatch.
func BenchmarkInsertFloor(b *testing.B) {
	for _, cols := range []int{1, 8} {
		for _, chunk := range []int{1, 32} {
			b.Run(fmt.Sprintf("cols=%d/rows-per-insert=%d", cols, chunk), func(b *testing.B) {
				db, err := sql.Open("sqlite", filepath.Join(b.TempDir(), "floor.db")+
					"?_pragma=journal_mode(wal)&_pragma=synchronous(full)&_txlock=immediate")
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				db.SetMaxOpenConns(1)
				defs := make([]string, cols)
				for i := range defs {
					defs[i] = fmt.Sprintf("c%d TEXT", i)
				}
				if _, err := db.Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, " + strings.Join(defs, ", ") + ")"); err != nil {
					b.Fatal(err)
				}
				row := "(?" + strings.Repeat(", ?", cols) + ")"
				st, err := db.Prepare("INSERT INTO t VALUES " + row + strings.Repeat(", "+row, chunk-1))
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				val := strings.Repeat("x", 900/cols)
				id := 0
				args := make([]any, 0, chunk*(cols+1))
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					tx, err := db.Begin()
					if err != nil {
						b.Fatal(err)
					}
					s := tx.Stmt(st) //nolint:sqlclosecheck // closed with the transaction
					for r := 0; r < 1000/chunk; r++ {
						args = args[:0]
						for range chunk {
							id++
							args = append(args, id)
							for range cols {
								args = append(args, val)
							}
						}
						if _, err := s.Exec(args...); err != nil {
							b.Fatal(err)
						}
					}
					if err := tx.Commit(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*(1000/chunk)*chunk)/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
}
