package cli

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.bug.st/serial"

	"github.com/mycelium-mesh/mycelium/l1-link/clock"
	"github.com/mycelium-mesh/mycelium/l1-link/link"
	"github.com/mycelium-mesh/mycelium/l1-link/lora"
	"github.com/mycelium-mesh/mycelium/l1-link/rylr998"
	"github.com/mycelium-mesh/mycelium/l1-link/rylr998/emulator"
	"github.com/mycelium-mesh/mycelium/l1-link/sim"
)

func init() { register(loraCmd) }

func loraCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "lora",
		Short: "RYLR-998 LoRa modules: emulate them, send AT commands, send and listen, probe",
	}
	c.AddCommand(loraEmulateCmd(), loraATCmd(), loraSendCmd(), loraListenCmd(), loraProbeCmd())
	return c
}

// modulation are the AT+PARAMETER flags.
type modulation struct {
	sf, bw, cr, preamble int
}

func (m *modulation) flags(c *cobra.Command) {
	c.Flags().IntVar(&m.sf, "sf", 9, "spreading factor (5..11)")
	c.Flags().IntVar(&m.bw, "bw", 125, "bandwidth in kHz (125, 250 or 500)")
	c.Flags().IntVar(&m.cr, "cr", 1, "coding rate 1..4 (4/5..4/8)")
	c.Flags().IntVar(&m.preamble, "preamble", 12, "preamble length (4..24 on network 18, else 12)")
}

func (m *modulation) params(netID int) (lora.Params, error) {
	p := lora.Params{SF: m.sf, Bandwidth: m.bw * 1000, CR: m.cr, Preamble: m.preamble}
	if _, err := rylr998.ParamsCode(p, netID); err != nil {
		return p, err
	}
	return p, nil
}

// runClock starts a real-time loop for the command; stop ends it.
func runClock(ctx context.Context) (*clock.Loop, func()) {
	loop := clock.NewLoop()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { loop.Run(ctx); close(done) }()
	return loop, func() { cancel(); <-done }
}

