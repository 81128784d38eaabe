package cli

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
	"github.com/mycelium-mesh/mycelium/l2-seq/revoke"
	"github.com/mycelium-mesh/mycelium/tools/daemon"
)

func init() { register(keysCmd) }

// keyFile is where the key commands find the identity: --identity, or the
// one a configuration names.
type keyFile struct{ identity, config string }

func (k *keyFile) flags(c *cobra.Command) {
	c.Flags().StringVar(&k.identity, "identity", "", "the identity file (PKCS #8 PEM, mode 0600)")
	c.Flags().StringVar(&k.config, "config", "", "a node's configuration: its [node] identity")
}

func (k *keyFile) path() (string, error) {
	switch {
	case k.identity != "" && k.config != "":
		return "", errors.New("give --identity or --config, not both")
	case k.identity != "":
		return k.identity, nil
	case k.config != "":
		cfg, err := daemon.Load(k.config)
		if err != nil {
			return "", err
		}
		return cfg.Resolve(cfg.Node.Identity), nil
	}
	return "", errors.New("--identity FILE or --config FILE is required")
}

// load reads the identity (refusing a file that is not ours or too open).
func (k *keyFile) load() (string, identity.Identity, error) {
	path, err := k.path()
	if err != nil {
		return "", identity.Identity{}, err
	}
	id, err := identity.Load(path)
	return path, id, err
}

// keyInfo is what `keys show` prints.
type keyInfo struct {
	File    string `json:"file"`
	NodeID  string `json:"node_id"`
	Ed25519 string `json:"ed25519_public"`
	X25519  string `json:"x25519_public"`
}

func keysCmd() *cobra.Command {
	c := &cobra.Command{Use: "keys", Short: "A node's keys (show, export, rotate); operator keys and revocations"}
	c.AddCommand(keysShowCmd(), keysExportCmd(), keysRotateCmd(), keysOperatorCmd(), keysRevocationsCmd())
	return c
}

