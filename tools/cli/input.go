package cli

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/spf13/cobra"
)

// MaxInput bounds what one "-" argument reads from standard input: the
// largest Package a schema carries (schema 4: 15,532,031 bytes) in hex,
// with room for line breaks. (The kernel refuses a single argument over
// 128 KiB, which is why "-" exists.)
const MaxInput = 40 << 20

// args returns a positional-argument check that names what the command
// takes ("HEX", "COORDS"), instead of cobra's "accepts 1 arg(s)".
func args(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if len(a) == len(names) {
			return nil
		}
		name := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
		if len(names) == 0 {
			return fmt.Errorf("%s takes no arguments, got %q", name, a[0])
		}
		what := strings.Join(names, " ")
		if strings.Contains(cmd.Use, "|-") {
			what += ` (or "-" for standard input)`
		}
		if len(a) < len(names) {
			return fmt.Errorf("%s needs %s; see %q", name, what, cmd.CommandPath()+" --help")
		}
		return fmt.Errorf("%s takes %s, got %s: %q", name, what, plural(len(a), "argument", "arguments"), a[len(names)])
	}
}

// input returns an argument's text, or standard input's when it is "-"
// (at most MaxInput bytes; standard input is read once).
func input(cmd *cobra.Command, what, arg string) (string, error) {
	if arg != "-" {
		return arg, nil
	}
	b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), MaxInput+1))
	if err != nil {
		return "", fmt.Errorf("%s: reading standard input: %v", what, err)
	}
	if len(b) > MaxInput {
		return "", fmt.Errorf("%s: standard input holds more than %d bytes", what, MaxInput)
	}
	return string(b), nil
}

// hexInput reads a hex argument (or "-" for standard input) and decodes it.
func hexInput(cmd *cobra.Command, what, arg string) ([]byte, error) {
	s, err := input(cmd, what, arg)
	if err != nil {
		return nil, err
	}
	return parseHex(what, s)
}

// parseHex decodes hex, tolerating white space anywhere (what xxd -p and
// line-wrapped pastes give), an optional 0x prefix and upper case.
func parseHex(what, s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	b, err := hex.DecodeString(s)
	if err == nil {
		return b, nil
	}
	var bad hex.InvalidByteError
	if errors.As(err, &bad) {
		i := strings.IndexByte(s, byte(bad))
		r := []rune(s[i:])[0]
		return nil, fmt.Errorf("%s: not hex: %q at digit %d", what, r, i+1)
	}
	if errors.Is(err, hex.ErrLength) {
		return nil, fmt.Errorf("%s: not hex: an odd number of digits (%d)", what, len(s))
	}
	return nil, fmt.Errorf("%s: not hex", what)
}

// parseFixedHex decodes hex of exactly n bytes.
func parseFixedHex(what, s string, n int) ([]byte, error) {
	b, err := parseHex(what, s)
	if err != nil {
		return nil, err
	}
	if len(b) != n {
		return nil, fmt.Errorf("%s: %s, want %d (%d hex digits)", what, plural(len(b), "byte", "bytes"), n, 2*n)
	}
	return b, nil
}
