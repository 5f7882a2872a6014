package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	_ "modernc.org/sqlite"
)

func main() {
	path := os.Args[1]
	f, _ := os.Create("/tmp/snap.prof")
	pprof.StartCPUProfile(f)
	defer pprof.StopCPUProfile()
	for _, extra := range []string{"", "&_pragma=mmap_size(1073741824)", "", "&_pragma=mmap_size(1073741824)"} {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)"+extra)
		if err != nil {
			panic(err)
		}
		for _, name := range []string{"read-model", "audit"} {
			t := time.Now()
			tx, _ := db.BeginTx(context.Background(), &sql.TxOptions{ReadOnly: true})
			rows, err := tx.Query(`SELECT part, data FROM snapshot_parts WHERE name = ? ORDER BY part`, name)
			if err != nil {
				panic(err)
			}
			n := 0
			buf := make([]byte, 0, 400<<20)
			for rows.Next() {
				var p int
				var d sql.RawBytes
				rows.Scan(&p, &d)
				buf = append(buf, d...)
				n++
			}
			rows.Close()
			tx.Rollback()
			fmt.Printf("%q %s parts=%d bytes=%d took=%v\n", extra, name, n, len(buf), time.Since(t))
		}
		db.Close()
	}
}