func keysShowCmd() *cobra.Command {
	var k keyFile
	var asJSON bool
	c := &cobra.Command{
		Use:   "show --identity FILE | --config FILE",
		Short: "Print the node_id and the public keys",
		Long: `Prints the node_id (the Ed25519 public key, which signs tree positions,
name records, neighbour proofs and goodbyes) and the X25519 public key
derived from it (the static key of end-to-end sessions). The file must be
ours and mode 0600; it is never written.`,
		Example: `  mycelium keys show --config /etc/mycelium/mycelium.toml
  mycelium keys show --identity n1/identity.pem --json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			path, id, err := k.load()
			if err != nil {
				return err
			}
			_, xpub := id.X25519()
			info := keyInfo{File: path, NodeID: id.ID().String(), Ed25519: hex.EncodeToString(id.Public()), X25519: hex.EncodeToString(xpub)}
			if asJSON {
				return json.NewEncoder(c.OutOrStdout()).Encode(info)
			}
			fmt.Fprintf(c.OutOrStdout(), "node_id         %s\ned25519 public  %s\nx25519 public   %s\n", info.NodeID, info.Ed25519, info.X25519)
			return nil
		},
	}
	k.flags(c)
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func keysExportCmd() *cobra.Command {
	var k keyFile
	var out string
	c := &cobra.Command{
		Use:   "export --identity FILE | --config FILE [--out FILE]",
		Short: "Write the public identity (PEM, no secret) for others to trust",
		Long: `Writes the node's public identity — its Ed25519 public key as a PKIX
PEM block with a Node-Id header — to standard output or --out (created,
never overwritten). It holds nothing secret.`,
		Example: `  mycelium keys export --config n1/mycelium.toml --out n1.pub`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			_, id, err := k.load()
			if err != nil {
				return err
			}
			return writeNew(c, out, identity.PublicPEM(id.ID()))
		},
	}
	k.flags(c)
	c.Flags().StringVar(&out, "out", "", "write to FILE instead of standard output")
	return c
}

func keysRotateCmd() *cobra.Command {
	var k keyFile
	c := &cobra.Command{
		Use:   "rotate --identity FILE | --config FILE",
		Short: "Replace the node's key with a new one (a new node_id)",
		Long: `Generates a new identity and puts it in place of the old one atomically:
the old key is kept beside it as FILE.prev-UNIXTIME (mode 0600), the new
one is written to a temporary file, synced and renamed over FILE. Prints
the new node_id. The node is a new node to the mesh from its next start:
restart it, and update whoever named the old node_id.`,
		Example: `  mycelium keys rotate --config /etc/mycelium/mycelium.toml && systemctl restart mycelium`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			path, err := k.path()
			if err != nil {
				return err
			}
			id, prev, err := identity.Rotate(path, time.Now().Unix())
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "%s\n", id.ID())
			fmt.Fprintf(c.ErrOrStderr(), "rotated %s; the old key is in %s\n", path, prev)
			return nil
		},
	}
	k.flags(c)
	return c
}

func keysOperatorCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "operator",
		Short: "An operator's key, kept offline: make one, sign revocations and proxy certificates with it",
		Long: `An operator key is an Ed25519 key the operator keeps off the mesh (on a
laptop, a token). Nodes list its public half in [trust] operators and
honour the revocations it signs: a revoked node_id is refused as a proven
neighbour, as a record's signer and as an end-to-end peer. It also
certifies the proxy of a keyless board (certify-proxy), and revokes such
a certificate (revoke-proxy).`,
	}
	c.AddCommand(keysOperatorNewCmd(), keysOperatorRevokeCmd(), keysOperatorCertifyProxyCmd(), keysOperatorRevokeProxyCmd())
	return c
}

func keysOperatorCertifyProxyCmd() *cobra.Command {
	var key, out, board string
	var valid time.Duration
	c := &cobra.Command{
		Use:   "certify-proxy --key FILE --board BOARD PROXY [--valid 8760h] [--out FILE]",
		Short: "Certify the node that may register a keyless board's name records",
		Long: `Signs, with the operator key in --key, a certificate that PROXY (a node_id
in hex, or the file keys export wrote for it) may register name records
for the keyless board BOARD (its node_id in hex: a board that cannot sign)
for --valid from now, and writes it as PEM to standard output or --out
(created, never overwritten). It holds nothing secret. List the file in
the proxy's [trust] proxy_certificates: the records it registers for the
board carry it. Nodes that list the operator rank a certified record
above any other proxy's for the board, and with [trust]
certified_proxies take none without one.`,
		Example: `  mycelium keys operator certify-proxy --key ~/mesh-operator.pem --board b0a4...0d 5f1c...e2 --out wx-board.cert`,
		Args:    args("PROXY"),
		RunE: func(c *cobra.Command, a []string) error {
			if key == "" || board == "" {
				return errors.New("--key FILE and --board BOARD are required")
			}
			op, err := identity.Load(key)
			if err != nil {
				return err
			}
			b, err := revoke.ParseOperator(board) // (a node_id's form: 64 hex digits)
			if err != nil {
				return fmt.Errorf("--board %q: want the board's node_id, 64 hex digits", board)
			}
			if _, err := identity.X25519Public(b); err == nil {
				return errors.New("--board is an Ed25519 key: a node with a key registers its own records (or delegates to its proxy); certificates are for keyless boards")
			}
			proxy, err := nodeArg(a[0])
			if err != nil {
				return err
			}
			// A revocation (revoke-proxy) reaches only the nodes that
			// hear it: keep a certificate's life to what an operator can
			// be expected to re-issue.
			if valid <= 0 || valid > maxProxyValid {
				return fmt.Errorf("--valid %v: want more than 0, at most %v (ten years)", valid, maxProxyValid)
			}
			cert := revoke.SignProxy(op, b, proxy, time.Now().Add(valid))
			return writeNew(c, out, cert.PEM())
		},
	}
	c.Flags().StringVar(&key, "key", "", "the operator key (keys operator new wrote it)")
	c.Flags().StringVar(&board, "board", "", "the keyless board's node_id (64 hex digits)")
	c.Flags().DurationVar(&valid, "valid", 365*24*time.Hour, "how long the certificate holds")
	c.Flags().StringVar(&out, "out", "", "write to FILE instead of standard output")
	return c
}

// maxProxyValid bounds a proxy certificate's life.
const maxProxyValid = 10 * 365 * 24 * time.Hour

func keysOperatorRevokeProxyCmd() *cobra.Command {
	var key, out, date, certFile, board string
	c := &cobra.Command{
		Use:   "revoke-proxy --key FILE (--cert FILE | --board BOARD PROXY) [--out FILE]",
		Short: "Sign the revocation of a proxy certificate, or of every one for a board and proxy",
		Long: `Signs, with the operator key in --key, the revocation of the proxy
certificate in --cert (the file certify-proxy wrote), or with --board
BOARD PROXY of every certificate for that board and proxy, past and
future; and writes it as PEM to standard output or --out (created, never
overwritten). It holds nothing secret. Hand it to any node of the mesh
(mycelium keys revocations push FILE): nodes that list the operator
refuse the board's records resting on the certificate, drop those they
hold, keep the revocation and pass it on. Revoke one certificate when a
board moves to another proxy (certify the new one); a compromised proxy
is revoked by its key (keys operator revoke).`,
		Example: `  mycelium keys operator revoke-proxy --key ~/mesh-operator.pem --cert wx-board.cert --out wx-board.revoked
  mycelium keys operator revoke-proxy --key ~/mesh-operator.pem --board b0a4...0d 5f1c...e2
  mycelium keys revocations push wx-board.revoked`,
		Args: cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, a []string) error {
			if key == "" {
				return errors.New("--key FILE is required")
			}
			if (certFile == "") == (board == "") {
				return errors.New("give one of --cert FILE (that certificate) and --board BOARD PROXY (every certificate of the pair)")
			}
			if certFile != "" && len(a) != 0 || board != "" && len(a) != 1 {
				return errors.New("--cert FILE takes no argument; --board BOARD takes one, PROXY")
			}
			op, err := identity.Load(key)
			if err != nil {
				return err
			}
			when := time.Now()
			if date != "" {
				if when, err = time.Parse(time.RFC3339, date); err != nil {
					return fmt.Errorf("--date: %w", err)
				}
			}
			var b, proxy identity.NodeID
			var until int64
			if certFile != "" {
				data, err := os.ReadFile(certFile)
				if err != nil {
					return fmt.Errorf("--cert: %w", err)
				}
				cert, err := revoke.ParseProxyPEM(data)
				if err == nil {
					err = cert.Verify()
				}
				if err != nil {
					return fmt.Errorf("--cert %s: %w", certFile, err)
				}
				b, proxy, until = cert.Board, cert.Proxy, cert.Until
				if until == 0 {
					// 0 would revoke every certificate of the pair.
					return fmt.Errorf("--cert %s: dated 1970: use --board to revoke every certificate of the pair", certFile)
				}
			} else {
				if b, err = revoke.ParseOperator(board); err != nil {
					return fmt.Errorf("--board %q: want the board's node_id, 64 hex digits", board)
				}
				if proxy, err = nodeArg(a[0]); err != nil {
					return err
				}
			}
			r := revoke.SignProxyRevocation(op, b, proxy, until, when)
			return writeNew(c, out, r.PEM())
		},
	}
	c.Flags().StringVar(&key, "key", "", "the operator key (keys operator new wrote it)")
	c.Flags().StringVar(&certFile, "cert", "", "the certificate to revoke (certify-proxy wrote it)")
	c.Flags().StringVar(&board, "board", "", "revoke every certificate for this board (its node_id) and PROXY")
	c.Flags().StringVar(&out, "out", "", "write to FILE instead of standard output")
	c.Flags().StringVar(&date, "date", "", "the revocation's date, RFC 3339 (default now)")
	return c
}

func keysOperatorNewCmd() *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "new --out FILE",
		Short: "Make an operator key (PKCS #8 PEM, mode 0600) and print its public key",
		Long: `Writes a new operator key to FILE (created mode 0600, atomically; an
existing file is never overwritten) and prints its public key: the value
to list in every node's [trust] operators.`,
		Example: `  mycelium keys operator new --out ~/mesh-operator.pem`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("--out FILE is required")
			}
			id, err := identity.Generate(nil)
			if err != nil {
				return err
			}
			if err := identity.Save(out, id); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "%s\n", id.ID())
			fmt.Fprintf(c.ErrOrStderr(), "operator key in %s; list the line above in [trust] operators\n", out)
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "the new key's file")
	return c
}

