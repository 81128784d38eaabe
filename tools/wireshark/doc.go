// Package wireshark holds the Wireshark dissector for the mesh protocol,
// mycelium.lua, and the test that runs it in tshark over the captures the
// simulator writes. Lua is the dissector's language; this package gives it
// a home in the module, Source to tools that install it, and the test.
package wireshark

import _ "embed"

// Source is the dissector, tools/wireshark/mycelium.lua.
//
//go:embed mycelium.lua
var Source []byte
