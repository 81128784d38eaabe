// A virtual ESP32 for the rig: MicroPython's WebAssembly port (the npm
// package pinned in package.json) with the board's flash in a directory,
// its REPL (friendly and raw) on stdin/stdout — the rig puts those on a pty,
// so it talks to a virtual board exactly as to a USB one — and its radio on
// file descriptor 3: frames to and from the rig, which carries them as real
// ESP-NOW frames (hil/vrack). The stand-ins for machine, network and
// espnow (this directory) reach the host through the vradio module.
//
//   node vboard.mjs board --flash DIR [--mac HEX] [--heap BYTES]
//   node vboard.mjs exec --heap BYTES [--put LOCAL=/PATH ...] SCRIPT.py
//
// Radio frames on fd 3 are u16 length (big-endian) then: "T" dst(6) data
// (board to rig: transmit), "O" 0|1 (radio off/on), "F" src(6) data (rig to
// board: a frame heard), "U" data (board to rig: bytes on its UART's TX
// line) and "u" data (rig to board: bytes on its RX line).
import fs from "node:fs";
import net from "node:net";
import path from "node:path";

// A board's clock never steps: an ESP32's time.ticks_ms() counts from its
// own timer. The WebAssembly port takes ticks_ms (and time.time()) from
// Date.now(), the host's wall clock, which NTP or an administrator can step
// at any moment; a step back of a minute stalls every timer the firmware
// keeps as a ticks deadline for that minute (the LoRa link's busy back-off
// and command timeout among them: the board goes silent). So Date.now is
// the wall clock read once, at start, plus the host's monotonic clock
// since, before MicroPython is loaded.
{
  const wall0 = Date.now();
  const mono0 = performance.now();
  Date.now = () => wall0 + Math.floor(performance.now() - mono0);
}
const { loadMicroPython } = await import("@micropython/micropython-webassembly-pyscript");

const args = process.argv.slice(2);
const mode = args.shift();
const opt = { put: [], heap: 1 << 20 };
let script = null;
while (args.length) {
  const a = args.shift();
  if (a === "--flash") opt.flash = args.shift();
  else if (a === "--mac") opt.mac = args.shift();
  else if (a === "--heap") opt.heap = parseInt(args.shift(), 10);
  else if (a === "--put") opt.put.push(args.shift());
  else if (a === "--no-radio") opt.noRadio = true;
  else script = a;
}
const here = path.dirname(new URL(import.meta.url).pathname);
const out = (b) => process.stdout.write(Buffer.from(b));

// copyIn puts a host file or directory tree into MicroPython's filesystem.
function copyIn(FS, local, dest) {
  const st = fs.statSync(local);
  if (st.isDirectory()) {
    try { FS.mkdir(dest); } catch (e) { /* exists */ }
    for (const n of fs.readdirSync(local)) copyIn(FS, path.join(local, n), dest === "/" ? "/" + n : dest + "/" + n);
  } else {
    let d = "";
    for (const part of dest.split("/").slice(1, -1)) {
      d += "/" + part;
      try { FS.mkdir(d); } catch (e) { /* exists */ }
    }
    FS.writeFile(dest, fs.readFileSync(local));
  }
}

if (mode === "exec") {
  let code = 0;
  const mp = await loadMicroPython({ heapsize: opt.heap, linebuffer: false, stdout: out, stderr: out });
  for (const p of opt.put) {
    const [l, d] = p.split("=");
    copyIn(mp.FS, l, d);
  }
  mp.registerJsModule("vhost", { exit: (c) => { code = c; } });
  try {
    mp.runPython(fs.readFileSync(script, "utf8"));
  } catch (e) {
    process.stderr.write(String(e && e.message || e) + "\n");
    code = 1;
  }
  process.stdout.write("", () => process.exit(code));
} else if (mode === "board") {
  await board();
} else {
  process.stderr.write("usage: vboard.mjs board --flash DIR | exec SCRIPT\n");
  process.exit(2);
}

