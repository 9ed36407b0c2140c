package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edge-cdn/edge/store"
)

// TestValidateBlamesTheLaterDuplicate: b.yaml serves shop.example and
// a.yaml, added later, claims it too. The node refuses a.yaml (the file
// that serves a hostname keeps it); validate, merging in name order,
// blamed b.yaml, the good file. It asks the running node which file serves
// the hostname, and blames a.yaml, naming b.yaml.
func TestValidateBlamesTheLaterDuplicate(t *testing.T) {
	n := startNode(t, "", map[string]string{"b.yaml": "hostnames: [shop.example]\norigins: [{url: http://127.0.0.1:1}]\n"})
	writeFiles(t, n.props, map[string]string{"a.yaml": "hostnames: [shop.example]\norigins: [{url: http://127.0.0.1:2}]\n"})
	n.cli("cert", "list") // writes cli.yaml: the node's config with its bound admin address
	code, out := validateOut(t, filepath.Join(n.dir, "cli.yaml"))
	want := `a.yaml:1: hostnames[0]: hostname "shop.example" is already used by ` + filepath.Join(n.props, "b.yaml") + `, which serves it`
	if code != 1 || !strings.Contains(out, want) || strings.Contains(out, "b.yaml:1:") {
		t.Errorf("validate: %d\n%s\nwant %s", code, out, want)
	}
}

// TestValidateDuplicateFromStoredVersions: with no node running, validate
// reads which file serves a hostname from the bbolt store's last good
// versions, the ones a node starts from.
func TestValidateDuplicateFromStoredVersions(t *testing.T) {
	dir := t.TempDir()
	b := "hostnames: [shop.example]\norigins: [{url: http://127.0.0.1:1}]\n"
	writeFiles(t, dir, map[string]string{
		"edge.yaml":    baseConfig,
		"props/b.yaml": b,
		"props/a.yaml": "hostnames: [shop.example]\norigins: [{url: http://127.0.0.1:2}]\n",
	})
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenBolt(filepath.Join(dir, "data", "edge.db"))
	if err != nil {
		t.Fatal(err)
	}
	bFile := filepath.Join(dir, "props", "b.yaml")
	if err := st.Update(context.Background(), func(tx store.Tx) error {
		return tx.Put(store.Meta, "property/test-node/"+bFile, []byte(b))
	}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	code, out := validateOut(t, filepath.Join(dir, "edge.yaml"))
	want := `a.yaml:1: hostnames[0]: hostname "shop.example" is already used by ` + bFile + `, which serves it`
	if code != 1 || !strings.Contains(out, want) || strings.Contains(out, "b.yaml:1:") {
		t.Errorf("validate: %d\n%s\nwant %s", code, out, want)
	}
}