// interrupted is the command's context, ended by SIGINT or SIGTERM.
func interrupted(c *cobra.Command) (context.Context, context.CancelFunc) {
	ctx := c.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

func loraEmulateCmd() *cobra.Command {
	var (
		n    int
		mod  modulation
		loss float64
		seed uint64
		baud int
		crlf bool
	)
	c := &cobra.Command{
		Use:   "emulate",
		Short: "Emulate RYLR-998 modules on pseudo-terminals, on one simulated medium",
		Long: `Starts emulated RYLR-998 modules, each on its own pseudo-terminal, all
within range of each other on one simulated LoRa medium, and prints one line
per module: its terminal and address ("/dev/pts/5 address 1"). Talk to a
module with screen or picocom at 115200 baud (AT commands end with CR LF),
or with "mycelium lora at/send/listen/probe --port". Runs until interrupted.

The modules read AT+SEND's data by its declared length; with
--data-ends-at-crlf they end it at the first CR LF, as a module reading its
commands line by line does, so a datagram sent raw with CR LF in it is cut
(+ERR=5).`,
		Example: `  mycelium lora emulate --modules 2 --loss 0.1
  mycelium lora emulate --modules 2 --data-ends-at-crlf`,
		Args: args(),
		RunE: func(c *cobra.Command, _ []string) error {
			if n < 1 || n > 64 {
				return fmt.Errorf("--modules %d: want 1..64", n)
			}
			if err := between("loss", loss, 0, 1); err != nil {
				return err
			}
			params, err := mod.params(18)
			if err != nil {
				return err
			}
			ctx, stop := interrupted(c)
			defer stop()
			loop, stopClock := runClock(ctx)
			defer stopClock()
			net := emulator.NewNetwork(loop, params, seed)
			defer net.Close()
			net.SetLoss(sim.Independent(loss))
			var ms []*emulator.Module
			for range n {
				m, err := net.AddModule(emulator.Options{Baud: baud, DataEndsAtCRLF: crlf})
				if err != nil {
					return err
				}
				ms = append(ms, m)
			}
			// Print once they have booted, so that each terminal is ready.
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for _, m := range ms {
				for !m.Idle() {
					select {
					case <-tick.C:
					case <-ctx.Done():
						return nil
					}
				}
				fmt.Fprintf(c.OutOrStdout(), "%s address %d\n", m.Path(), m.Settings().Address)
			}
			<-ctx.Done()
			return nil
		},
	}
	c.Flags().IntVar(&n, "modules", 3, "number of modules")
	mod.flags(c)
	c.Flags().Float64Var(&loss, "loss", 0, "probability that a frame is lost on each link")
	c.Flags().Uint64Var(&seed, "seed", 1, "seed of the medium's random choices")
	c.Flags().IntVar(&baud, "baud", rylr998.DefaultBaud, "the modules' UART rate")
	c.Flags().BoolVar(&crlf, "data-ends-at-crlf", false, "end AT+SEND's data at the first CR LF instead of reading it by its length")
	return c
}

func loraATCmd() *cobra.Command {
	var (
		port    string
		baud    int
		timeout time.Duration
	)
	c := &cobra.Command{
		Use:   "at --port PATH 'AT+VER?'",
		Short: "Send one raw AT command to a module and print its answer",
		Long: `Sends one AT command (CR LF is added) and prints the lines the module
answers, up to the final one (+OK, +ERR=n, the value of a query, +READY
after AT+RESET). Exits with status 1 if the module answers +ERR or nothing.`,
		Example: `  mycelium lora at --port /dev/ttyUSB0 'AT+VER?'`,
		Args:    args("COMMAND"),
		RunE: func(c *cobra.Command, args []string) error {
			p, err := atPort(port, baud)
			if err != nil {
				return err
			}
			defer p.Close()
			lines, err := rylr998.Exec(p, args[0], timeout)
			for _, l := range lines {
				fmt.Fprintln(c.OutOrStdout(), l)
			}
			return err
		},
	}
	c.Flags().StringVar(&port, "port", "", "serial device of the module")
	c.Flags().IntVar(&baud, "baud", rylr998.DefaultBaud, "UART rate")
	c.Flags().DurationVar(&timeout, "timeout", 2*time.Second, "how long to wait for the answer")
	return c
}

// atPort opens --port for AT commands of one's own, without the driver.
func atPort(port string, baud int) (serial.Port, error) {
	if port == "" {
		return nil, errors.New("--port is required")
	}
	return rylr998.OpenPort(port, baud)
}

// radio are the flags that configure a module through the driver.
type radio struct {
	port     string
	baud     int
	address  int
	netID    int
	band     int
	password string
	power    int
	timeout  time.Duration
	framing  string
	mod      modulation
}

func (r *radio) flags(c *cobra.Command) {
	c.Flags().StringVar(&r.port, "port", "", "serial device of the module")
	c.Flags().IntVar(&r.baud, "baud", rylr998.DefaultBaud, "UART rate")
	c.Flags().IntVar(&r.address, "address", 0, "the module's address, 1..65535")
	c.Flags().IntVar(&r.netID, "network-id", 18, "network id, 3..15 or 18")
	c.Flags().IntVar(&r.band, "band", 0, "centre frequency in Hz (0: leave the module's)")
	c.Flags().StringVar(&r.password, "password", "", "domain password, 8 hex digits (empty: leave the module's)")
	c.Flags().IntVar(&r.power, "power", 0, "TX power in dBm, 1..22 (0: leave the module's)")
	c.Flags().DurationVar(&r.timeout, "timeout", time.Second, "command timeout")
	c.Flags().StringVar(&r.framing, "framing", "bytes", "how datagrams go in AT+SEND's data: bytes (any bytes, at most 239), packet (mesh packets, first byte 0x00, at most 240) or none (raw, as third-party clients send)")
	r.mod.flags(c)
}

// framingOf parses --framing.
func (r *radio) framingOf() (rylr998.Framing, error) {
	f, err := rylr998.ParseFraming(r.framing)
	if err != nil {
		return f, fmt.Errorf("--framing %q: want bytes, packet or none", r.framing)
	}
	return f, nil
}

func (r *radio) open(clk clock.Clock) (*rylr998.Link, error) {
	if r.port == "" {
		return nil, errors.New("--port is required")
	}
	if r.address < 1 || r.address > 65535 {
		return nil, fmt.Errorf("--address %d: want 1..65535", r.address)
	}
	p, err := r.mod.params(r.netID)
	if err != nil {
		return nil, err
	}
	f, err := r.framingOf()
	if err != nil {
		return nil, err
	}
	return rylr998.Open(rylr998.Config{
		Port: r.port, Baud: r.baud, Address: uint16(r.address), NetworkID: r.netID,
		Band: r.band, Params: p, Password: r.password, TxPower: r.power,
		Clock: clk, CommandTimeout: r.timeout, Framing: f,
	})
}

// session opens the module on a wall-clock loop, runs f, and closes both;
// ctx ends on an interrupt.
func (r *radio) session(c *cobra.Command, f func(ctx context.Context, l *rylr998.Link) error) error {
	ctx, stop := interrupted(c)
	defer stop()
	loop, stopClock := runClock(ctx)
	defer stopClock()
	l, err := r.open(loop)
	if err != nil {
		return err
	}
	defer l.Close()
	return f(ctx, l)
}

// sendDone waits for one TxDone.
type sendDone struct{ done chan error }

func (s sendDone) DeliverFrame(link.Frame) {}
func (s sendDone) TxDone(_ link.Tag, err error) {
	select {
	case s.done <- err:
	default:
	}
}

func loraSendCmd() *cobra.Command {
	var (
		r  radio
		to int
	)
	c := &cobra.Command{
		Use:   "send --port PATH --address A --to B HEX|-",
		Short: "Send one datagram through a module (address 0 is broadcast)",
		Long: `Configures the module as the driver does and sends one datagram, given in
hex ("-": standard input), framed as --framing says (default bytes: any bytes, at most 239, so
that CR LF in the data reaches the other side whichever way the module reads
AT+SEND's data). The receiver must use the same framing.`,
		Example: `  mycelium lora send --port /dev/pts/5 --address 1 --to 2 68656c6c6f`,
		Args:    args("HEX"),
		RunE: func(c *cobra.Command, args []string) error {
			data, err := hexInput(c, "datagram", args[0])
			if err != nil {
				return err
			}
			f, err := r.framingOf()
			if err != nil {
				return err
			}
			if len(data) > f.MaxDatagram() {
				return fmt.Errorf("datagram of %s: at most %d with --framing %s", plural(len(data), "byte", "bytes"), f.MaxDatagram(), f)
			}
			if to < 0 || to > 65535 {
				return fmt.Errorf("--to %d: want 0..65535", to)
			}
			return r.session(c, func(ctx context.Context, l *rylr998.Link) error {
				s := sendDone{make(chan error, 1)}
				l.Attach(s)
				var dst link.Addr = rylr998.Addr(to)
				if to == 0 {
					dst = link.Broadcast
				}
				if err := l.Send(dst, data, 0); err != nil {
					return err
				}
				select {
				case err := <-s.done:
					if err != nil {
						return err
					}
				case <-ctx.Done():
					return ctx.Err()
				}
				fmt.Fprintf(c.OutOrStdout(), "sent %s to %d (airtime %v)\n", plural(len(data), "byte", "bytes"), to, l.Airtime(len(data)))
				return nil
			})
		},
	}
	r.flags(c)
	c.Flags().IntVar(&to, "to", 0, "destination address (0: broadcast)")
	return c
}

// received is one line of lora listen's output.
type received struct {
	Src  int    `json:"src"`
	RSSI int    `json:"rssi"`
	SNR  int    `json:"snr"`
	Data string `json:"data"` // hex
}

// printer writes each frame as a JSON line, and says when count are done.
type printer struct {
	mu    sync.Mutex
	w     io.Writer
	n     int
	count int
	full  chan struct{}
	err   error
}

func (p *printer) TxDone(link.Tag, error) {}

func (p *printer) DeliverFrame(f link.Frame) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.count > 0 && p.n >= p.count {
		return
	}
	src, _ := f.Src.(rylr998.Addr)
	b, _ := json.Marshal(received{Src: int(src), RSSI: f.RSSI, SNR: f.SNR, Data: hex.EncodeToString(f.Data)})
	if _, err := fmt.Fprintf(p.w, "%s\n", b); err != nil && p.err == nil {
		p.err = err
	}
	p.n++
	if p.count > 0 && p.n == p.count {
		close(p.full)
	}
}

