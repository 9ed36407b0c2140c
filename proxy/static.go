package proxy

import (
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
)

// newFileHandler serves a directory of static files: no directory listings
// (a directory answers with its index.html or 404) and no dot files.
func newFileHandler(dir string) http.Handler {
	return http.FileServer(staticFS{http.Dir(dir)})
}

type staticFS struct{ fs http.FileSystem }

func (s staticFS) Open(name string) (http.File, error) {
	for _, part := range strings.Split(name, "/") {
		if strings.HasPrefix(part, ".") {
			return nil, fs.ErrNotExist
		}
	}
	f, err := s.fs.Open(name)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.IsDir() {
		idx, err := s.fs.Open(path.Join(name, "index.html"))
		if err != nil {
			f.Close()
			return nil, os.ErrNotExist
		}
		idx.Close()
	}
	return f, nil
}
