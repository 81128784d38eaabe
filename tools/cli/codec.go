package cli

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mycelium-mesh/mycelium/l2-seq/packet"
	"github.com/mycelium-mesh/mycelium/l2-seq/sequence"
)

func printJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// codecError says what was wrong with a packet or Package in the words of
// the command: the packet package's errors name their own package
// ("packet: too short: package is 1 bytes"), whatever was decoded.
func codecError(what string, err error) error {
	var le *packet.LengthError
	if errors.As(err, &le) {
		bound := "at most"
		if errors.Is(err, packet.ErrTooShort) {
			bound = "at least"
		}
		s := ""
		if le.Schema >= 0 {
			s = fmt.Sprintf(" in schema %d", le.Schema)
		}
		subject := what
		if le.What != what {
			subject = what + ": " + le.What
		}
		return fmt.Errorf("%s: %v: %s, want %s %d%s", subject, le.Err, plural(le.Got, "byte", "bytes"), bound, le.Want, s)
	}
	msg := strings.TrimPrefix(err.Error(), "packet: ")
	return fmt.Errorf("%s: %s", what, msg)
}

func packetCmd() *cobra.Command {
	c := &cobra.Command{Use: "packet", Short: "Encode and decode single packets"}
	c.AddCommand(&cobra.Command{
		Use:   "decode HEX|-",
		Short: "Decode a packet and print it as one JSON object",
		Long: `Decodes one packet (hex; "-" reads it from standard input) and prints one
JSON object: version, reserved, schema, flags, flag_names, packet_id, seq_id,
seq_size, ttl, checksum, tree_state, to_addr, from_addr, body (the fields the
schema lacks are left out; byte strings and the 8-digit checksum in lowercase
hex) and checksum_ok where the schema has a checksum.`,
		Example: `  mycelium packet decode 0000000007366821dafdaf45e9bc5cfecb1c2a065c2cf24dba5fb0a30e26e83b2ac5b9e29e68656c6c6f
  xxd -p capture.bin | mycelium packet decode -`,
		Args: args("HEX"),
		RunE: func(cmd *cobra.Command, a []string) error {
			b, err := hexInput(cmd, "packet", a[0])
			if err != nil {
				return err
			}
			var p packet.Packet
			if err := p.UnmarshalBinary(b); err != nil {
				return codecError("packet", err)
			}
			return printJSON(cmd.OutOrStdout(), viewPacket(&p))
		},
	}, &cobra.Command{
		Use:   "encode JSON|-",
		Short: "Encode a packet given as the JSON that decode prints; a missing checksum is computed",
		Long: `Encodes one packet given as a JSON object ("-" reads it from standard input)
and prints it in hex. The object is the one "mycelium packet decode" prints:

  {"version":0,"reserved":0,"schema":1,"flags":0,"packet_id":7,"body":"68656c6c6f"}

  schema       0-10 (ESP-NOW), 20-30 (LoRa): required
  version      0-255, default 0      reserved   0-255, default 0
  flags        0-255, default 0      packet_id  0-255 or 0-65535 (by schema)
  seq_id       0-255                 seq_size   sequenced schemas only
  ttl, tree_state  0-255             to_addr, from_addr  32 hex digits
                                     (routed schemas only)
  checksum     8 hex digits (checksum schemas only; left out: computed)
  body         hex, default empty
  flag_names, checksum_ok  ignored (decode prints them)

A field the schema lacks, or a field not listed here, is an error.`,
		Example: `  mycelium packet encode '{"schema":1,"packet_id":7,"body":"68656c6c6f"}'
  mycelium packet decode 00000100073610a68668656c6c6f | mycelium packet encode -`,
		Args: args("JSON"),
		RunE: func(cmd *cobra.Command, a []string) error {
			in, err := input(cmd, "packet JSON", a[0])
			if err != nil {
				return err
			}
			p, haveCK, err := decodePacketJSON([]byte(in))
			if err != nil {
				return err
			}
			var b []byte
			if haveCK {
				b, err = p.AppendTo(nil)
			} else {
				b, err = p.AppendSealed(nil)
			}
			if err != nil {
				return codecError("packet", err)
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), hex.EncodeToString(b))
			return err
		},
	})
	return c
}