func loraListenCmd() *cobra.Command {
	var (
		r     radio
		count int
	)
	c := &cobra.Command{
		Use:   "listen --port PATH --address A [--count N]",
		Short: "Print the datagrams a module receives, one JSON object per line",
		Long: `Configures the module, says so on stderr, then prints each datagram it
receives as {"src":<address>,"rssi":<dBm>,"snr":<dB>,"data":"<hex>"}, until
--count datagrams (0: until interrupted). Datagrams are unframed as
--framing says (default bytes); one that is not a frame of it is dropped.`,
		Example: `  mycelium lora listen --port /dev/pts/6 --address 2 --count 1`,
		Args:    args(),
		RunE: func(c *cobra.Command, _ []string) error {
			if count < 0 {
				return fmt.Errorf("--count %d: want 0 (until interrupted) or more", count)
			}
			return r.session(c, func(ctx context.Context, l *rylr998.Link) error {
				p := &printer{w: c.OutOrStdout(), count: count, full: make(chan struct{})}
				l.Attach(p)
				fmt.Fprintf(c.ErrOrStderr(), "listening on %s, address %d\n", r.port, r.address)
				select {
				case <-p.full:
				case <-ctx.Done():
				}
				l.Attach(nil)
				p.mu.Lock()
				defer p.mu.Unlock()
				return p.err
			})
		},
	}
	r.flags(c)
	c.Flags().IntVar(&count, "count", 0, "stop after this many datagrams (0: never)")
	return c
}

