package cli

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/mycelium-mesh/mycelium/tools/daemon"
)

func init() { register(initCmd); register(nodeCmd) }

func initCmd() *cobra.Command {
	var opt daemon.InitOptions
	c := &cobra.Command{
		Use:   "init --dir DIR [--name NAME]",
		Short: "Write a node's configuration and a new identity into DIR",
		Long: `Writes DIR/mycelium.toml (every option present and commented, the
defaults filled) and a new identity DIR/identity.pem (mode 0600, written
atomically). Refuses to overwrite either. Prints the new node_id. With
--key-only it writes the identity alone.

--listen and --peer shape the UDP link: with peers, broadcasts go to those
static neighbours only (no multicast group).`,
		Example: `  mycelium init --dir n1 --name alpha --listen 127.0.0.1:7001 --peer 127.0.0.1:7002
  mycelium init --dir /etc/mycelium --name pi-1`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if opt.KeyOnly && (opt.Name != "" || opt.Listen != "" || len(opt.Peers) > 0 || opt.Socket != "") {
				return errors.New("--key-only writes the identity alone: it takes no --name, --listen, --peer or --socket")
			}
			id, err := daemon.Init(opt)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "%s\n", id)
			if opt.KeyOnly {
				fmt.Fprintf(c.ErrOrStderr(), "wrote %s\n", filepath.Join(opt.Dir, daemon.IdentityFile))
				return nil
			}
			fmt.Fprintf(c.ErrOrStderr(), "wrote %s and %s\n", filepath.Join(opt.Dir, daemon.ConfigFile), filepath.Join(opt.Dir, daemon.IdentityFile))
			return nil
		},
	}
	c.Flags().StringVar(&opt.Dir, "dir", "", "directory to write into (created if missing)")
	c.Flags().StringVar(&opt.Name, "name", "", "the node's name in name lookup")
	c.Flags().StringVar(&opt.Listen, "listen", "", "the UDP link's address and port (default 0.0.0.0:4242)")
	c.Flags().StringArrayVar(&opt.Peers, "peer", nil, "a static UDP neighbour IP:port (repeatable; then no multicast group)")
	c.Flags().StringVar(&opt.Socket, "socket", "", "the control socket's path (default mycelium.sock next to the configuration)")
	c.Flags().BoolVar(&opt.KeyOnly, "key-only", false, "write only DIR/identity.pem (a package installs the configuration)")
	return c
}

func nodeCmd() *cobra.Command {
	var cfgPath string
	c := &cobra.Command{
		Use:   "node --config FILE",
		Short: "Run a mesh node (the daemon) in the foreground",
		Long: `Runs a node on the links the configuration names, with its trees,
router, control API (a unix socket) and metrics, until SIGINT or SIGTERM
(it then says goodbye on every link and exits 0). SIGHUP re-reads the
configuration: the log level and UDP peers change in place; other changes
are refused with a log line (restart to apply them). Logs go to standard
error: text on a terminal, JSON otherwise.`,
		Example: `  mycelium node --config n1/mycelium.toml
  systemctl start mycelium   # the packaged unit runs: mycelium node --config /etc/mycelium/mycelium.toml`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if cfgPath == "" {
				return errors.New("--config is required")
			}
			ctx := c.Context()
			return daemon.Run(ctx, daemon.Options{ConfigPath: cfgPath, Version: version(), Logs: c.ErrOrStderr()})
		},
	}
	c.Flags().StringVar(&cfgPath, "config", "", "the configuration file (mycelium init writes one)")
	return c
}
