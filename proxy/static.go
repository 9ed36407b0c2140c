package proxy

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
)

// fileSite serves a directory of static files through an os.Root, so that
// no name, symlink or ".." can reach outside the directory: no directory
// listings (a directory answers with its index.html or 404) and no dot
// files. It owns the directory handle until close.
type fileSite struct {
	root    *os.Root
	handler http.Handler
}

func openFileSite(dir string) (*fileSite, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &fileSite{root: root, handler: http.FileServerFS(staticFS{root.FS()})}, nil
}

func (f *fileSite) close() { _ = f.root.Close() }

// staticFS hides dot files and directories without an index.html, and
// answers 404 (not 500) for a name that would escape the root.
type staticFS struct{ fsys fs.FS }

func (s staticFS) Open(name string) (fs.File, error) {
	for part := range strings.SplitSeq(name, "/") {
		if part != "." && strings.HasPrefix(part, ".") {
			return nil, fs.ErrNotExist
		}
	}
	f, err := s.fsys.Open(name)
	if err != nil {
		return nil, notExist(err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, notExist(err)
	}
	if st.IsDir() {
		if _, err := fs.Stat(s.fsys, path.Join(name, "index.html")); err != nil {
			f.Close()
			return nil, fs.ErrNotExist
		}
	}
	return f, nil
}

// notExist keeps permission errors (403) and turns everything else, an
// escape from the root included, into "not found".
func notExist(err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return err
	}
	return fs.ErrNotExist
}
