package ble_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"

	"github.com/mycelium-mesh/mycelium/l1-link/ble"
)

// fakeBlueZ plays org.bluez on a private system bus, with just enough of
// BlueZ's D-Bus API (adapter, discovery, devices, GATT client objects, GATT
// application and advertisement registration) for tinygo's Linux backend to
// run the BlueZ transport end to end without a radio. What it cannot show
// is what the real BlueZ and controllers do with these calls.
type fakeBlueZ struct {
	t       *testing.T
	conn    *dbus.Conn
	stopBus func() // kills the system bus
	adapter *prop.Properties

	mu     sync.Mutex
	devs   map[dbus.ObjectPath]*fakeDev
	app    chan fakeApp
	adv    chan dbus.ObjectPath
	writes chan fakeWrite
	discon chan ble.Addr // Device1.Disconnect calls
}

type fakeApp struct {
	sender string
	path   dbus.ObjectPath
}

type fakeWrite struct {
	char  string // characteristic UUID
	value []byte
	kind  string // the "type" option: command (without response) or request
}

type fakeDev struct {
	addr  ble.Addr
	path  dbus.ObjectPath
	props *prop.Properties
	mesh  bool
	chars map[string]*prop.Properties // by UUID
}

const hciPath = dbus.ObjectPath("/org/bluez/hci0")

var fakeAdapterAddr = ble.Addr{0x00, 0x11, 0x22, 0x33, 0x44, 0x55}