async function board() {
  const flash = opt.flash;
  fs.mkdirSync(flash, { recursive: true });
  const mac = opt.mac || "02" + Array.from({ length: 5 }, () => Math.floor(Math.random() * 256).toString(16).padStart(2, "0")).join("");
  let radio = null;
  let rxq = [];
  let radioOn = true;
  const UART_RX = 1024;
  let uartRx = Buffer.alloc(0);
  if (!opt.noRadio) {
    radio = new net.Socket({ fd: 3, readable: true, writable: true });
    let acc = Buffer.alloc(0);
    radio.on("data", (d) => {
      acc = Buffer.concat([acc, d]);
      while (acc.length >= 2) {
        const n = acc.readUInt16BE(0);
        if (acc.length < 2 + n) break;
        const f = acc.subarray(2, 2 + n);
        acc = acc.subarray(2 + n);
        // A frame reaches the board only while its radio is on, and the
        // queue is bounded as the ESP-NOW driver's is.
        if (f[0] === 0x46 && radioOn && rxq.length < 64) rxq.push(f.subarray(1).toString("hex"));
        // "u": bytes on the UART's RX line; the ESP32 driver's RX buffer
        // (256 B by default, the firmware asks for 1 KiB) drops what overflows.
        else if (f[0] === 0x75) {
          const room = UART_RX - uartRx.length;
          if (room > 0) uartRx = Buffer.concat([uartRx, f.subarray(1, 1 + room)]);
        }
      }
    });
    radio.on("error", (e) => { process.stderr.write("vboard: radio: " + e + "\n"); process.exit(1); });
    radio.on("end", () => process.exit(0));
  }
  const sendRadio = (b) => {
    if (!radio) return;
    const h = Buffer.alloc(2);
    h.writeUInt16BE(b.length);
    radio.write(Buffer.concat([h, b]));
  };

  let mp, modeNow, timer, step, agentLine, resetAsked = false;
  let lineBuf = "";

  // Flash is the directory: the filesystem is saved to it on every soft or
  // hard reset and after each raw-REPL command, and loaded at boot.
  const save = () => {
    if (!mp) return;
    for (const n of mp.FS.readdir("/")) {
      if ([".", "..", "tmp", "home", "dev", "proc"].includes(n)) continue;
      const st = mp.FS.stat("/" + n);
      if (mp.FS.isFile(st.mode)) fs.writeFileSync(path.join(flash, n), mp.FS.readFile("/" + n));
    }
    for (const n of fs.readdirSync(flash)) {
      try { mp.FS.stat("/" + n); } catch (e) { fs.rmSync(path.join(flash, n), { force: true }); }
    }
  };

  async function boot() {
    clearInterval(timer);
    rxq = [];
    uartRx = Buffer.alloc(0);
    radioOn = true;
    mp = await loadMicroPython({ heapsize: opt.heap, linebuffer: false, stdout: out, stderr: out });
    copyIn(mp.FS, flash, "/");
    // The stand-ins are the virtual board's built-in modules: in /lib, not
    // in its flash, so a flash holds exactly what a real board's does.
    try { mp.FS.mkdir("/lib"); } catch (e) { /* exists */ }
    for (const n of ["machine.py", "network.py", "espnow.py"]) copyIn(mp.FS, path.join(here, n), "/lib/" + n);
    mp.registerJsModule("vradio", {
      send: (m, d) => sendRadio(Buffer.concat([Buffer.from("T"), Buffer.from(m, "hex"), Buffer.from(d, "hex")])),
      recv: () => (rxq.length ? rxq.shift() : null),
      on: (v) => { radioOn = !!v; if (!radioOn) rxq = []; sendRadio(Buffer.from([0x4f, radioOn ? 1 : 0])); },
      mac: () => mac,
      reset: () => { resetAsked = true; },
      uart_write: (d) => sendRadio(Buffer.concat([Buffer.from("U"), Buffer.from(d, "hex")])),
      uart_read: () => { if (!uartRx.length) return null; const s = uartRx.toString("hex"); uartRx = Buffer.alloc(0); return s; },
    });
    out("\r\nets Jun  8 2016 00:22:57 (virtual)\r\n");
    let hasMain = false;
    try { mp.FS.stat("/main.py"); hasMain = true; } catch (e) { /* no main */ }
    if (hasMain) {
      try {
        mp.runPython("import main");
        const agent = mp.pyimport("agent");
        step = agent.step;
        agentLine = agent.line;
        modeNow = "agent";
        timer = setInterval(tick, 2);
        return;
      } catch (e) {
        out(String(e && e.message || e).replace(/\n/g, "\r\n") + "\r\n");
        if (resetAsked) return hardReset();
      }
    }
    toRepl();
  }

  function toRepl() {
    clearInterval(timer);
    modeNow = "repl";
    mp.replInit();
  }

  function tick() {
    try {
      step();
    } catch (e) {
      if (resetAsked) return hardReset();
      out(String(e && e.message || e).replace(/\n/g, "\r\n") + "\r\n");
      toRepl();
    }
  }

  async function hardReset() {
    resetAsked = false;
    clearInterval(timer);
    save();
    mp = null;
    await boot();
  }

  let booting = boot();
  process.stdin.on("data", async (d) => {
    await booting;
    for (const c of d) {
      if (modeNow === "agent") {
        if (c === 3) {
          // Ctrl-C: the main loop stops, the REPL takes the port.
          out("Traceback (most recent call last):\r\nKeyboardInterrupt: \r\n");
          toRepl();
          continue;
        }
        if (c === 10 || c === 13) {
          if (lineBuf) {
            try { agentLine(lineBuf); } catch (e) {
              if (resetAsked) { lineBuf = ""; booting = hardReset(); await booting; continue; }
              out(String(e && e.message || e).replace(/\n/g, "\r\n") + "\r\n");
            }
          }
          lineBuf = "";
        } else if (lineBuf.length < 4096) {
          lineBuf += String.fromCharCode(c);
        }
      } else if (modeNow === "repl") {
        const r = mp.replProcessChar(c);
        if (c === 4) save();
        if (r !== 0) {
          // Ctrl-D at the friendly prompt: soft reset, boot again.
          out("MPY: soft reboot\r\n");
          save();
          booting = boot();
          await booting;
        }
      }
    }
  });
  const quit = () => { try { save(); } catch (e) { /* best effort */ } process.exit(0); };
  process.on("SIGTERM", quit);
  process.on("SIGINT", quit);
  process.stdin.on("end", quit);
}