func packageCmd() *cobra.Command {
	c := &cobra.Command{Use: "package", Short: "Build and check Packages (app_id ‖ half_sha256(blob) ‖ blob)"}
	var appHex, blobHex string
	enc := &cobra.Command{
		Use:   "encode --app-id HEX --blob HEX|-",
		Short: "Serialize a Package",
		Long: `Prints the Package app_id ‖ half_sha256(blob) ‖ blob in hex. --blob - reads
the blob's hex from standard input (up to the largest Package a schema
carries, 15,532,031 bytes).`,
		Example: `  mycelium package encode --app-id 366821dafdaf45e9bc5cfecb1c2a065c --blob 68656c6c6f
  xxd -p photo.jpg | mycelium package encode --app-id 366821dafdaf45e9bc5cfecb1c2a065c --blob -`,
		Args: args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			app, blob, err := appAndBlob(cmd, appHex, blobHex)
			if err != nil {
				return err
			}
			p := packet.NewPackage(app, blob)
			_, err = fmt.Fprintln(cmd.OutOrStdout(), hex.EncodeToString(p.AppendTo(nil)))
			return err
		},
	}
	enc.Flags().StringVar(&appHex, "app-id", "", "application id, 32 hex digits")
	enc.Flags().StringVar(&blobHex, "blob", "", `blob, hex ("-": standard input)`)
	_ = enc.MarkFlagRequired("app-id")
	_ = enc.MarkFlagRequired("blob")
	dec := &cobra.Command{
		Use:     "decode HEX|-",
		Short:   `Split a Package and check its hash: {"app_id","hash","blob","hash_ok"}`,
		Example: `  mycelium package decode 366821dafdaf45e9bc5cfecb1c2a065c2cf24dba5fb0a30e26e83b2ac5b9e29e68656c6c6f`,
		Args:    args("HEX"),
		RunE: func(cmd *cobra.Command, a []string) error {
			b, err := hexInput(cmd, "package", a[0])
			if err != nil {
				return err
			}
			var p packet.Package
			if err := p.UnmarshalBinary(b); err != nil {
				return codecError("package", err)
			}
			return printJSON(cmd.OutOrStdout(), struct {
				AppID  string `json:"app_id"`
				Hash   string `json:"hash"`
				Blob   string `json:"blob"`
				HashOK bool   `json:"hash_ok"`
			}{hex.EncodeToString(p.AppID[:]), hex.EncodeToString(p.Hash[:]), hex.EncodeToString(p.Blob), p.Verify() == nil})
		},
	}
	c.AddCommand(enc, dec)
	return c
}

func appAndBlob(cmd *cobra.Command, appHex, blobHex string) (packet.AppID, []byte, error) {
	var app packet.AppID
	a, err := parseFixedHex("--app-id", appHex, packet.AppIDSize)
	if err != nil {
		return app, nil, err
	}
	copy(app[:], a)
	blob, err := hexInput(cmd, "--blob", blobHex)
	return app, blob, err
}

// schemaTable lists the schemas for sequence split's help: which are
// sequenced, which routed, and the largest Package each carries.
func schemaTable() string {
	var b strings.Builder
	b.WriteString("  schema  link    sequenced  routed  checksum  largest Package\n")
	yes := func(v bool) string {
		if v {
			return "yes"
		}
		return "-"
	}
	for _, s := range packet.Schemas() {
		fmt.Fprintf(&b, "  %6d  %-6s  %-9s  %-6s  %-8s  %s bytes\n", s.ID, s.Family, yes(s.Sequenced()), yes(s.Routed()), yes(s.HasChecksum()), num(float64(s.MaxPackage())))
	}
	return b.String()
}

