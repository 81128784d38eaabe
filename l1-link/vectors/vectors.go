// Package vectors holds the wire test vectors once for every module (JSON
// files beside this one, see README.md): produced by running the
// MicroPython reference implementation, or, for tree addresses, computed
// from the design text. Tests read them with Read; no production code
// imports this package.
package vectors

import (
	"embed"
	"fmt"
)

//go:embed *.json
var files embed.FS

// Read returns the contents of the vector file name ("packets.json").
func Read(name string) ([]byte, error) {
	b, err := files.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("vectors: %w", err)
	}
	return b, nil
}