// nodeArg reads a node_id: 64 hex digits, or a public identity file
// (what keys export writes).
func nodeArg(s string) (identity.NodeID, error) {
	if id, err := revoke.ParseOperator(s); err == nil {
		return id, nil
	}
	b, err := os.ReadFile(s)
	if err != nil {
		return identity.NodeID{}, fmt.Errorf("NODE: neither 64 hex digits nor a readable file: %w", err)
	}
	return identity.ParsePublicPEM(b)
}

func keysOperatorRevokeCmd() *cobra.Command {
	var key, out, date string
	c := &cobra.Command{
		Use:   "revoke --key FILE NODE [--out FILE]",
		Short: "Sign the revocation of a compromised node's key",
		Long: `Signs, with the operator key in --key, the revocation of NODE (its node_id
in hex, or the file keys export wrote for it) and writes it as PEM to
standard output or --out (created, never overwritten). It holds nothing
secret. Hand it to any node of the mesh (mycelium keys revocations push
FILE): nodes that list the operator honour it, keep it and pass it on.
A revocation is final; the node takes a new key (keys rotate).`,
		Example: `  mycelium keys operator revoke --key ~/mesh-operator.pem 5f1c...e2 --out n7.revoked
  mycelium keys revocations push n7.revoked`,
		Args: args("NODE"),
		RunE: func(c *cobra.Command, a []string) error {
			if key == "" {
				return errors.New("--key FILE is required")
			}
			op, err := identity.Load(key)
			if err != nil {
				return err
			}
			node, err := nodeArg(a[0])
			if err != nil {
				return err
			}
			if node == op.ID() {
				return errors.New("NODE is the operator key itself")
			}
			when := time.Now()
			if date != "" {
				if when, err = time.Parse(time.RFC3339, date); err != nil {
					return fmt.Errorf("--date: %w", err)
				}
			}
			r := revoke.Sign(op, node, when)
			return writeNew(c, out, r.PEM())
		},
	}
	c.Flags().StringVar(&key, "key", "", "the operator key (keys operator new wrote it)")
	c.Flags().StringVar(&out, "out", "", "write to FILE instead of standard output")
	c.Flags().StringVar(&date, "date", "", "the revocation's date, RFC 3339 (default now)")
	return c
}