func sequenceCmd() *cobra.Command {
	c := &cobra.Command{Use: "sequence", Short: "Cut Packages into the packets of a schema"}
	var (
		schema         uint8
		appHex, blob   string
		seqID          uint8
		ttl, treeState uint8
		to, from       string
		mode           bool
	)
	split := &cobra.Command{
		Use:   "split --schema N --app-id HEX --blob HEX|- [--seq-id N] [--ttl N --tree-state N --to HEX --from HEX --mode]",
		Short: "Print the packets (hex, one a line, in order, checksums filled) that carry a Package",
		Long: `Builds the Package app_id ‖ half_sha256(blob) ‖ blob and prints the packets of
--schema that carry it, in hex, one a line, in order, checksums filled.
--blob - reads the blob's hex from standard input.

A sequenced schema needs --seq-id; an unsequenced one carries the Package in
one packet and takes no --seq-id. Only routed schemas take --ttl,
--tree-state, --to, --from and --mode (each defaults to 0 there).

` + schemaTable(),
		Example: `  mycelium sequence split --schema 2 --app-id 366821dafdaf45e9bc5cfecb1c2a065c --blob 68656c6c6f --seq-id 1
  mycelium sequence split --schema 0 --app-id 366821dafdaf45e9bc5cfecb1c2a065c --blob 68656c6c6f
  mycelium sequence split --schema 7 --app-id 366821dafdaf45e9bc5cfecb1c2a065c --blob - --seq-id 9 \
      --ttl 8 --to 31000000000000000000000000000000 --from 32000000000000000000000000000000 < blob.hex`,
		Args: args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := packet.Lookup(schema)
			if err != nil {
				return fmt.Errorf("--schema %d: no such schema (0-10, 20-30, 40-50)", schema)
			}
			if err := onlyWith(cmd, s.Routed(), fmt.Sprintf("to routed schemas (5-10, 25-30), not schema %d", s.ID), "ttl", "tree-state", "to", "from", "mode"); err != nil {
				return err
			}
			if s.Sequenced() && !cmd.Flags().Changed("seq-id") {
				return fmt.Errorf("--seq-id is required: schema %d is sequenced", s.ID)
			}
			if err := onlyWith(cmd, s.Sequenced(), fmt.Sprintf("to sequenced schemas, not schema %d", s.ID), "seq-id"); err != nil {
				return err
			}
			tmpl := packet.Packet{SeqID: seqID}
			if mode {
				tmpl.Flags |= packet.FlagMode
			}
			if s.Routed() {
				tmpl.TTL, tmpl.TreeState = ttl, treeState
				for _, a := range []struct {
					name, val string
					dst       *[16]byte
				}{{"--to", to, &tmpl.To}, {"--from", from, &tmpl.From}} {
					if a.val == "" {
						continue
					}
					v, err := parseFixedHex(a.name, a.val, 16)
					if err != nil {
						return err
					}
					copy(a.dst[:], v)
				}
			}
			app, b, err := appAndBlob(cmd, appHex, blob)
			if err != nil {
				return err
			}
			pkg := packet.NewPackage(app, b).AppendTo(nil)
			pkts, err := sequence.Split(s, pkg, &tmpl)
			if err != nil {
				return codecError("package", err)
			}
			w := cmd.OutOrStdout()
			for _, p := range pkts {
				if _, err := fmt.Fprintln(w, hex.EncodeToString(p)); err != nil {
					return err
				}
			}
			return nil
		},
	}
	f := split.Flags()
	f.Uint8Var(&schema, "schema", 0, "schema id (0-10 ESP-NOW, 20-30 LoRa; see the table above)")
	f.StringVar(&appHex, "app-id", "", "application id, 32 hex digits")
	f.StringVar(&blob, "blob", "", `blob, hex ("-": standard input)`)
	f.Uint8Var(&seqID, "seq-id", 0, "sequence id, 0-255 (sequenced schemas: required)")
	f.Uint8Var(&ttl, "ttl", 0, "hop limit, 0-255 (routed schemas)")
	f.Uint8Var(&treeState, "tree-state", 0, "tree epoch, 0-255 (routed schemas)")
	f.StringVar(&to, "to", "", "destination tree address, 32 hex digits (routed schemas; default all zero)")
	f.StringVar(&from, "from", "", "source tree address, 32 hex digits (routed schemas; default all zero)")
	f.BoolVar(&mode, "mode", false, "set the mode bit: the common-prefix metric (routed schemas)")
	for _, r := range []string{"schema", "app-id", "blob"} {
		_ = split.MarkFlagRequired(r)
	}
	c.AddCommand(split)
	return c
}

func appidCmd() *cobra.Command {
	var name, desc, version string
	c := &cobra.Command{
		Use:     "appid --name N --description D --version V",
		Short:   "Print an application's app_id: half_sha256(name ‖ description ‖ u32(version))",
		Example: `  mycelium appid --name Beacon --description "Dev Beacon App" --version 0`,
		Args:    args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := strconv.ParseUint(version, 10, 32)
			if err != nil {
				return fmt.Errorf("--version: %q is not an integer in 0..4294967295", version)
			}
			id := packet.NewAppID(name, desc, uint32(v))
			_, err = fmt.Fprintln(cmd.OutOrStdout(), hex.EncodeToString(id[:]))
			return err
		},
	}
	c.Flags().StringVar(&name, "name", "", "application name")
	c.Flags().StringVar(&desc, "description", "", "application description")
	c.Flags().StringVar(&version, "version", "", "application version, 0-4294967295")
	for _, r := range []string{"name", "description", "version"} {
		_ = c.MarkFlagRequired(r)
	}
	return c
}
