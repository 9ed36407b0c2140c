package property

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkReloadOneFile is LoadDir's reload of a directory of 20,000
// property files where one changed: its cost should follow the changed
// file, plus a stat and the table's indexes for each other.
func BenchmarkReloadOneFile(b *testing.B) {
	const n = 20000
	dir := b.TempDir()
	for i := range n {
		body := fmt.Sprintf("hostnames: [h%d.example]\norigins: [{url: http://127.0.0.1:1}]\ntls: {certificate: c%d}\n", i, i)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("p%06d.yaml", i)), []byte(body), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	t, err := LoadDir(dir, nil, Options{})
	if err != nil {
		b.Fatal(err)
	}
	// As if read long after the files were written (see fileStat.same).
	for _, p := range t.Properties() {
		p.stat.readAt += int64(2 * statSafety)
	}
	b.ResetTimer()
	for i := range b.N {
		body := fmt.Sprintf("hostnames: [h7.example]\norigins: [{url: http://127.0.0.1:%d}]\n", 2+i%2)
		if err := os.WriteFile(filepath.Join(dir, "p000007.yaml"), []byte(body), 0o644); err != nil {
			b.Fatal(err)
		}
		if t, err = LoadDir(dir, t, Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/n, "ns/file")
}