func keysRevocationsCmd() *cobra.Command {
	var f apiFlags
	c := &cobra.Command{
		Use:   "revocations [--json]",
		Short: "The revocations the running node honours, and what it refused",
		Long: `Lists the operator keys the node lists ([trust] operators), the
revocations it honours (node, operator, date), and the counts of what it
refused: revocations by unlisted keys (untrusted), with a failing
signature (forged), malformed or over max_revocations (full); and what
the revocations refused: proofs, records and end-to-end sessions.`,
		Example: `  mycelium keys revocations
  mycelium keys revocations --json --socket n1/mycelium.sock`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(c.Context(), callTimeout)
			defer cancel()
			rs, err := f.client().Revocations(ctx)
			if err != nil {
				return err
			}
			if f.asJSON {
				return printJSON(c.OutOrStdout(), rs)
			}
			w := c.OutOrStdout()
			fmt.Fprintf(w, "operators: %d; revocations: %d of at most %d; proxy certificates revoked: %d of at most %d\n",
				len(rs.Operators), len(rs.Revocations), rs.Max, len(rs.ProxyRevocations), rs.Max)
			tw := table(w)
			fmt.Fprintln(tw, "NODE\tOPERATOR\tDATE")
			for _, r := range rs.Revocations {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", r.NodeID, short(r.Operator), r.Date)
			}
			tw.Flush()
			for _, c := range rs.ProxyCertificates {
				state := "holds"
				if c.Revoked {
					state = "REVOKED"
				}
				fmt.Fprintf(w, "this node's proxy certificate for board %s (until %s): %s\n", short(c.Board), c.Until, state)
			}
			if len(rs.ProxyRevocations) > 0 {
				tw = table(w)
				fmt.Fprintln(tw, "BOARD\tPROXY\tCERTIFICATE\tOPERATOR\tDATE")
				for _, r := range rs.ProxyRevocations {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", short(r.Board), short(r.Proxy), r.Certificate, short(r.Operator), r.Date)
				}
				tw.Flush()
			}
			var refused []string
			for _, k := range []string{"untrusted", "forged", "malformed", "full", "proofs_revoked", "records_refused", "e2e_refused"} {
				refused = append(refused, fmt.Sprintf("%s %d", k, rs.Stats[k]))
			}
			fmt.Fprintf(w, "refused: %s\n", strings.Join(refused, ", "))
			return nil
		},
	}
	f.add(c)
	c.AddCommand(keysRevocationsPushCmd())
	return c
}

