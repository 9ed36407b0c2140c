package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStrayYmlReportedWhenItAppears: the README says a *.yml file is not
// read and the node says so; it said so only at the next reload, so a file
// dropped in beside the others went unmentioned. The watcher reports it
// when it appears.
func TestStrayYmlReportedWhenItAppears(t *testing.T) {
	n := runTestNode(t, "", map[string]string{"a.yaml": "hostnames: [a.example]\norigins: [{url: http://127.0.0.1:9}]\n"})
	if err := os.WriteFile(filepath.Join(n.dir, "props", "shop.yml"), []byte("hostnames: [shop.example]\norigins: [{url: http://127.0.0.1:9}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strayNoted(n.log.String(), "shop.yml") {
		if time.Now().After(deadline) {
			t.Fatalf("shop.yml was not reported\n%s", n.log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func strayNoted(log, file string) bool {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, strayFileMessage) && strings.Contains(l, `"file":"`+file+`"`) {
			return true
		}
	}
	return false
}
