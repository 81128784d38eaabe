package cli

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/mycelium-mesh/mycelium/l2-seq/identity"
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
	c := &cobra.Command{Use: "keys", Short: "A node's keys: show them, export the public identity, rotate"}
	c.AddCommand(keysShowCmd(), keysExportCmd(), keysRotateCmd())
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
			b := identity.PublicPEM(id.ID())
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