func startFakeBlueZ(t *testing.T) *fakeBlueZ {
	stopBus := startBus(t)
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if reply, err := conn.RequestName("org.bluez", dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own org.bluez: %v %v", reply, err)
	}
	f := &fakeBlueZ{
		t: t, conn: conn, stopBus: stopBus, devs: map[dbus.ObjectPath]*fakeDev{},
		app: make(chan fakeApp, 4), adv: make(chan dbus.ObjectPath, 4),
		writes: make(chan fakeWrite, 16), discon: make(chan ble.Addr, 4),
	}
	f.adapter, err = prop.Export(conn, hciPath, prop.Map{"org.bluez.Adapter1": {
		"Address":      {Value: fakeAdapterAddr.String(), Emit: prop.EmitConst},
		"Powered":      {Value: true, Emit: prop.EmitTrue},
		"Discoverable": {Value: false, Writable: true, Emit: prop.EmitTrue},
		"Alias":        {Value: "", Writable: true, Emit: prop.EmitTrue},
	}})
	if err != nil {
		t.Fatal(err)
	}
	must(t, conn.Export(fakeRoot{f}, "/", "org.freedesktop.DBus.ObjectManager"))
	must(t, conn.Export(fakeDiscovery{f}, hciPath, "org.bluez.Adapter1"))
	must(t, conn.Export(fakeGattManager{f}, hciPath, "org.bluez.GattManager1"))
	must(t, conn.Export(fakeAdvManager{f}, hciPath, "org.bluez.LEAdvertisingManager1"))
	return f
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func devPath(a ble.Addr) dbus.ObjectPath {
	return hciPath + dbus.ObjectPath("/dev_"+strings.ReplaceAll(a.String(), ":", "_"))
}

// addDevice adds a remote device; a mesh one has the mesh service with both
// characteristics and negotiates mtu.
func (f *fakeBlueZ) addDevice(a ble.Addr, mesh bool, mtu uint16) *fakeDev {
	d := &fakeDev{addr: a, path: devPath(a), mesh: mesh, chars: map[string]*prop.Properties{}}
	var uuids []string
	if mesh {
		uuids = []string{ble.ServiceUUID.String()}
	}
	var err error
	d.props, err = prop.Export(f.conn, d.path, prop.Map{"org.bluez.Device1": {
		"Address":          {Value: a.String(), Emit: prop.EmitConst},
		"AddressType":      {Value: "public", Emit: prop.EmitConst},
		"Name":             {Value: "peer", Emit: prop.EmitConst},
		"RSSI":             {Value: int16(-50), Emit: prop.EmitTrue},
		"UUIDs":            {Value: uuids, Emit: prop.EmitTrue},
		"Connected":        {Value: false, Emit: prop.EmitTrue},
		"ServicesResolved": {Value: false, Emit: prop.EmitTrue},
	}})
	must(f.t, err)
	must(f.t, f.conn.Export(fakeDevice{f, d}, d.path, "org.bluez.Device1"))
	if mesh {
		svc := d.path + "/service0010"
		_, err := prop.Export(f.conn, svc, prop.Map{"org.bluez.GattService1": {
			"UUID": {Value: ble.ServiceUUID.String(), Emit: prop.EmitConst}, "Primary": {Value: true, Emit: prop.EmitConst},
		}})
		must(f.t, err)
		for i, u := range []ble.UUID{ble.PacketUUID, ble.BroadcastUUID} {
			cp := svc + dbus.ObjectPath(fmt.Sprintf("/char%04x", 0x11+2*i))
			p, err := prop.Export(f.conn, cp, prop.Map{"org.bluez.GattCharacteristic1": {
				"UUID":    {Value: u.String(), Emit: prop.EmitConst},
				"Service": {Value: svc, Emit: prop.EmitConst},
				"MTU":     {Value: mtu, Emit: prop.EmitConst},
				"Value":   {Value: []byte{}, Emit: prop.EmitTrue},
				"Flags":   {Value: []string{"write-without-response", "notify"}, Emit: prop.EmitConst},
			}})
			must(f.t, err)
			must(f.t, f.conn.Export(fakeChar{f, u.String()}, cp, "org.bluez.GattCharacteristic1"))
			d.chars[u.String()] = p
		}
	}
	f.mu.Lock()
	f.devs[d.path] = d
	f.mu.Unlock()
	return d
}

// setConnected changes a device's connection state, as a remote device
// connecting to us (or dropping) would.
func (d *fakeDev) setConnected(on bool) {
	d.props.SetMust("org.bluez.Device1", "Connected", on)
	d.props.SetMust("org.bluez.Device1", "ServicesResolved", on)
}

// notify sends a notification on one of the device's characteristics.
func (d *fakeDev) notify(char ble.UUID, p []byte) {
	d.chars[char.String()].SetMust("org.bluez.GattCharacteristic1", "Value", p)
}

type fakeRoot struct{ f *fakeBlueZ }

func (r fakeRoot) GetManagedObjects() (map[dbus.ObjectPath]map[string]map[string]dbus.Variant, *dbus.Error) {
	f := r.f
	f.mu.Lock()
	defer f.mu.Unlock()
	objs := map[dbus.ObjectPath]map[string]map[string]dbus.Variant{}
	all, _ := f.adapter.GetAll("org.bluez.Adapter1")
	objs[hciPath] = map[string]map[string]dbus.Variant{"org.bluez.Adapter1": all}
	for _, d := range f.devs {
		dp, _ := d.props.GetAll("org.bluez.Device1")
		objs[d.path] = map[string]map[string]dbus.Variant{"org.bluez.Device1": dp}
		if d.mesh {
			svc := d.path + "/service0010"
			objs[svc] = map[string]map[string]dbus.Variant{"org.bluez.GattService1": {
				"UUID": dbus.MakeVariant(ble.ServiceUUID.String()), "Primary": dbus.MakeVariant(true),
			}}
			for i, u := range []ble.UUID{ble.PacketUUID, ble.BroadcastUUID} {
				cp, _ := d.chars[u.String()].GetAll("org.bluez.GattCharacteristic1")
				objs[svc+dbus.ObjectPath(fmt.Sprintf("/char%04x", 0x11+2*i))] = map[string]map[string]dbus.Variant{"org.bluez.GattCharacteristic1": cp}
			}
		}
	}
	return objs, nil
}

type fakeDiscovery struct{ f *fakeBlueZ }

func (fakeDiscovery) SetDiscoveryFilter(map[string]dbus.Variant) *dbus.Error { return nil }
func (fakeDiscovery) StopDiscovery() *dbus.Error                             { return nil }

// StartDiscovery "hears" every device's advertisement.
func (a fakeDiscovery) StartDiscovery() *dbus.Error {
	f := a.f
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range f.devs {
		dp, _ := d.props.GetAll("org.bluez.Device1")
		f.conn.Emit("/", "org.freedesktop.DBus.ObjectManager.InterfacesAdded", d.path,
			map[string]map[string]dbus.Variant{"org.bluez.Device1": dp})
	}
	return nil
}

type fakeGattManager struct{ f *fakeBlueZ }

func (g fakeGattManager) RegisterApplication(sender dbus.Sender, path dbus.ObjectPath, _ map[string]dbus.Variant) *dbus.Error {
	g.f.app <- fakeApp{string(sender), path}
	return nil
}
func (g fakeGattManager) UnregisterApplication(dbus.ObjectPath) *dbus.Error { return nil }

type fakeAdvManager struct{ f *fakeBlueZ }

func (a fakeAdvManager) RegisterAdvertisement(path dbus.ObjectPath, _ map[string]dbus.Variant) *dbus.Error {
	a.f.adv <- path
	return nil
}
func (a fakeAdvManager) UnregisterAdvertisement(dbus.ObjectPath) *dbus.Error { return nil }

type fakeDevice struct {
	f *fakeBlueZ
	d *fakeDev
}

func (d fakeDevice) Connect() *dbus.Error {
	if !d.d.mesh {
		return dbus.MakeFailedError(fmt.Errorf("not a mesh node"))
	}
	d.d.setConnected(true)
	return nil
}

func (d fakeDevice) Disconnect() *dbus.Error {
	d.f.discon <- d.d.addr
	d.d.setConnected(false)
	return nil
}

type fakeChar struct {
	f    *fakeBlueZ
	uuid string
}

func (fakeChar) StartNotify() *dbus.Error { return nil }
func (fakeChar) StopNotify() *dbus.Error  { return nil }
func (c fakeChar) WriteValue(v []byte, opts map[string]dbus.Variant) *dbus.Error {
	kind, _ := opts["type"].Value().(string)
	c.f.writes <- fakeWrite{char: c.uuid, value: v, kind: kind}
	return nil
}

// events records a Transport's events on channels.
type events struct {
	found   chan ble.Addr
	conns   chan ble.Conn
	failed  chan error
	rx      chan rxEvent
	discons chan ble.Conn
}

type rxEvent struct {
	from  ble.Addr
	data  string
	bcast bool
}

func newEvents() *events {
	return &events{
		found: make(chan ble.Addr, 64), conns: make(chan ble.Conn, 4), failed: make(chan error, 4),
		rx: make(chan rxEvent, 16), discons: make(chan ble.Conn, 4),
	}
}

func (e *events) Found(a ble.Addr) {
	select {
	case e.found <- a:
	default:
	}
}
func (e *events) Connected(c ble.Conn)             { e.conns <- c }
func (e *events) DialFailed(_ ble.Addr, err error) { e.failed <- err }
func (e *events) Received(c ble.Conn, p []byte, bcast bool) {
	e.rx <- rxEvent{c.Peer(), string(p), bcast}
}
func (e *events) Disconnected(c ble.Conn, _ error) { e.discons <- c }

// next waits for a value on ch.
func next[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s", what)
	}
	var zero T
	return zero
}

func newBlueZ(t *testing.T, cfg ble.BlueZConfig) *ble.BlueZ {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := ble.NewBlueZ(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
