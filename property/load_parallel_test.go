package property

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestLoadDirParallelKeepsFileOrder: files are parsed on several CPUs, and
// the table is what a serial load gives: every file, in name order, each
// error with its own file.
func TestLoadDirParallelKeepsFileOrder(t *testing.T) {
	dir := t.TempDir()
	const n = 500
	for i := range n {
		body := fmt.Sprintf("hostnames: [h%d.example]\norigins: [{url: http://127.0.0.1:9}]\n", i)
		if i%50 == 7 {
			body = "hostnames: [\n" // broken
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("p%04d.yaml", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, err := ListDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := loadFiles(files, nil, nil)
	if len(got) != n {
		t.Fatalf("%d loaded of %d", len(got), n)
	}
	for i, l := range got {
		if l.File != files[i] {
			t.Fatalf("position %d holds %s, want %s", i, l.File, files[i])
		}
		broken := i%50 == 7
		if broken != (len(l.Errors) > 0) || (!broken && l.Property.Hostnames[0] != fmt.Sprintf("h%d.example", i)) {
			t.Fatalf("%s: errors %v, property %+v", l.File, l.Errors, l.Property)
		}
	}
}
