package cli

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

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

func packetCmd() *cobra.Command {
	c := &cobra.Command{Use: "packet", Short: "Encode and decode single packets"}
	c.AddCommand(&cobra.Command{
		Use:   "decode HEX",
		Short: "Decode a packet and print it as one JSON object",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := parseHex("packet", args[0])
			if err != nil {
				return err
			}
			var p packet.Packet
			if err := p.UnmarshalBinary(b); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), viewPacket(&p))
		},
	}, &cobra.Command{
		Use:   "encode JSON",
		Short: "Encode a packet given in the decode form; a missing checksum is computed",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, haveCK, err := decodePacketJSON([]byte(args[0]))
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
				return err
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
		Use:   "encode --app-id HEX --blob HEX",
		Short: "Serialize a Package",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			app, blob, err := appAndBlob(appHex, blobHex)
			if err != nil {
				return err
			}
			p := packet.NewPackage(app, blob)
			_, err = fmt.Fprintln(cmd.OutOrStdout(), hex.EncodeToString(p.AppendTo(nil)))
			return err
		},
	}
	enc.Flags().StringVar(&appHex, "app-id", "", "application id, 32 hex digits")
	enc.Flags().StringVar(&blobHex, "blob", "", "blob, hex")
	_ = enc.MarkFlagRequired("app-id")
	_ = enc.MarkFlagRequired("blob")
	dec := &cobra.Command{
		Use:   "decode HEX",
		Short: `Split a Package and check its hash: {"app_id","hash","blob","hash_ok"}`,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := parseHex("package", args[0])
			if err != nil {
				return err
			}
			var p packet.Package
			if err := p.UnmarshalBinary(b); err != nil {
				return err
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

func appAndBlob(appHex, blobHex string) (packet.AppID, []byte, error) {
	var app packet.AppID
	a, err := parseFixedHex("app-id", appHex, packet.AppIDSize)
	if err != nil {
		return app, nil, err
	}
	copy(app[:], a)
	blob, err := parseHex("blob", blobHex)
	return app, blob, err
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
		Use:   "split --schema N --app-id HEX --blob HEX --seq-id N [--ttl N --tree-state N --to HEX --from HEX]",
		Short: "Print the packets (hex, one a line, in order, checksums filled) that carry a Package",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := packet.Lookup(schema)
			if err != nil {
				return err
			}
			app, b, err := appAndBlob(appHex, blob)
			if err != nil {
				return err
			}
			tmpl := packet.Packet{SeqID: seqID}
			if mode {
				tmpl.Flags |= packet.FlagMode
			}
			routed := []string{"ttl", "tree-state", "to", "from"}
			if !s.Routed() {
				for _, f := range routed {
					if cmd.Flags().Changed(f) {
						return fmt.Errorf("--%s: schema %d is not routed", f, s.ID)
					}
				}
			} else {
				tmpl.TTL, tmpl.TreeState = ttl, treeState
				for _, a := range []struct {
					name, val string
					dst       *[16]byte
				}{{"to", to, &tmpl.To}, {"from", from, &tmpl.From}} {
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
			if !s.Sequenced() && cmd.Flags().Changed("seq-id") && seqID != 0 {
				return fmt.Errorf("--seq-id: schema %d is not sequenced", s.ID)
			}
			pkg := packet.NewPackage(app, b).AppendTo(nil)
			pkts, err := sequence.Split(s, pkg, &tmpl)
			if err != nil {
				return err
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
	f.Uint8Var(&schema, "schema", 0, "schema id (0-10, 20-30)")
	f.StringVar(&appHex, "app-id", "", "application id, 32 hex digits")
	f.StringVar(&blob, "blob", "", "blob, hex")
	f.Uint8Var(&seqID, "seq-id", 0, "sequence id (0-255)")
	f.Uint8Var(&ttl, "ttl", 0, "hop limit (routed schemas)")
	f.Uint8Var(&treeState, "tree-state", 0, "tree epoch (routed schemas)")
	f.StringVar(&to, "to", "", "destination tree address, 32 hex digits (routed schemas)")
	f.StringVar(&from, "from", "", "source tree address, 32 hex digits (routed schemas)")
	f.BoolVar(&mode, "mode", false, "set the mode bit (routed schemas: common-prefix metric)")
	for _, r := range []string{"schema", "app-id", "blob", "seq-id"} {
		_ = split.MarkFlagRequired(r)
	}
	c.AddCommand(split)
	return c
}

func appidCmd() *cobra.Command {
	var name, desc, version string
	c := &cobra.Command{
		Use:   "appid --name N --description D --version V",
		Short: "Print an application's app_id: half_sha256(name ‖ description ‖ u32(version))",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
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
