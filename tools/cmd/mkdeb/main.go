// Command mkdeb builds the mycelium .deb for one architecture (make
// release runs it for each): mkdeb --bin PATH --arch ARCH --version V --out DIR.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/mycelium-mesh/mycelium/tools/release"
)

func main() {
	var opt release.DebOptions
	flag.StringVar(&opt.Binary, "bin", "", "the mycelium binary for the architecture")
	flag.StringVar(&opt.Arch, "arch", "", "Debian architecture: amd64, arm64 or armhf")
	flag.StringVar(&opt.Version, "version", "", "package version")
	flag.StringVar(&opt.OutDir, "out", "dist", "output directory")
	flag.Parse()
	if opt.Binary == "" || opt.Arch == "" || opt.Version == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "mkdeb: usage: mkdeb --bin PATH --arch amd64|arm64|armhf --version V [--out DIR]")
		os.Exit(1)
	}
	path, err := release.Deb(opt)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mkdeb: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(path)
}
