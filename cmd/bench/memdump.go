package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// memDump is the folder -memdump saves the edge's memory snapshots in;
// "" saves none.
var memDump string

// memDumpGC adds <tag>.gc.heap, a heap profile after a forced collection:
// what is live (it changes what follows: diagnosis only).
var memDumpGC bool

// dumpMemory saves, under memDump, what the edge's admin API says of its
// memory now: the heap profile as of the last collection (no forced one:
// a snapshot under load should not change it), the same with
// runtime.MemStats (debug=1) and the goroutine counts (debug=1), named
// <tag>.heap, <tag>.memstats.txt and <tag>.goroutines.txt, and the
// process's /proc status lines (VmRSS, VmHWM) in <tag>.status.txt. Run
// the edge with -edge-env GODEBUG=memprofilerate=4096 for profiles finer
// than one sample per 512 KiB.
func dumpMemory(dir string, adminPort, pid int, tag string) {
	if memDump == "" {
		return
	}
	tok, err := os.ReadFile(filepath.Join(dir, "data", "admin.token"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "memdump:", err)
		return
	}
	get := func(path, file string) {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d%s", adminPort, path), nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		c := &http.Client{Timeout: 10 * time.Second}
		resp, err := c.Do(req)
		if err != nil {
			fmt.Fprintln(os.Stderr, "memdump:", err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(filepath.Join(memDump, file))
		if err != nil {
			fmt.Fprintln(os.Stderr, "memdump:", err)
			return
		}
		defer f.Close()
		io.Copy(f, resp.Body)
	}
	os.MkdirAll(memDump, 0o755)
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	var keep []string
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "Vm") || strings.HasPrefix(l, "Rss") || strings.HasPrefix(l, "Threads") {
			keep = append(keep, l)
		}
	}
	os.WriteFile(filepath.Join(memDump, tag+".status.txt"), []byte(strings.Join(keep, "\n")+"\n"), 0o644)
	get("/debug/pprof/heap", tag+".heap")
	if memDumpGC {
		get("/debug/pprof/heap?gc=1", tag+".gc.heap")
	}
	get("/debug/pprof/heap?debug=1", tag+".memstats.txt")
	get("/debug/pprof/goroutine?debug=1", tag+".goroutines.txt")
}
