package rig

import (
	"context"
	"fmt"
	"sync"

	"github.com/mycelium-mesh/mycelium/hil/vboard"
	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/lora"
	"github.com/mycelium-mesh/mycelium/l1-link/rylr998/emulator"
	"go.bug.st/serial"
)

// The virtual rack's LoRa channel: SF7 at 500 kHz, so a 240-byte packet
// takes about 80 ms of air and a suite's LoRa transfers stay short.
var loraParams = lora.Params{SF: 7, Bandwidth: 500000, CR: 1, Preamble: 12}

// loraParamsAT is loraParams as AT+PARAMETER writes it (bandwidth code 9
// is 500 kHz).
const loraParamsAT = "7,9,1,12"

// loraRouting is what a node with only a LoRa link changes in
// fastRouting: a LoRa module is half-duplex and does not listen before it
// talks, so tree claims every second (each a few hundred bytes, to each
// peer, acknowledged) leave the channel too few quiet moments for data.
var loraRouting = map[string]string{
	"routing.claim_period": `"10s"`,
}

// Addresses on the virtual LoRa channel: boards from 0x100, nodes from
// 0x200, by their place in the rack file.
func boardLoRaAddress(i int) uint16 { return uint16(0x100 + i + 1) }
func nodeLoRaAddress(i int) uint16  { return uint16(0x200 + i + 1) }

// loraLinkTOML is a node's [[link]] for an RYLR-998 on port.
func loraLinkTOML(port string, addr uint16) string {
	return fmt.Sprintf("[[link]]\ntype = \"rylr998\"\nport = %q\naddress = %d\nnetwork_id = 18\nsf = %d\nbw = %d\ncr = %d\npreamble = %d\n",
		port, addr, loraParams.SF, loraParams.Bandwidth/1000, loraParams.CR, loraParams.Preamble)
}

// loraChannel is the virtual rack's LoRa air: emulated RYLR-998 modules
// (l1-link/rylr998/emulator), each on a pty, on one simulated medium run
// on a real-time clock loop.
type loraChannel struct {
	net *emulator.Network
}

// loraNet starts the channel on first use.
func (e *Env) loraNet() *loraChannel {
	if e.lora != nil {
		return e.lora
	}
	loop := clock.NewLoop()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { loop.Run(ctx); close(done) }()
	e.lora = &loraChannel{net: emulator.NewNetwork(loop, loraParams, 1)}
	n := e.lora.net
	e.closers = append(e.closers, func() { cancel(); <-done }, func() { n.Close() })
	return e.lora
}

// loraModule adds a module; its factory address is not addr, so whoever
// drives it must set its own.
func (e *Env) loraModule(addr uint16) (*emulator.Module, error) {
	m, err := e.loraNet().net.AddModule(emulator.Options{Address: addr ^ 0x8000})
	if err != nil {
		return nil, fmt.Errorf("lora module: %w", err)
	}
	return m, nil
}

// loraUART wires a virtual board's UART (machine.UART, 'U'/'u' on its
// radio pipe) to a new module's serial port: the board's RYLR-998.
type loraUART struct {
	port serial.Port
	mu   sync.Mutex
	vb   *vboard.Board
	done chan struct{}
}

func (e *Env) loraUART(addr uint16) (*loraUART, error) {
	m, err := e.loraModule(addr)
	if err != nil {
		return nil, err
	}
	p, err := serial.Open(m.Path(), &serial.Mode{BaudRate: emulator.FactoryBaud})
	if err != nil {
		return nil, fmt.Errorf("lora module %s: %w", m.Path(), err)
	}
	u := &loraUART{port: p, done: make(chan struct{})}
	go u.fromModule()
	e.closers = append(e.closers, func() { p.Close(); <-u.done })
	return u, nil
}

// attach sets the board the module's output goes to.
func (u *loraUART) attach(vb *vboard.Board) {
	u.mu.Lock()
	u.vb = vb
	u.mu.Unlock()
}

// write is what the board's UART sent: on to the module.
func (u *loraUART) write(b []byte) { u.port.Write(b) }

func (u *loraUART) fromModule() {
	defer close(u.done)
	buf := make([]byte, 512)
	for {
		n, err := u.port.Read(buf)
		if n > 0 {
			u.mu.Lock()
			vb := u.vb
			u.mu.Unlock()
			if vb != nil {
				vb.UART(buf[:n])
			}
		}
		if err != nil || n == 0 {
			return
		}
	}
}