func loraProbeCmd() *cobra.Command {
	var (
		port    string
		baud    int
		timeout time.Duration
	)
	c := &cobra.Command{
		Use:   "probe --port PATH",
		Short: "Find out how a module reads AT+SEND's data (by length, or up to CR LF)",
		Long: `Sends two short datagrams to the module's own address (no other module
should hear them; 65535 if the module's address is 0): one holding CR LF,
which a module reading AT+SEND's data by length takes and a module reading
to the first CR LF refuses (+ERR=5), and one holding a lone CR, 0x00 and
0xFF, which the link's framing needs every module to take. Prints what it
found; exits with status 1 if the framing's bytes are not carried, or the
module answers neither way.`,
		Example: `  mycelium lora probe --port /dev/ttyUSB0`,
		Args:    args(),
		RunE: func(c *cobra.Command, _ []string) error {
			p, err := atPort(port, baud)
			if err != nil {
				return err
			}
			defer p.Close()
			r, err := rylr998.Probe(p, timeout)
			if err != nil {
				return err
			}
			out := c.OutOrStdout()
			fmt.Fprintf(out, "AT+SEND data: %s (a datagram holding CR LF was answered %s)\n", r.DataEnd, strings.Join(r.CRLFAnswer, " "))
			if !r.FramesCarried {
				return fmt.Errorf("a datagram holding a lone CR, 0x00 and 0xFF was answered %s: the link's framing cannot carry datagrams through this module", strings.Join(r.FrameAnswer, " "))
			}
			fmt.Fprintln(out, "framed data (lone CR, 0x00, 0xFF): carried")
			return nil
		},
	}
	c.Flags().StringVar(&port, "port", "", "serial device of the module")
	c.Flags().IntVar(&baud, "baud", rylr998.DefaultBaud, "UART rate")
	c.Flags().DurationVar(&timeout, "timeout", 2*time.Second, "how long to wait for each answer")
	return c
}