func keysRevocationsPushCmd() *cobra.Command {
	var f apiFlags
	c := &cobra.Command{
		Use:   "push FILE|-",
		Short: "Hand a signed revocation to the running node, which spreads it",
		Long: `Gives the node a revocation (keys operator revoke or revoke-proxy wrote
it). The node checks it against its [trust] operators, honours it, keeps
it and publishes it by gossip; every node that lists the operator does
the same.
A revocation signed by another key, or whose signature fails, is refused
(and counted).`,
		Example: `  mycelium keys revocations push n7.revoked`,
		Args:    args("FILE"),
		RunE: func(c *cobra.Command, a []string) error {
			var data string
			var err error
			if a[0] == "-" {
				data, err = input(c, "FILE", "-")
			} else {
				var b []byte
				b, err = os.ReadFile(a[0])
				data = string(b)
			}
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(c.Context(), callTimeout)
			defer cancel()
			r, err := f.client().Revoke(ctx, []byte(data))
			if err != nil {
				return err
			}
			if f.asJSON {
				return printJSON(c.OutOrStdout(), r)
			}
			what := "honoured already"
			if r.Added {
				what = "honoured now, and passed on"
			}
			if r.Board != "" {
				fmt.Fprintf(c.OutOrStdout(), "proxy %s for board %s (%s) revoked by %s (%s): %s\n",
					short(r.Proxy), short(r.Board), r.Certificate, short(r.Operator), r.Date, what)
				return nil
			}
			fmt.Fprintf(c.OutOrStdout(), "%s revoked by %s (%s): %s\n", r.NodeID, short(r.Operator), r.Date, what)
			return nil
		},
	}
	f.add(c)
	return c
}

// writeNew writes public material (an identity, a revocation) to standard
// output, or to out when set: a file created for it, never one that
// exists overwritten.
func writeNew(c *cobra.Command, out string, b []byte) error {
	if out == "" {
		_, err := c.OutOrStdout().Write(b)
		return err
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
