package daemon

import (
	"bytes"
	"net/http"
)

// recorder is the ResponseWriter of an in-process control API call: the
// dashboard and the admin REPL's builtins read the node through the API's
// own handlers, so they see exactly what the CLI sees.
type recorder struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.h }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(status int)      { r.status = status }
