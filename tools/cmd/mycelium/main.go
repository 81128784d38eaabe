// Command mycelium is the mesh stack's command line: packet, Package,
// sequence and address codecs, and (as the stack grows) the simulator,
// benchmarks and link tools.
package main

import (
	"os"

	"github.com/mycelium-mesh/mycelium/tools/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
